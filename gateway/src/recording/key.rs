//! A recording's name: the day its session started, its cluster and its session id. As an id
//! in URLs and audit lines it reads `YYYYMMDD.CLUSTER.SESSION`; in a directory it is the path
//! `YYYY/MM/DD/CLUSTER/SESSION.cast`. Pure; an id from a request is parsed strictly, so it can
//! never name a path outside the recordings.

use std::fmt;
use std::path::PathBuf;

/// A day of the proleptic Gregorian calendar, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Day {
    /// The UTC day of Unix time `secs`.
    pub fn of_unix(secs: u64) -> Day {
        // Howard Hinnant's civil_from_days.
        let z = (secs / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Day { year, month, day }
    }

    /// Unix seconds of the day's start.
    pub fn start_unix(self) -> u64 {
        let (y, m, d) = (
            i64::from(self.year) - i64::from(self.month <= 2),
            i64::from(self.month),
            i64::from(self.day),
        );
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        (days.max(0) as u64) * 86_400
    }

    /// `YYYYMMDD`.
    pub fn parse(s: &str) -> Option<Day> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = s[..4].parse().ok()?;
        let month = s[4..6].parse().ok()?;
        let day = s[6..].parse().ok()?;
        let d = Day { year, month, day };
        // Only days that exist: the round trip through Unix time says so.
        (year >= 1970 && Day::of_unix(d.start_unix()) == d).then_some(d)
    }

    /// The directory of the day, relative to the recordings: `YYYY/MM/DD`.
    pub fn dir(self) -> PathBuf {
        PathBuf::from(format!(
            "{:04}/{:02}/{:02}",
            self.year, self.month, self.day
        ))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

/// One recording.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub day: Day,
    pub cluster: String,
    pub session: String,
}

impl Key {
    /// `YYYYMMDD.CLUSTER.SESSION`, or `None` for anything else (any other character, a path).
    pub fn parse(id: &str) -> Option<Key> {
        let mut parts = id.split('.');
        let (day, cluster, session) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_cluster(cluster) || !is_session(session) {
            return None;
        }
        Some(Key {
            day: Day::parse(day)?,
            cluster: cluster.to_string(),
            session: session.to_string(),
        })
    }

    /// The file, relative to the recordings.
    pub fn path(&self) -> PathBuf {
        self.day
            .dir()
            .join(&self.cluster)
            .join(format!("{}.cast", self.session))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.day, self.cluster, self.session)
    }
}

/// A cluster id as the config allows it (a DNS label).
pub fn is_cluster(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A session id as podgate makes them (hex digits and `-`).
pub fn is_session(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_unix_time() {
        assert_eq!(
            Day::of_unix(0),
            Day {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        // 2026-12-01T20:51:00Z
        let d = Day::of_unix(1_796_158_260);
        assert_eq!(
            d,
            Day {
                year: 2026,
                month: 12,
                day: 1
            }
        );
        assert_eq!(d.to_string(), "20261201");
        assert_eq!(d.dir(), PathBuf::from("2026/12/01"));
        // Leap day, and every day start round-trips for a few years.
        assert_eq!(
            Day::parse("20280229"),
            Some(Day {
                year: 2028,
                month: 2,
                day: 29
            })
        );
        for n in 0..(4 * 366) {
            let t = 1_767_225_600 + n * 86_400; // from 2026-01-01
            let d = Day::of_unix(t);
            assert_eq!(d.start_unix(), t, "{d}");
            assert_eq!(Day::of_unix(t + 86_399), d);
        }
    }

    #[test]
    fn ids_parse_strictly() {
        let k = Key::parse("20261201.east-1.19ad6f0c1a2-3-00ab12").expect("an id");
        assert_eq!(k.cluster, "east-1");
        assert_eq!(
            k.path(),
            PathBuf::from("2026/12/01/east-1/19ad6f0c1a2-3-00ab12.cast")
        );
        assert_eq!(k.to_string(), "20261201.east-1.19ad6f0c1a2-3-00ab12");
        for bad in [
            "",
            "20261201.east",
            "20261201.east.x.y",
            "20261301.east.abc",
            "20260230.east.abc",
            "2026121.east.abc",
            "20261201.East.abc",
            "20261201.-east.abc",
            "20261201.east.ab/c",
            "20261201.east..",
            "20261201.east.abc%2f",
            "20261201.east.xyz",
            "20261201..abc",
            "../../etc.east.abc",
        ] {
            assert_eq!(Key::parse(bad), None, "{bad:?}");
        }
    }
}
