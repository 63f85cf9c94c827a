//! Event time: [`EventTime`] (microseconds since the Unix epoch, UTC; RFC 3339 in and out) and
//! the tumbling windows of a [`WindowConfig`] (spec §2).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Microseconds in a second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A point in event time: microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventTime(pub i64);

/// Why a timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp with a `Z` or `±hh:mm` offset")]
pub struct TimeParseError;

impl EventTime {
    /// The earliest representable time; sorts before every real window.
    pub const MIN: EventTime = EventTime(i64::MIN);

    /// A time from whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> EventTime {
        EventTime(secs * MICROS_PER_SECOND)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// This time moved by `micros` (saturating).
    pub const fn plus_micros(self, micros: i64) -> EventTime {
        EventTime(self.0.saturating_add(micros))
    }

    /// The current wall-clock time.
    pub fn now() -> EventTime {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        EventTime(since.as_micros() as i64)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`.
    ///
    /// The fraction has 0 to 9 digits; digits beyond the microsecond are truncated. `t`, `z` and
    /// a space separator are accepted as RFC 3339 allows.
    pub fn parse_rfc3339(text: &str) -> Result<EventTime, TimeParseError> {
        let b = text.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(TimeParseError);
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(TimeParseError);
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(TimeParseError);
        }

        let mut rest = &b[19..];
        let mut micros = 0i64;
        if let [b'.', tail @ ..] = rest {
            let count = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if count == 0 || count > 9 {
                return Err(TimeParseError);
            }
            for (i, &c) in tail[..count].iter().enumerate() {
                if i < 6 {
                    micros = micros * 10 + i64::from(c - b'0');
                }
            }
            for _ in count..6 {
                micros *= 10;
            }
            rest = &tail[count..];
        }

        let offset_secs = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = digits(&[*h1, *h2])?;
                let minutes = digits(&[*m1, *m2])?;
                if hours > 23 || minutes > 59 {
                    return Err(TimeParseError);
                }
                let secs = hours * 3600 + minutes * 60;
                if *sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            _ => return Err(TimeParseError),
        };

        let days = days_from_civil(year, month, day);
        let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(EventTime(secs * MICROS_PER_SECOND + micros))
    }
}

impl From<EventTime> for std::time::SystemTime {
    fn from(time: EventTime) -> std::time::SystemTime {
        let since = std::time::Duration::from_micros(time.0.unsigned_abs());
        if time.0 >= 0 {
            std::time::UNIX_EPOCH + since
        } else {
            std::time::UNIX_EPOCH - since
        }
    }
}

impl From<std::time::SystemTime> for EventTime {
    /// Saturates beyond ±292,000 years.
    fn from(time: std::time::SystemTime) -> EventTime {
        let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => EventTime(micros(after)),
            Err(before) => EventTime(-micros(before.duration())),
        }
    }
}

/// RFC 3339 in UTC: `2025-12-20T18:34:00Z`, with six fractional digits when there is a fraction.
impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let of_day = secs.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        write!(f, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

fn digits(bytes: &[u8]) -> Result<i64, TimeParseError> {
    bytes.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(TimeParseError)
        }
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Window size and allowed lateness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    size_secs: u32,
    lateness_secs: u32,
}

impl Default for WindowConfig {
    /// One-minute windows, ten minutes of lateness: the original pipeline's settings.
    fn default() -> Self {
        WindowConfig { size_secs: 60, lateness_secs: 600 }
    }
}

impl WindowConfig {
    /// Windows of `size_secs` (a whole number of seconds that divides a day) and
    /// `lateness_secs` of allowed lateness.
    pub fn new(size_secs: u32, lateness_secs: u32) -> Result<WindowConfig, Error> {
        if size_secs == 0 || 86_400 % size_secs != 0 {
            return Err(Error::configuration(format!(
                "the window size must be a whole number of seconds that divides a day, not {size_secs}"
            )));
        }
        Ok(WindowConfig { size_secs, lateness_secs })
    }

    /// The window size in seconds.
    pub fn size_secs(&self) -> u32 {
        self.size_secs
    }

    /// The allowed lateness in seconds.
    pub fn lateness_secs(&self) -> u32 {
        self.lateness_secs
    }

    fn size_micros(&self) -> i64 {
        i64::from(self.size_secs) * MICROS_PER_SECOND
    }

    /// The start of the window holding `ts`: `floor(ts / size) * size`.
    pub fn start_of(&self, ts: EventTime) -> EventTime {
        EventTime(ts.micros().div_euclid(self.size_micros()) * self.size_micros())
    }

    /// The end of the window starting at `start`.
    pub fn end_of(&self, start: EventTime) -> EventTime {
        start.plus_micros(self.size_micros())
    }

    /// The watermark that a partition whose largest `ts` is `max_ts` has.
    pub fn watermark(&self, max_ts: EventTime) -> EventTime {
        max_ts.plus_micros(-i64::from(self.lateness_secs) * MICROS_PER_SECOND)
    }
}

/// Serde of an [`EventTime`] as an RFC 3339 string, for events decoded from JSON:
/// `#[serde(with = "streamflow_core::time::rfc3339")]`.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::EventTime;

    /// Writes the time as RFC 3339, UTC.
    pub fn serialize<S: Serializer>(time: &EventTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(time)
    }

    /// Reads an RFC 3339 time with a `Z` or `±hh:mm` offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EventTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventTime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> EventTime {
        EventTime::parse_rfc3339(text).unwrap()
    }

    fn t(text: &str) -> i64 {
        EventTime::parse_rfc3339(text).unwrap().micros()
    }

    #[test]
    fn parses_utc_and_offsets_to_the_same_instant() {
        let utc = t("2025-12-20T18:34:38.300308Z");
        assert_eq!(utc, t("2025-12-20T18:34:38.300308+00:00"));
        assert_eq!(utc, t("2025-12-20T20:34:38.300308+02:00"));
        assert_eq!(utc, t("2025-12-20T13:04:38.300308-05:30"));
        assert_eq!(utc, t("2025-12-21T00:04:38.300308+05:30"));
        assert_eq!(EventTime(utc).to_string(), "2025-12-20T18:34:38.300308Z");
    }

    #[test]
    fn fraction_is_kept_to_the_microsecond_and_truncated_beyond() {
        let base = t("2025-12-20T18:34:38Z");
        assert_eq!(t("2025-12-20T18:34:38.3Z") - base, 300_000);
        assert_eq!(t("2025-12-20T18:34:38.123456789Z") - base, 123_456);
        assert_eq!(t("2025-12-20T18:34:38.999999999Z") - base, 999_999);
        assert!(EventTime::parse_rfc3339("2025-12-20T18:34:38.1234567890Z").is_err());
        assert!(EventTime::parse_rfc3339("2025-12-20T18:34:38.Z").is_err());
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("2000-03-01T00:00:00Z"), 951_868_800 * MICROS_PER_SECOND);
        assert_eq!(t("1969-12-31T23:59:59Z"), -MICROS_PER_SECOND);
        assert_eq!(EventTime(-1).to_string(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rejects_what_rfc_3339_rejects() {
        for bad in [
            "",
            "2025-12-20",
            "2025-12-20T18:34:38",       // no offset
            "2025-12-20T18:34:38+0100",  // offset without colon
            "2025-13-20T18:34:38Z",      // month
            "2025-02-29T18:34:38Z",      // not a leap year
            "2025-12-20T24:00:00Z",      // hour
            "2025-12-20T18:60:00Z",      // minute
            "2025-12-20T18:34:60Z",      // leap second
            "2025-12-20T18:34:38+24:00", // offset hours
            "2025-12-20T18:34:38Zjunk",  // trailing text
            "２０２５-12-20T18:34:38Z",  // non-ASCII digits
            "2025/12/20T18:34:38Z",
        ] {
            assert!(EventTime::parse_rfc3339(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(EventTime::parse_rfc3339("2024-02-29t18:34:38z").is_ok());
        assert!(EventTime::parse_rfc3339("2024-02-29 18:34:38Z").is_ok());
    }

    #[test]
    fn event_times_survive_the_round_trip_through_system_time() {
        for micros in [0, 1, -1, 1_766_255_678_300_308, -86_400_000_001] {
            let there: std::time::SystemTime = EventTime(micros).into();
            assert_eq!(EventTime::from(there), EventTime(micros));
        }
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn window_bounds_and_an_event_exactly_at_window_end() {
        let config = WindowConfig::default();
        assert_eq!(config.start_of(at("2025-12-20T18:34:38.300308Z")), at("2025-12-20T18:34:00Z"));
        assert_eq!(config.end_of(at("2025-12-20T18:34:00Z")), at("2025-12-20T18:35:00Z"));
        // An event at a window's end belongs to the next window, not to the one that ends there.
        assert_eq!(config.start_of(at("2025-12-20T18:35:00Z")), at("2025-12-20T18:35:00Z"));
        assert_eq!(config.start_of(at("2025-12-20T18:34:59.999999Z")), at("2025-12-20T18:34:00Z"));
        // Windows are aligned to UTC whatever the offset the event was written in.
        assert_eq!(config.start_of(at("2025-12-20T20:04:38+05:30")), at("2025-12-20T14:34:00Z"));
    }

    #[test]
    fn windows_before_1970_floor_downwards() {
        let config = WindowConfig::default();
        assert_eq!(config.start_of(at("1969-12-31T23:59:30Z")), at("1969-12-31T23:59:00Z"));
    }

    #[test]
    fn sizes_must_divide_a_day() {
        assert!(WindowConfig::new(0, 0).is_err());
        assert!(WindowConfig::new(7, 0).is_err());
        assert!(WindowConfig::new(300, 0).is_ok());
        assert!(WindowConfig::new(86_400, 0).is_ok());
    }
}
