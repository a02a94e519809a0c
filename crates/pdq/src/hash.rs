//! The 256-bit PDQ hash value and its canonical text form.

use std::fmt;
use std::str::FromStr;

/// A 256-bit PDQ hash.
///
/// PDQ numbers its bits `k = 16·i + j`, where `(i, j)` is the position of the DCT coefficient
/// the bit describes. Meta's C++ stores them as sixteen 16-bit words (`w[k >> 4]`, bit `k & 15`)
/// and prints the words from `w[15]` down to `w[0]` as 4 hex digits each; that string is what
/// `pdq-photo-hasher`, ThreatExchange and HMA exchange. We store the 32 bytes of that string, in
/// order, as four big-endian `u64`, so that the text form is a plain hex dump and Hamming
/// distance is four XOR+popcounts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256(pub [u64; 4]);

/// Why a hex string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseHashError {
    /// PDQ hex is exactly 64 characters.
    #[error("a PDQ hash is 64 hex characters, got {0}")]
    Length(usize),
    /// Only `0-9a-fA-F` may appear.
    #[error("invalid hex character {0:?} in PDQ hash")]
    Char(char),
}

impl Hash256 {
    /// The all-zero hash, which Meta's reference returns for images too small to hash.
    pub const ZERO: Hash256 = Hash256([0; 4]);

    /// Byte offset and mask of PDQ bit `k` within the canonical 32-byte form.
    #[inline]
    fn locate(k: usize) -> (usize, u8) {
        debug_assert!(k < 256);
        let word = k >> 4; // w[word]
        let bit = k & 15;
        // w[15] occupies bytes 0..2, w[0] bytes 30..32, each big-endian.
        let byte = 2 * (15 - word) + if bit >= 8 { 0 } else { 1 };
        (byte, 1u8 << (bit & 7))
    }

    /// Sets PDQ bit `k` (0..256).
    #[inline]
    pub fn set_bit(&mut self, k: usize) {
        let (byte, mask) = Self::locate(k);
        let mut b = self.to_bytes();
        b[byte] |= mask;
        *self = Self::from_bytes(b);
    }

    /// Reads PDQ bit `k` (0..256).
    #[inline]
    pub fn bit(&self, k: usize) -> bool {
        let (byte, mask) = Self::locate(k);
        self.to_bytes()[byte] & mask != 0
    }

    /// Builds a hash from the 256 bits in PDQ order (`bits[i][j]` is coefficient `(i, j)`).
    pub fn from_bit_matrix(bits: &[[bool; 16]; 16]) -> Self {
        let mut bytes = [0u8; 32];
        for (i, row) in bits.iter().enumerate() {
            let mut w: u16 = 0;
            for (j, &b) in row.iter().enumerate() {
                w |= (b as u16) << j;
            }
            bytes[2 * (15 - i)..2 * (15 - i) + 2].copy_from_slice(&w.to_be_bytes());
        }
        Self::from_bytes(bytes)
    }

    /// The canonical 32 bytes (the hex string, decoded).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, w) in self.0.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Inverse of [`Hash256::to_bytes`].
    pub fn from_bytes(b: [u8; 32]) -> Self {
        let mut w = [0u64; 4];
        for (i, x) in w.iter_mut().enumerate() {
            *x = u64::from_be_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        }
        Hash256(w)
    }

    /// Number of bits in which two hashes differ (0..=256). PDQ calls ≤ 31 a match.
    #[inline]
    pub fn distance(&self, other: &Hash256) -> u32 {
        (self.0[0] ^ other.0[0]).count_ones()
            + (self.0[1] ^ other.0[1]).count_ones()
            + (self.0[2] ^ other.0[2]).count_ones()
            + (self.0[3] ^ other.0[3]).count_ones()
    }

    /// Number of set bits. A PDQ hash of a real image has close to 128, because each bit says
    /// whether a coefficient is above the median.
    pub fn count_ones(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Lowercase hex, as Meta's tools print it.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for w in self.0 {
            s.push_str(&format!("{w:016x}"));
        }
        s
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, ParseHashError> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(ParseHashError::Length(s.chars().count()));
        }
        let mut w = [0u64; 4];
        for (i, c) in s.chars().enumerate() {
            let v = c.to_digit(16).ok_or(ParseHashError::Char(c))? as u64;
            w[i / 16] |= v << (4 * (15 - (i % 16)));
        }
        Ok(Hash256(w))
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({})", self.to_hex())
    }
}

impl FromStr for Hash256 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash256::from_hex(s)
    }
}

impl serde::Serialize for Hash256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash256::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bit_positions() {
        let h =
            Hash256::from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
                .unwrap();
        assert_eq!(
            h.to_hex(),
            "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
        );
        // w[15] = 0xf8f8 is printed first: bit 255 is its top bit, set; bit 250 (0xf8 = 11111000) clear.
        assert!(h.bit(255));
        assert!(!h.bit(250));
        // w[0] = 0x9b22 is printed last: bit 0 is its lowest bit, 0x22 -> bit 1 set, bit 0 clear.
        assert!(!h.bit(0));
        assert!(h.bit(1));
        let mut z = Hash256::ZERO;
        for k in 0..256 {
            if h.bit(k) {
                z.set_bit(k);
            }
        }
        assert_eq!(z, h);
        assert_eq!(h.distance(&z), 0);
        assert_eq!(h.distance(&Hash256::ZERO), h.count_ones());
    }

    #[test]
    fn bad_hex_is_rejected() {
        assert_eq!(Hash256::from_hex("abc"), Err(ParseHashError::Length(3)));
        let bad = "g".repeat(64);
        assert_eq!(Hash256::from_hex(&bad), Err(ParseHashError::Char('g')));
    }
}
