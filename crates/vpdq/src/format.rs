//! The two ways vPDQ hashes are written down, both read and written:
//!
//! - **Meta's text format** (`vpdq-hash-video`, the sample hashes): one line per frame,
//!   `frameNumber,quality,pdqHex,timestamp`, the timestamp with three decimals
//!   (`0,100,e271…055c,0.000`).
//! - **ThreatExchange's JSON form** (the Python library's `vpdq_to_json`): a JSON array of
//!   strings `"pdqHex,quality,timestamp"`. It keeps no frame numbers, so [`from_json`] numbers
//!   the frames by position. Its timestamps are Python's `format(t, '.3')`, which keeps three
//!   *significant* digits and switches to exponent notation from 100 s (`"1.23e+03"`): past
//!   100 s the form cannot tell frames a second apart. [`to_json`] writes exactly what the
//!   Python library writes, so the two stay interchangeable; prefer the text format.

use crate::FrameHash;
use scanlab_pdq::Hash256;

/// Why a hash file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct FormatError {
    /// 1-based line (text) or array position (JSON).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Meta's text format, one line per frame.
pub fn to_text(frames: &[FrameHash]) -> String {
    let mut s = String::with_capacity(frames.len() * 80);
    for f in frames {
        s.push_str(&format!(
            "{},{},{},{:.3}\n",
            f.frame,
            f.quality,
            f.hash.to_hex(),
            f.timestamp
        ));
    }
    s
}

/// Reads Meta's text format; blank lines are skipped.
pub fn from_text(text: &str) -> Result<Vec<FrameHash>, FormatError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| FormatError {
            line: i + 1,
            reason,
        };
        let parts: Vec<&str> = line.split(',').collect();
        let [frame, quality, hex, ts] = parts[..] else {
            return Err(err(format!(
                "expected frameNumber,quality,pdqHex,timestamp, got {} fields",
                parts.len()
            )));
        };
        out.push(FrameHash {
            frame: frame
                .parse()
                .map_err(|_| err(format!("bad frame number {frame:?}")))?,
            quality: quality_of(quality).map_err(err)?,
            hash: Hash256::from_hex(hex).map_err(|e| err(format!("bad hash: {e}")))?,
            timestamp: timestamp_of(ts).map_err(err)?,
        });
    }
    Ok(out)
}

fn quality_of(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(q) if q <= 100 => Ok(q),
        _ => Err(format!("bad quality {s:?} (0 to 100)")),
    }
}

fn timestamp_of(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!("bad timestamp {s:?}")),
    }
}

/// ThreatExchange's JSON form (see the module docs for what it loses).
pub fn to_json(frames: &[FrameHash]) -> String {
    let items: Vec<String> = frames
        .iter()
        .map(|f| {
            format!(
                "{},{},{}",
                f.hash.to_hex(),
                f.quality,
                python_general(f.timestamp, 3)
            )
        })
        .collect();
    // `json.dumps` separates items with ", ".
    let quoted: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(i).expect("strings serialise"))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// Reads ThreatExchange's JSON form; frames are numbered by position.
pub fn from_json(json: &str) -> Result<Vec<FrameHash>, FormatError> {
    let json = if json.trim().is_empty() { "[]" } else { json };
    let items: Vec<String> = serde_json::from_str(json).map_err(|e| FormatError {
        line: e.line(),
        reason: format!("not a JSON array of strings: {e}"),
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let err = |reason: String| FormatError {
                line: i + 1,
                reason,
            };
            let parts: Vec<&str> = item.split(',').collect();
            let [hex, quality, ts] = parts[..] else {
                return Err(err(format!(
                    "expected pdqHex,quality,timestamp, got {} fields",
                    parts.len()
                )));
            };
            Ok(FrameHash {
                frame: i as u32,
                quality: quality_of(quality).map_err(err)?,
                hash: Hash256::from_hex(hex).map_err(|e| err(format!("bad hash: {e}")))?,
                timestamp: timestamp_of(ts).map_err(err)?,
            })
        })
        .collect()
}

/// Python's `format(x, '.p')` (no presentation type): `p` significant digits, fixed notation
/// with at least one decimal when the exponent is below `p - 1` (and not below −4), exponent
/// notation otherwise, trailing zeros dropped.
fn python_general(x: f64, p: usize) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // Rust's `{:e}` rounds correctly, as Python's does, so the exponent is that of the
    // rounded value.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    if (-4..(p as i32 - 1)).contains(&exp) {
        let decimals = (p as i32 - 1 - exp) as usize;
        let fixed = format!("{x:.decimals$}");
        let trimmed = fixed.trim_end_matches('0');
        if trimmed.ends_with('.') {
            format!("{trimmed}0")
        } else {
            trimmed.to_string()
        }
    } else {
        let m = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_general_format_matches_known_outputs() {
        // Values printed by CPython 3.11's '{:.3}'.format(x).
        for (x, want) in [
            (0.0, "0.0"),
            (0.0333, "0.0333"),
            (1.0, "1.0"),
            (12.345, "12.3"),
            (100.5, "1e+02"),
            (1234.5, "1.23e+03"),
            (0.000123, "0.000123"),
            (0.0000123, "1.23e-05"),
            (99.96, "1e+02"),
            (9.999, "10.0"),
            (2.5, "2.5"),
        ] {
            assert_eq!(python_general(x, 3), want, "{x}");
        }
    }

    fn frames() -> Vec<FrameHash> {
        (0..3)
            .map(|i| FrameHash {
                frame: i * 10,
                quality: 90 + i as u8,
                hash: Hash256([i as u64 + 1, 2, 3, 4]),
                timestamp: f64::from(i as f32 / 29.97f32),
            })
            .collect()
    }

    #[test]
    fn text_round_trips_to_three_decimals() {
        let f = frames();
        let back = from_text(&to_text(&f)).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in f.iter().zip(&back) {
            assert_eq!((a.frame, a.quality, a.hash), (b.frame, b.quality, b.hash));
            assert!((a.timestamp - b.timestamp).abs() <= 0.0005);
        }
        assert_eq!(to_text(&back), to_text(&f));
    }

    #[test]
    fn json_numbers_frames_by_position() {
        let back = from_json(&to_json(&frames())).unwrap();
        assert_eq!(back.iter().map(|f| f.frame).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(back[2].hash, Hash256([3, 2, 3, 4]));
        assert_eq!(from_json("").unwrap(), vec![]);
    }

    #[test]
    fn bad_lines_are_named() {
        let good = to_text(&frames());
        let bad = format!("{good}7,101,{},1.0\n", Hash256::ZERO.to_hex());
        assert_eq!(from_text(&bad).unwrap_err().line, 4);
        assert_eq!(from_text("1,2,3").unwrap_err().line, 1);
        assert!(from_text("0,50,zz,0.0").is_err());
        assert!(from_json("{}").is_err());
        assert_eq!(from_json(r#"["00,1"]"#).unwrap_err().line, 1);
    }
}
