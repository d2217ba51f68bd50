//! Human-written durations (`20s`, `1h30m`). Operators read and write these in YAML; a bare
//! number is refused because `timeout: 30` is ambiguous between seconds and milliseconds.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const UNITS_HINT: &str = "units: ms, s, m, h, d";

/// Largest unit first: the order in which a combination must be written and displayed.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration from the config file. Always a whole number of milliseconds, so that it
/// displays back exactly as something the parser accepts. Zero means "off" for the
/// settings that document it; see [`Duration::enabled`].
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// For settings where `0s` disables the feature: `None` when off.
    pub const fn enabled(self) -> Option<std::time::Duration> {
        if self.0.is_zero() { None } else { Some(self.0) }
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a duration string was refused; the message quotes the input and shows valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDurationError(String);

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why: String| Err(ParseDurationError(why));
        if input.is_empty() {
            return fail(format!(
                "empty duration: write e.g. \"20s\" or \"1h30m\" ({UNITS_HINT})"
            ));
        }
        if input.starts_with('-') {
            return fail(format!("{input:?}: negative durations are not allowed"));
        }
        if input.bytes().all(|b| b.is_ascii_digit()) {
            return fail(format!(
                "missing unit in {input:?}: write e.g. \"{input}s\" ({UNITS_HINT})"
            ));
        }
        let mut rest = input;
        let mut total_ms: u64 = 0;
        // Index into UNITS of the previous unit; the next one must be strictly smaller.
        let mut previous: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return fail(format!(
                    "{input:?} is not a duration: expected a number at {rest:?} \
                     (write e.g. \"20s\" or \"1h30m\")"
                ));
            }
            let (number, after) = rest.split_at(digits);
            if after.starts_with('.') {
                return fail(format!(
                    "{input:?}: fractions are not supported; use a smaller unit, e.g. \"90m\" \
                     rather than \"1.5h\""
                ));
            }
            let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (unit, after) = after.split_at(unit_len);
            if unit.is_empty() {
                return fail(format!(
                    "missing unit after {number} in {input:?} ({UNITS_HINT})"
                ));
            }
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return fail(format!("{input:?}: unknown unit {unit:?} ({UNITS_HINT})"));
            };
            if previous.is_some_and(|p| p >= index) {
                return fail(format!(
                    "{input:?}: units must go from largest to smallest, each at most once \
                     (e.g. \"1h30m\")"
                ));
            }
            previous = Some(index);
            let too_large = || ParseDurationError(format!("{input:?}: duration is too large"));
            let value: u64 = number.parse().map_err(|_| too_large())?;
            total_ms = value
                .checked_mul(UNITS[index].1)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(too_large)?;
            rest = after;
        }
        Ok(Duration::from_millis(total_ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sub-millisecond parts cannot come from the parser or the constructors.
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, size) in UNITS {
            let count = ms / size;
            if count > 0 {
                write!(f, "{count}{name}")?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({self})")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_any` so that an unquoted `20` reaches us as a number and gets the
        // "missing unit" advice instead of a generic type error.
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"20s\" or \"1h30m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{v}: fractions are not supported; write a duration with a unit, e.g. \"1500ms\" \
             ({UNITS_HINT})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Duration, String> {
        s.parse::<Duration>().map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_each_unit_and_combinations() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("1d2h3m4s5ms"), Ok(Duration::from_millis(93_784_005)));
    }

    #[test]
    fn rejects_bare_numbers_with_advice() {
        assert_eq!(
            parse("20"),
            Err("missing unit in \"20\": write e.g. \"20s\" (units: ms, s, m, h, d)".into())
        );
        assert_eq!(
            parse("1h30"),
            Err("missing unit after 30 in \"1h30\" (units: ms, s, m, h, d)".into())
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            parse("5x"),
            Err("\"5x\": unknown unit \"x\" (units: ms, s, m, h, d)".into())
        );
        assert_eq!(
            parse("-1s"),
            Err("\"-1s\": negative durations are not allowed".into())
        );
        assert_eq!(
            parse(""),
            Err("empty duration: write e.g. \"20s\" or \"1h30m\" (units: ms, s, m, h, d)".into())
        );
        assert_eq!(
            parse("s"),
            Err("\"s\" is not a duration: expected a number at \"s\" \
                 (write e.g. \"20s\" or \"1h30m\")"
                .into())
        );
        assert_eq!(
            parse("1h 30m"),
            Err(
                "\"1h 30m\" is not a duration: expected a number at \" 30m\" \
                 (write e.g. \"20s\" or \"1h30m\")"
                    .into()
            )
        );
        assert!(
            parse("1.5h")
                .unwrap_err()
                .contains("fractions are not supported")
        );
        assert_eq!(
            parse("30m1h"),
            Err(
                "\"30m1h\": units must go from largest to smallest, each at most once \
                 (e.g. \"1h30m\")"
                    .into()
            )
        );
        assert!(parse("1s1s").unwrap_err().contains("each at most once"));
    }

    #[test]
    fn rejects_overflow() {
        let err = "\"99999999999999999999999s\": duration is too large";
        assert_eq!(parse("99999999999999999999999s"), Err(err.into()));
        // Fits in u64 but not once multiplied into milliseconds.
        assert_eq!(
            parse("18446744073709551615d"),
            Err("\"18446744073709551615d\": duration is too large".into())
        );
        // Each part fits, the sum does not.
        assert!(parse("213503982334d15h").unwrap_err().contains("too large"));
        assert!(parse("213503982334d14h").is_ok());
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        for (input, shown) in [
            ("0s", "0s"),
            ("90m", "1h30m"),
            ("1500ms", "1s500ms"),
            ("2d", "2d"),
            ("12h", "12h"),
            ("1d2h3m4s5ms", "1d2h3m4s5ms"),
        ] {
            let d = parse(input).expect(input);
            assert_eq!(d.to_string(), shown);
            assert_eq!(parse(shown), Ok(d));
        }
        assert_eq!(format!("{:?}", Duration::from_secs(20)), "Duration(20s)");
    }

    #[test]
    fn enabled_treats_zero_as_off() {
        assert_eq!(Duration::ZERO.enabled(), None);
        assert_eq!(
            Duration::from_secs(1).enabled(),
            Some(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn yaml_numbers_get_unit_advice() {
        let err = serde_norway::from_str::<Duration>("20")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("missing unit in \"20\""), "{err}");
        let err = serde_norway::from_str::<Duration>("-3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative durations"), "{err}");
        let err = serde_norway::from_str::<Duration>("1.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fractions are not supported"), "{err}");
        assert_eq!(
            serde_norway::from_str::<Duration>("1h30m").ok(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            serde_norway::to_string(&Duration::from_secs(5400)).ok(),
            Some("1h30m\n".to_string())
        );
    }
}
