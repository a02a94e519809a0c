//! The process-wide decoding budget: however many threads decode at once, the bytes they hold
//! together stay within it. (Its own test binary: the budget is global to the process.)

use scanlab_imaging::{DecodeOptions, decode, decode_budget_peak, set_decode_budget};

#[test]
fn concurrent_decodes_stay_within_the_budget() {
    // A 2000×2000 PNG reserves 2000·2000·11 = 44 MB; the budget admits one at a time.
    let img = image::RgbImage::from_fn(2000, 2000, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 7])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let one = 2000u64 * 2000 * 11;
    set_decode_budget(one + one / 2);
    decode_budget_peak();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2 {
                    let d = decode(&png, &DecodeOptions::default()).unwrap();
                    assert_eq!(d.width(), 2000);
                }
            });
        }
    });
    let peak = decode_budget_peak();
    assert!(peak >= one, "decodes reserved their worst case ({peak})");
    assert!(
        peak <= one + one / 2,
        "four threads held {peak} bytes at once"
    );
    // A budget larger than four images lets them overlap: the canary that the check can fail.
    set_decode_budget(10 * one);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    decode(&png, &DecodeOptions::default()).unwrap();
                }
            });
        }
    });
    assert!(
        decode_budget_peak() > one + one / 2,
        "with room, decodes do overlap"
    );
}
