//! Two-party distributed point functions, from the `prio` crate's incremental DPF (IDPF), the
//! construction of draft-irtf-cfrg-vdaf-18 §8 (Poplar1: Boneh, Boyle, Corrigan-Gibbs, Gilboa
//! and Ishai, IEEE S&P 2021, after Boyle, Gilboa and Ishai, CCS 2016). Nothing here is new
//! cryptography: this module only fixes the parameters and the wire form.
//!
//! A point function over `n`-bit inputs is 1 at one point `x*` and 0 elsewhere. [`split`]
//! makes two keys for it. Each key alone is pseudorandom and says nothing of `x*`; each holder
//! evaluates its key at any input and gets an additive share (in prio's 64-bit prime field
//! `Field64`) of the function's value there, so the sum of the two shares over a set of inputs
//! counts how many of them equal `x*`. The values along the path to `x*` (the prefixes of
//! `x*`, the IDPF's inner levels) are 1 as well, as in Poplar1: organisations evaluate leaves
//! only, and holders of both keys, who can find `x*` anyway by evaluating every leaf, walk to
//! it in `2n` evaluations instead ([`recover`]).
//!
//! [`KeyShare`] is the wire form of one key, with the bit `offset` of its point inside the
//! 256-bit value it was cut from. The evaluation's analyst recognises it by that shape, as it
//! recognises an attachment reference: it knows the primitives' formats, never a scheme's.

use crate::SchemeError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use prio::codec::{Decode, Encode, ParameterizedDecode};
use prio::field::Field64;
use prio::idpf::{Idpf, IdpfInput, IdpfOutputShare, IdpfPublicShare, NoCache};
use prio::vdaf::xof::Seed;

/// The label every [`KeyShare`] carries, naming the construction and field.
pub const LABEL: &str = "idpf draft-irtf-cfrg-vdaf-18 field64";
/// The IDPF context string.
const CTX: &[u8] = b"scanlab-dpf-v1";
/// The IDPF nonce: fixed, as each key pair is used for one point only.
const NONCE: &[u8; 16] = b"scanlab-dpf-v1\0\0";
/// The longest point accepted (bits), bounding evaluation cost.
pub const MAX_BITS: usize = 64;

/// One party's key of a two-party point function over a `bits`-bit domain.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyShare {
    /// Always [`LABEL`].
    pub idpf: String,
    /// Which of the two keys (0 or 1).
    pub agg: u8,
    /// The point's bit offset inside the 256-bit value it was cut from.
    pub offset: u16,
    /// The domain's width in bits.
    pub bits: u16,
    /// The public share (correction words), base64: the same in both keys.
    pub public: String,
    /// This key's 16-byte seed, base64.
    pub key: String,
}

type Public = IdpfPublicShare<Field64, Field64>;

fn idpf() -> Idpf<Field64, Field64> {
    Idpf::new((), ())
}

fn bad(m: impl std::fmt::Display) -> SchemeError {
    SchemeError::Malformed(format!("point-function key: {m}"))
}

/// The two keys of the point function at `point` (most significant bit first), cut from bit
/// `offset` of a larger value.
pub fn split(point: &[bool], offset: u16) -> Result<[KeyShare; 2], SchemeError> {
    if point.is_empty() || point.len() > MAX_BITS {
        return Err(bad(format!("{} bits (1 to {MAX_BITS})", point.len())));
    }
    let ones = vec![Field64::from(1u64); point.len() - 1];
    let (public, keys) = idpf()
        .r#gen(
            &IdpfInput::from_bools(point),
            ones,
            Field64::from(1u64),
            CTX,
            NONCE,
        )
        .map_err(bad)?;
    let public = B64.encode(public.get_encoded().map_err(bad)?);
    let share = |agg: usize| -> Result<KeyShare, SchemeError> {
        Ok(KeyShare {
            idpf: LABEL.into(),
            agg: agg as u8,
            offset,
            bits: point.len() as u16,
            public: public.clone(),
            key: B64.encode(keys[agg].get_encoded().map_err(bad)?),
        })
    };
    Ok([share(0)?, share(1)?])
}

/// A [`KeyShare`] decoded and checked, ready to evaluate.
pub struct Key {
    agg: usize,
    bits: usize,
    public: Public,
    seed: Seed<16>,
}

impl KeyShare {
    /// Decodes and checks the key.
    pub fn open(&self) -> Result<Key, SchemeError> {
        let bits = self.bits as usize;
        if self.idpf != LABEL {
            return Err(bad(format!("unknown construction {:?}", self.idpf)));
        }
        if bits == 0 || bits > MAX_BITS || self.agg > 1 {
            return Err(bad(format!("{bits} bits, key {}", self.agg)));
        }
        let public = B64.decode(&self.public).map_err(bad)?;
        let public = Public::get_decoded_with_param(&bits, &public).map_err(bad)?;
        let seed = B64.decode(&self.key).map_err(bad)?;
        let seed = Seed::<16>::get_decoded(&seed).map_err(bad)?;
        Ok(Key {
            agg: self.agg as usize,
            bits,
            public,
            seed,
        })
    }
}

impl Key {
    /// The domain's width in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// This key's share of the function's value at `x` (a prefix of the domain, or a whole
    /// input), as a field element's integer.
    pub fn eval(&self, x: &[bool]) -> Result<u64, SchemeError> {
        if x.is_empty() || x.len() > self.bits {
            return Err(bad(format!("input of {} bits", x.len())));
        }
        let out = idpf()
            .eval(
                self.agg,
                &self.public,
                &self.seed,
                &IdpfInput::from_bools(x),
                CTX,
                NONCE,
                &mut NoCache::new(),
            )
            .map_err(bad)?;
        Ok(match out {
            IdpfOutputShare::Inner(v) | IdpfOutputShare::Leaf(v) => u64::from(v),
        })
    }
}

/// Adds two shares in the field.
pub fn add(a: u64, b: u64) -> u64 {
    u64::from(Field64::from(a) + Field64::from(b))
}

/// Adds `w` copies of a share (a public weight times a share), in the field.
pub fn scale(share: u64, w: u64) -> u64 {
    u64::from(Field64::from(share) * Field64::from(w))
}

/// The point of a function, from both of its keys: a walk down the prefix tree, keeping at
/// each level the child whose two shares sum to 1. `None` if the keys are not two halves of
/// one function (the walk leaves the path).
pub fn recover(a: &Key, b: &Key) -> Option<Vec<bool>> {
    if a.agg == b.agg || a.bits != b.bits {
        return None;
    }
    let at = |x: &[bool]| -> Option<u64> { Some(add(a.eval(x).ok()?, b.eval(x).ok()?)) };
    let mut x = vec![false; a.bits];
    for level in 0..a.bits {
        // The path takes the 0 child unless only the 1 child is on it.
        if at(&x[..=level])? != 1 {
            x[level] = true;
            if at(&x[..=level])? != 1 {
                return None;
            }
        }
    }
    Some(x)
}

/// The `bits` bits of `bytes` from bit `offset`, most significant first.
pub fn bits_of(bytes: &[u8], offset: usize, bits: usize) -> Vec<bool> {
    (offset..offset + bits)
        .map(|i| bytes[i / 8] >> (7 - i % 8) & 1 == 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bools(v: u32, n: usize) -> Vec<bool> {
        (0..n).map(|i| (v >> (n - 1 - i)) & 1 == 1).collect()
    }

    #[test]
    fn shares_sum_to_one_at_the_point_only_and_both_keys_recover_it() {
        let point = bools(0xBEEF, 16);
        let [a, b] = split(&point, 32).unwrap();
        let (ka, kb) = (a.open().unwrap(), b.open().unwrap());
        for x in [0xBEEF, 0xBEEE, 0x3EEF, 0, 0xFFFF] {
            let x = bools(x, 16);
            let sum = add(ka.eval(&x).unwrap(), kb.eval(&x).unwrap());
            assert_eq!(sum, u64::from(x == point), "{x:?}");
        }
        // A public weight rides along: the organisations' index sums.
        let w = scale(ka.eval(&point).unwrap(), 7);
        assert_eq!(add(w, scale(kb.eval(&point).unwrap(), 7)), 7);
        assert_eq!(recover(&ka, &kb), Some(point.clone()));
        // One key alone, twice, or halves of two different functions recover nothing.
        assert_eq!(recover(&ka, &ka), None);
        let [_, other] = split(&bools(0x1234, 16), 32).unwrap();
        assert_ne!(recover(&ka, &other.open().unwrap()), Some(point));
    }

    #[test]
    fn a_key_alone_varies_with_every_split_of_the_same_point() {
        let p = bools(5, 16);
        let (x, y) = (split(&p, 0).unwrap(), split(&p, 0).unwrap());
        assert_ne!(x[0].key, y[0].key);
        assert_ne!(x[0].public, y[0].public);
    }

    #[test]
    fn malformed_keys_are_typed_errors() {
        let [a, _] = split(&bools(1, 8), 0).unwrap();
        for broken in [
            KeyShare {
                idpf: "other".into(),
                ..a.clone()
            },
            KeyShare {
                bits: 200,
                ..a.clone()
            },
            KeyShare {
                public: "!!".into(),
                ..a.clone()
            },
            KeyShare {
                key: B64.encode([1u8; 3]),
                ..a.clone()
            },
            KeyShare {
                bits: 9,
                ..a.clone()
            },
        ] {
            assert!(matches!(broken.open(), Err(SchemeError::Malformed(_))));
        }
        assert!(split(&[], 0).is_err());
        assert!(a.open().unwrap().eval(&bools(1, 9)).is_err());
        assert_eq!(
            bits_of(&[0b1010_0000, 0xFF], 0, 4),
            [true, false, true, false]
        );
        assert_eq!(bits_of(&[0, 0b0100_0000], 9, 1), [true]);
    }
}
