//! Attacks on PDQ: evading copies of a listed image, and innocent-looking images that collide
//! with a listed hash.
//!
//! Each attack is a seeded, deterministic procedure with a budget, run against scanlab's own PDQ
//! ([`scanlab_pdq`], bit-exact with Meta's). Every outcome is judged by hashing the image the
//! attack returns, exactly as a device would hash it; nothing is taken from the attack's own
//! bookkeeping.
//!
//! - [`whitebox`]: the attacker knows PDQ. Luminance, the box filter, the downsample and the DCT
//!   are linear, so the only non-linear step is the median threshold. The attack steers chosen
//!   DCT coefficients across the median with the minimum-norm image change that moves them (the
//!   DCT basis images themselves, see [`lift`]), re-hashes after each step, and finally shrinks
//!   the change to the smallest multiple that still works. It serves both evasion (move away from
//!   a listed hash) and collision (move toward one).
//! - [`blackbox`]: the attacker only learns "matched or not" from an oracle, with a query budget,
//!   and uses no knowledge of PDQ beyond "it is robust to small changes": random smooth noise,
//!   scaled by search, then refined by a (1+1) random search.
//!
//! Published comparison points (`../shared/notes/literature.md`): Jain, Creţu and de Montjoye
//! (USENIX Security 2022) evaded PDQ-style hashes on more than 99.9% of images black-box while
//! keeping content; Madden et al. (arXiv 2406.00918) found PDQ resists black-box evasion under
//! realistic distortion and query budgets; Dolhansky and Canton Ferrer (arXiv 2011.09473) made
//! white-box collisions for nearly every image pair.

#![warn(missing_docs)]

pub mod blackbox;
pub mod lift;
pub mod whitebox;

use image::RgbImage;
use scanlab_imaging::quality::{Gray, ssim};
use scanlab_pdq::{Hash256, Hasher};

/// How much work an attack may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// Within about a second per image on one core, so an evaluation can attack every list
    /// image.
    Default,
    /// Ten times as many iterations and queries, for success rates comparable with published
    /// ones.
    Large,
}

impl Budget {
    /// White-box steering iterations (one hash each).
    pub fn iterations(self) -> u32 {
        match self {
            Budget::Default => 60,
            Budget::Large => 600,
        }
    }

    /// Black-box oracle queries.
    pub fn queries(self) -> u32 {
        match self {
            Budget::Default => 200,
            Budget::Large => 2000,
        }
    }

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Budget::Default => "default",
            Budget::Large => "large",
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = AttackError;
    fn from_str(s: &str) -> Result<Self, AttackError> {
        match s {
            "default" => Ok(Budget::Default),
            "large" => Ok(Budget::Large),
            other => Err(AttackError::Budget(other.to_string())),
        }
    }
}

/// Why an attack could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttackError {
    /// PDQ needs at least this many pixels a side, and SSIM 7.
    #[error("image is {0}×{1}; an attack needs at least 8×8 pixels")]
    TooSmall(u32, u32),
    /// An unknown budget name.
    #[error("unknown budget {0:?}: use default or large")]
    Budget(String),
}

/// How far an attacked image is from the image it started from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Change {
    /// PSNR over all RGB samples, in dB (infinite when nothing changed).
    pub psnr: f64,
    /// Mean SSIM of the two images' luma (scikit-image's defaults).
    pub ssim: f64,
    /// Euclidean norm of the difference over all RGB samples, on a 0..=1 scale.
    pub l2: f64,
    /// Largest change of one sample, on a 0..=255 scale.
    pub linf: u8,
}

impl Change {
    /// Measures `b` against `a`, which must have the same size.
    pub fn between(a: &RgbImage, b: &RgbImage) -> Change {
        assert_eq!(a.dimensions(), b.dimensions(), "an attack keeps the size");
        let (mut sq, mut linf) = (0f64, 0u8);
        for (&p, &q) in a.as_raw().iter().zip(b.as_raw()) {
            let d = p.abs_diff(q);
            linf = linf.max(d);
            sq += (d as f64) * (d as f64);
        }
        let n = a.as_raw().len() as f64;
        let psnr_rgb = if sq == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0f64 * 255.0 / (sq / n)).log10()
        };
        let (ga, gb) = (Gray::from_rgb(a), Gray::from_rgb(b));
        Change {
            psnr: psnr_rgb,
            ssim: ssim(&ga, &gb).unwrap_or(f64::NAN),
            l2: sq.sqrt() / 255.0,
            linf,
        }
    }
}

/// What an attack produced, judged by hashing it.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The attacked image (the input itself when the attack found nothing better).
    pub image: RgbImage,
    /// Its PDQ hash.
    pub hash: Hash256,
    /// Its distance from the attack's reference hash (the listed hash).
    pub distance: u32,
    /// Whether it achieved the goal: beyond the radius for evasion, within it for collision.
    pub success: bool,
    /// Hashes computed (white-box iterations) or oracle queries (black-box).
    pub cost: u32,
    /// How far it is from the input.
    pub change: Change,
}

impl Outcome {
    /// Writes the attacked image as PNG (lossless, so its hash is the one reported).
    pub fn save_png(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.image
            .save_with_format(path, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    }
}

/// The PDQ hash of an RGB image, as every device in scanlab computes it.
pub fn pdq(img: &RgbImage) -> Hash256 {
    Hasher::new().hash(&scanlab_imaging::pdq_image(img)).hash
}

fn check_size(img: &RgbImage) -> Result<(), AttackError> {
    if img.width() < 8 || img.height() < 8 {
        return Err(AttackError::TooSmall(img.width(), img.height()));
    }
    Ok(())
}

fn outcome(
    x0: &RgbImage,
    image: RgbImage,
    reference: &Hash256,
    success: bool,
    cost: u32,
) -> Outcome {
    let hash = pdq(&image);
    Outcome {
        change: Change::between(x0, &image),
        distance: hash.distance(reference),
        hash,
        image,
        success,
        cost,
    }
}
