//! Byte sizes (`64KiB`, `1MiB`, or plain bytes). Buffer and message limits are easier to get
//! right in units than as long integers, and both binary and decimal units are accepted
//! because people write both.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const UNITS_HINT: &str = "units: B, KiB, MiB, GiB, KB, MB, GB";

const UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// A number of bytes from the config file.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// For APIs that take `usize`; saturates on 32-bit targets rather than wrapping to a
    /// tiny limit.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Why a size string was refused; the message quotes the input and lists the units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseSizeError(String);

impl FromStr for ByteSize {
    type Err = ParseSizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why: String| Err(ParseSizeError(why));
        let text = input.trim();
        if text.is_empty() {
            return fail(format!("empty size: write e.g. \"64KiB\" ({UNITS_HINT})"));
        }
        if text.starts_with('-') {
            return fail(format!("{input:?}: negative sizes are not allowed"));
        }
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return fail(format!(
                "{input:?} is not a size: expected a number, e.g. \"64KiB\" ({UNITS_HINT})"
            ));
        }
        let (number, unit) = text.split_at(digits);
        if unit.starts_with('.') {
            return fail(format!(
                "{input:?}: fractions are not supported; use a smaller unit, e.g. \"1536KiB\" \
                 rather than \"1.5MiB\""
            ));
        }
        let unit = unit.trim_start();
        let multiplier = if unit.is_empty() {
            1
        } else {
            match UNITS.iter().find(|(name, _)| *name == unit) {
                Some((_, m)) => *m,
                None => return fail(format!("{input:?}: unknown unit {unit:?} ({UNITS_HINT})")),
            }
        };
        let too_large = || ParseSizeError(format!("{input:?}: size is too large"));
        let value: u64 = number.parse().map_err(|_| too_large())?;
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides exactly, binary first, so the text parses back to the
    /// same number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return f.write_str("0B");
        }
        for (name, size) in [
            ("GiB", 1u64 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
            ("GB", 1_000_000_000),
            ("MB", 1_000_000),
            ("KB", 1_000),
        ] {
            if n.is_multiple_of(size) {
                return write!(f, "{}{name}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteSize({self})")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size in bytes, or with a unit such as \"64KiB\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        match u64::try_from(v) {
            Ok(v) => Ok(ByteSize(v)),
            Err(_) => Err(E::custom(format!("{v}: negative sizes are not allowed"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!(
            "{v}: fractions are not supported; write whole bytes or use a smaller unit \
             ({UNITS_HINT})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, String> {
        s.parse::<ByteSize>()
            .map(|b| b.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_plain_bytes_and_units() {
        assert_eq!(parse("512"), Ok(512));
        assert_eq!(parse("512B"), Ok(512));
        assert_eq!(parse("64KiB"), Ok(65_536));
        assert_eq!(parse("1MiB"), Ok(1_048_576));
        assert_eq!(parse("2GiB"), Ok(2_147_483_648));
        assert_eq!(parse("10KB"), Ok(10_000));
        assert_eq!(parse("3MB"), Ok(3_000_000));
        assert_eq!(parse("1GB"), Ok(1_000_000_000));
        assert_eq!(parse("64 KiB"), Ok(65_536));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            parse("5x"),
            Err("\"5x\": unknown unit \"x\" (units: B, KiB, MiB, GiB, KB, MB, GB)".into())
        );
        assert_eq!(
            parse("64kib"),
            Err("\"64kib\": unknown unit \"kib\" (units: B, KiB, MiB, GiB, KB, MB, GB)".into())
        );
        assert_eq!(
            parse("-1KiB"),
            Err("\"-1KiB\": negative sizes are not allowed".into())
        );
        assert_eq!(
            parse("KiB"),
            Err("\"KiB\" is not a size: expected a number, e.g. \"64KiB\" \
                 (units: B, KiB, MiB, GiB, KB, MB, GB)"
                .into())
        );
        assert!(
            parse("1.5MiB")
                .unwrap_err()
                .contains("fractions are not supported")
        );
        assert!(parse("").unwrap_err().starts_with("empty size"));
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(
            parse("99999999999999999999"),
            Err("\"99999999999999999999\": size is too large".into())
        );
        assert_eq!(
            parse("17179869184GiB"),
            Err("\"17179869184GiB\": size is too large".into())
        );
    }

    #[test]
    fn displays_exact_units_and_round_trips() {
        for (n, shown) in [
            (0, "0B"),
            (512, "512B"),
            (65_536, "64KiB"),
            (1_048_576, "1MiB"),
            (1_000, "1KB"),
            (3_000_000, "3MB"),
            (1_024_000, "1000KiB"),
            (1_001, "1001B"),
        ] {
            assert_eq!(ByteSize(n).to_string(), shown);
            assert_eq!(parse(shown), Ok(n));
        }
    }

    #[test]
    fn yaml_accepts_integers_and_strings() {
        assert_eq!(
            serde_norway::from_str::<ByteSize>("4096").ok(),
            Some(ByteSize(4096))
        );
        assert_eq!(
            serde_norway::from_str::<ByteSize>("64KiB").ok(),
            Some(ByteSize(65_536))
        );
        let err = serde_norway::from_str::<ByteSize>("-5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative sizes"), "{err}");
        let err = serde_norway::from_str::<ByteSize>("1.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fractions"), "{err}");
        assert_eq!(
            serde_norway::to_string(&ByteSize(65_536)).ok(),
            Some("64KiB\n".to_string())
        );
    }
}
