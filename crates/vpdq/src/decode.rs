//! FFmpeg's side: open a file or a byte buffer, decode its first video stream, convert the
//! chosen frames to RGB24 and hash them (the steps of the crate docs, in order).

use crate::{Flush, FrameHash, Limits, Options, VpdqError};
use ff::ffi;
use ffmpeg_next as ff;
use scanlab_pdq::{Hasher, Image, Layout, LumaMode};
use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::Once;

/// A video's vPDQ hash and what was read to make it.
#[derive(Clone, Debug, PartialEq)]
pub struct Video {
    /// The hashed frames, in frame order.
    pub frames: Vec<FrameHash>,
    /// Frames per second, as the timestamps use it.
    pub fps: f64,
    /// Size of the frames as hashed (after any resizing).
    pub width: u32,
    /// Height of the frames as hashed.
    pub height: u32,
    /// Frames decoded, hashed or not.
    pub decoded: u64,
    /// The demuxer FFmpeg read the file with (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`,
    /// ...). FFmpeg also reads a still image, or one stored inside another file, as a video of
    /// one frame (`jpeg_pipe`, `png_pipe`, `image2`): a caller that must tell video from other
    /// files looks here ([`Video::is_still_image`]).
    pub container: String,
}

impl Video {
    /// Whether FFmpeg read the input as still images rather than a video container: an image
    /// demuxer, or a raw Motion-JPEG stream (what FFmpeg makes of JPEGs found after other bytes,
    /// such as the stored entries of a zip; Motion-JPEG video comes in a container, `.mov` or
    /// `.avi`, and reads as that container).
    pub fn is_still_image(&self) -> bool {
        self.container == "image2" || self.container.ends_with("_pipe") || self.container == "mjpeg"
    }
}

static INIT: Once = Once::new();

/// FFmpeg's one-time set-up, and its log kept to fatal errors (as Meta's, when not verbose):
/// what went wrong reaches the caller as a [`VpdqError`] instead.
fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// The versions of the FFmpeg libraries in use, for reports: hashes are only bit-identical
/// between runs on the same decoder.
pub fn ffmpeg_versions() -> String {
    fn v(n: u32) -> String {
        format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff)
    }
    // SAFETY: these only return a constant.
    let (c, f, s) = unsafe {
        (
            ffi::avcodec_version(),
            ffi::avformat_version(),
            ffi::swscale_version(),
        )
    };
    format!(
        "libavcodec {}, libavformat {}, libswscale {}",
        v(c),
        v(f),
        v(s)
    )
}

/// The vPDQ hash of the video file at `path`.
pub fn hash_file(path: &Path, options: &Options, limits: &Limits) -> Result<Video, VpdqError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(VpdqError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file", path.display()),
        )));
    }
    check_bytes(meta.len(), limits)?;
    init();
    let mut input = ff::format::input(path).map_err(|e| VpdqError::Open(e.to_string()))?;
    run(&mut input, options, limits, None)
}

/// The vPDQ hash of a video held in memory (an attachment), read through FFmpeg's custom I/O
/// without touching the disk.
pub fn hash_bytes(bytes: &[u8], options: &Options, limits: &Limits) -> Result<Video, VpdqError> {
    check_bytes(bytes.len() as u64, limits)?;
    init();
    let mut mem = MemInput::open(bytes)?;
    let input = mem.input.as_mut().expect("set by open");
    run(input, options, limits, None)
}

/// What a visitor of hashed frames is handed: each frame's hash and its RGB24 pixels as hashed.
pub type Visitor<'v> = &'v mut dyn FnMut(&FrameHash, &Image<'_>);

/// As [`hash_bytes`], and each hashed frame's pixels are shown to `visit` as it is hashed: for
/// callers that need more of a frame than its hash (a scheme that sends a thumbnail or the
/// first half of PDQ), without keeping every frame in memory.
pub fn visit_bytes(
    bytes: &[u8],
    options: &Options,
    limits: &Limits,
    visit: Visitor<'_>,
) -> Result<Video, VpdqError> {
    check_bytes(bytes.len() as u64, limits)?;
    init();
    let mut mem = MemInput::open(bytes)?;
    let input = mem.input.as_mut().expect("set by open");
    run(input, options, limits, Some(visit))
}

fn check_bytes(bytes: u64, limits: &Limits) -> Result<(), VpdqError> {
    if bytes > limits.max_bytes {
        return Err(VpdqError::TooManyBytes {
            bytes,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

/// The first video stream's settings, read before decoding.
struct StreamInfo {
    index: usize,
    parameters: ff::codec::Parameters,
    width: u32,
    height: u32,
    fps: f64,
    listed_frames: u64,
}

fn stream_info(input: &ff::format::context::Input) -> Result<StreamInfo, VpdqError> {
    let stream = input
        .streams()
        .find(|s| s.parameters().medium() == ff::media::Type::Video)
        .ok_or(VpdqError::NoVideo)?;
    let parameters = stream.parameters();
    // SAFETY: the parameters are owned by the open stream.
    let (w, h) = unsafe {
        let p = parameters.as_ptr();
        ((*p).width, (*p).height)
    };
    if w <= 0 || h <= 0 {
        return Err(VpdqError::Stream("frame size"));
    }
    let mut rate = stream.avg_frame_rate();
    if rate.numerator() == 0 || rate.denominator() == 0 {
        rate = stream.rate();
    }
    let fps = f64::from(rate.numerator()) / f64::from(rate.denominator());
    if !(fps.is_finite() && fps > 0.0) {
        return Err(VpdqError::Stream("frame rate"));
    }
    Ok(StreamInfo {
        index: stream.index(),
        parameters,
        width: w as u32,
        height: h as u32,
        fps,
        listed_frames: stream.frames().max(0) as u64,
    })
}

fn run(
    input: &mut ff::format::context::Input,
    options: &Options,
    limits: &Limits,
    visit: Option<Visitor<'_>>,
) -> Result<Video, VpdqError> {
    let info = stream_info(input)?;
    check_pixels(info.width, info.height, limits)?;
    let duration = input.duration();
    if duration > 0 {
        let seconds = duration as f64 / f64::from(ffi::AV_TIME_BASE);
        if seconds > limits.max_seconds {
            return Err(VpdqError::TooLong {
                seconds,
                limit: limits.max_seconds,
            });
        }
    }
    let (width, height) = options.size.unwrap_or((info.width, info.height));
    let min = scanlab_pdq::MIN_HASHABLE_DIM as u32;
    if width < min || height < min {
        return Err(VpdqError::FrameTooSmall { width, height });
    }

    let mut decoder = open_decoder(&info, options)?;
    let frame_mod = ((options.seconds_per_hash * info.fps) as i64).max(1);
    let mut state = Decoding {
        scaler: None,
        rgb: rgb_frame(width, height)?,
        frame: ff::frame::Video::empty(),
        hasher: Hasher::new().with_luma_mode(LumaMode::CppF32),
        frames: Vec::new(),
        decoded: 0,
        frame_mod,
        fps: info.fps,
        width,
        height,
        limits: *limits,
        visit,
    };
    let mut packets = 0u64;
    loop {
        let mut packet = ff::Packet::empty();
        match packet.read(input) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                // A file cut short mostly ends in a read error, not at its end.
                check_complete(packets, &info)?;
                return Err(VpdqError::Decode {
                    frames: state.decoded,
                    reason: format!("reading the file: {e}"),
                });
            }
        }
        if packet.stream() != info.index {
            continue;
        }
        packets += 1;
        let step = decoder
            .send_packet(&packet)
            .map_err(|e| state.decode_error(e))
            .and_then(|()| state.receive(&mut decoder));
        if let Err(e) = step {
            // A decoding error in a file cut short is the cut: count what is left.
            if matches!(e, VpdqError::Decode { .. }) {
                check_complete(packets + count_video_packets(input, info.index), &info)?;
            }
            return Err(e);
        }
    }
    check_complete(packets, &info)?;
    // Meta sends its last, blank packet (stream index 0) to the decoder only when the video is
    // stream 0; a blank packet is the end-of-stream signal, which drains the decoder.
    if options.flush == Flush::Always || info.index == 0 {
        decoder.send_eof().map_err(|e| state.decode_error(e))?;
        state.receive(&mut decoder)?;
    }
    Ok(Video {
        container: input.format().name().to_string(),
        frames: state.frames,
        fps: info.fps,
        width,
        height,
        decoded: state.decoded,
    })
}

/// [`VpdqError::Truncated`] when the container lists more video frames than the `read`
/// packets found in the file (a container that lists none is never truncated this way).
fn check_complete(read: u64, info: &StreamInfo) -> Result<(), VpdqError> {
    if read < info.listed_frames {
        return Err(VpdqError::Truncated {
            read,
            expected: info.listed_frames,
        });
    }
    Ok(())
}

/// The video packets left in the file, read without decoding.
fn count_video_packets(input: &mut ff::format::context::Input, index: usize) -> u64 {
    let mut n = 0;
    let mut packet = ff::Packet::empty();
    while packet.read(input).is_ok() {
        if packet.stream() == index {
            n += 1;
        }
    }
    n
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), VpdqError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(VpdqError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// A decoder as Meta opens it: a context made for the codec, filled from the stream's
/// parameters, with slice threads (count 0: FFmpeg's choice) when the codec has them and one
/// thread otherwise.
fn open_decoder(info: &StreamInfo, options: &Options) -> Result<ff::decoder::Video, VpdqError> {
    let id = info.parameters.id();
    let codec = ff::decoder::find(id).ok_or_else(|| VpdqError::Codec(format!("{id:?}")))?;
    let mut ctx = ff::codec::Context::new_with_codec(codec);
    ctx.set_parameters(info.parameters.clone())
        .map_err(|e| VpdqError::Codec(format!("{id:?}: {e}")))?;
    // SAFETY: the context is not open yet, as FFmpeg requires for these fields.
    unsafe {
        let p = ctx.as_mut_ptr();
        if codec
            .capabilities()
            .contains(ff::codec::Capabilities::SLICE_THREADS)
        {
            (*p).thread_count = options.decode_threads as c_int;
            (*p).thread_type = ffi::FF_THREAD_SLICE as c_int;
        } else {
            (*p).thread_count = 1;
        }
    }
    ctx.decoder()
        .video()
        .map_err(|e| VpdqError::Codec(format!("{id:?}: {e}")))
}

/// An RGB24 frame with FFmpeg's default buffer alignment, as Meta allocates its target frames.
fn rgb_frame(width: u32, height: u32) -> Result<ff::frame::Video, VpdqError> {
    let mut f = ff::frame::Video::empty();
    // SAFETY: a freshly allocated, empty frame; av_frame_get_buffer fills its planes.
    let r = unsafe {
        let p = f.as_mut_ptr();
        (*p).format = ffi::AVPixelFormat::AV_PIX_FMT_RGB24 as c_int;
        (*p).width = width as c_int;
        (*p).height = height as c_int;
        ffi::av_frame_get_buffer(p, 0)
    };
    if r < 0 {
        return Err(VpdqError::Decode {
            frames: 0,
            reason: format!(
                "allocating a {width}x{height} frame: {}",
                ff::Error::from(r)
            ),
        });
    }
    Ok(f)
}

/// What the decoding loop carries from frame to frame.
struct Decoding<'v> {
    scaler: Option<ff::software::scaling::Context>,
    rgb: ff::frame::Video,
    frame: ff::frame::Video,
    hasher: Hasher,
    frames: Vec<FrameHash>,
    decoded: u64,
    frame_mod: i64,
    fps: f64,
    width: u32,
    height: u32,
    limits: Limits,
    visit: Option<Visitor<'v>>,
}

impl Decoding<'_> {
    fn decode_error(&self, e: ff::Error) -> VpdqError {
        VpdqError::Decode {
            frames: self.decoded,
            reason: e.to_string(),
        }
    }

    /// Every frame the decoder has ready.
    fn receive(&mut self, decoder: &mut ff::decoder::Video) -> Result<(), VpdqError> {
        loop {
            match decoder.receive_frame(&mut self.frame) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    return Ok(());
                }
                Err(e) => return Err(self.decode_error(e)),
            }
            let n = self.decoded;
            self.decoded += 1;
            if self.decoded > self.limits.max_frames {
                return Err(VpdqError::TooManyFrames {
                    limit: self.limits.max_frames,
                });
            }
            let seconds = n as f64 / self.fps;
            if seconds > self.limits.max_seconds {
                return Err(VpdqError::TooLong {
                    seconds,
                    limit: self.limits.max_seconds,
                });
            }
            if n as i64 % self.frame_mod == 0 {
                self.hash_frame(n)?;
            }
        }
    }

    fn hash_frame(&mut self, n: u64) -> Result<(), VpdqError> {
        let (w, h, format) = (self.frame.width(), self.frame.height(), self.frame.format());
        check_pixels(w, h, &self.limits)?;
        let stale = self.scaler.as_ref().is_none_or(|s| {
            let i = s.input();
            (i.format, i.width, i.height) != (format, w, h)
        });
        if stale {
            let s = ff::software::scaling::Context::get(
                format,
                w,
                h,
                ff::format::Pixel::RGB24,
                self.width,
                self.height,
                ff::software::scaling::Flags::AREA,
            )
            .map_err(|e| self.decode_error(e))?;
            self.scaler = Some(s);
        }
        let scaler = self.scaler.as_mut().expect("set above");
        scaler
            .run(&self.frame, &mut self.rgb)
            .map_err(|e| VpdqError::Decode {
                frames: n,
                reason: format!("converting to RGB: {e}"),
            })?;
        let stride = self.rgb.stride(0);
        let img = Image::with_stride(
            self.rgb.data(0),
            self.width as usize,
            self.height as usize,
            stride,
            Layout::Rgb8,
        )
        .map_err(|e| VpdqError::Decode {
            frames: n,
            reason: e.to_string(),
        })?;
        let pdq = self.hasher.hash(&img);
        let f = FrameHash {
            frame: n as u32,
            quality: pdq.quality,
            hash: pdq.hash,
            timestamp: f64::from(n as f32 / self.fps as f32),
        };
        if let Some(visit) = self.visit.as_mut() {
            visit(&f, &img);
        }
        self.frames.push(f);
        Ok(())
    }
}

/// An FFmpeg input reading from memory: an `AVIOContext` whose callbacks read a byte slice.
struct MemInput<'a> {
    input: Option<ff::format::context::Input>,
    avio: *mut ffi::AVIOContext,
    _cursor: Box<Cursor<'a>>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

const IO_BUFFER: usize = 1 << 16;

unsafe extern "C" fn read_cb(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the boxed cursor, alive as long as the AVIOContext.
    let c = unsafe { &mut *(opaque as *mut Cursor<'_>) };
    let n = (size.max(0) as usize).min(c.data.len() - c.pos);
    if n == 0 {
        return ffi::AVERROR_EOF;
    }
    // SAFETY: FFmpeg gives a buffer of `size` bytes; `n` ≤ size and ≤ what is left.
    unsafe { std::ptr::copy_nonoverlapping(c.data.as_ptr().add(c.pos), buf, n) };
    c.pos += n;
    n as c_int
}

unsafe extern "C" fn seek_cb(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `read_cb`.
    let c = unsafe { &mut *(opaque as *mut Cursor<'_>) };
    let len = c.data.len() as i64;
    if whence & ffi::AVSEEK_SIZE as c_int != 0 {
        return len;
    }
    let base = match whence & !(ffi::AVSEEK_FORCE as c_int) {
        0 => 0,
        1 => c.pos as i64,
        2 => len,
        _ => return i64::from(ffi::AVERROR(ffi::EINVAL)),
    };
    match base.checked_add(offset) {
        Some(p) if (0..=len).contains(&p) => {
            c.pos = p as usize;
            p
        }
        _ => i64::from(ffi::AVERROR(ffi::EINVAL)),
    }
}

impl<'a> MemInput<'a> {
    fn open(data: &'a [u8]) -> Result<Self, VpdqError> {
        let mut cursor = Box::new(Cursor { data, pos: 0 });
        let oom = || VpdqError::Open("out of memory".into());
        // SAFETY: each FFmpeg object is checked for null before use and freed on every path:
        // on failure here, and otherwise by `Drop` after the format context.
        unsafe {
            let buf = ffi::av_malloc(IO_BUFFER) as *mut u8;
            if buf.is_null() {
                return Err(oom());
            }
            let opaque = &mut *cursor as *mut Cursor<'_> as *mut c_void;
            let mut avio = ffi::avio_alloc_context(
                buf,
                IO_BUFFER as c_int,
                0,
                opaque,
                Some(read_cb),
                None,
                Some(seek_cb),
            );
            if avio.is_null() {
                ffi::av_free(buf as *mut c_void);
                return Err(oom());
            }
            let free_avio = |avio: &mut *mut ffi::AVIOContext| {
                ffi::av_freep(&mut (**avio).buffer as *mut *mut u8 as *mut c_void);
                ffi::avio_context_free(avio);
            };
            let mut fmt = ffi::avformat_alloc_context();
            if fmt.is_null() {
                free_avio(&mut avio);
                return Err(oom());
            }
            (*fmt).pb = avio;
            (*fmt).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as c_int;
            // On failure avformat_open_input frees `fmt` (but not our I/O context).
            let r = ffi::avformat_open_input(
                &mut fmt,
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null_mut(),
            );
            if r < 0 {
                free_avio(&mut avio);
                return Err(VpdqError::Open(ff::Error::from(r).to_string()));
            }
            let r = ffi::avformat_find_stream_info(fmt, std::ptr::null_mut());
            if r < 0 {
                ffi::avformat_close_input(&mut fmt);
                free_avio(&mut avio);
                return Err(VpdqError::Open(ff::Error::from(r).to_string()));
            }
            Ok(MemInput {
                input: Some(ff::format::context::Input::wrap(fmt)),
                avio,
                _cursor: cursor,
            })
        }
    }
}

impl Drop for MemInput<'_> {
    fn drop(&mut self) {
        // The format context first (it does not free a custom I/O context), then ours.
        drop(self.input.take());
        // SAFETY: `avio` was allocated by `open` and is no longer used by any format context.
        unsafe {
            ffi::av_freep(&mut (*self.avio).buffer as *mut *mut u8 as *mut c_void);
            ffi::avio_context_free(&mut self.avio);
        }
    }
}
