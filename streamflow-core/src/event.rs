//! The typed event of spec §1, and the two value types it is built from:
//! [`EventTime`] (microseconds since the Unix epoch, UTC) and [`Cents`] (exact money).

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The channel an event belongs to (`stream_id`); short ids are stored inline, without allocating.
pub type StreamId = CompactString;
/// A viewer (`user_id`); short ids are stored inline, without allocating.
pub type UserId = CompactString;

/// One accepted event: everything the aggregates need, nothing more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event time.
    pub ts: EventTime,
    /// What happened.
    pub kind: EventType,
    /// The stream (channel) it happened on.
    pub stream_id: StreamId,
    /// Who did it, when known.
    pub user_id: Option<UserId>,
    /// Length of a chat message.
    pub message_len: Option<u64>,
    /// The amount of a donation, rounded to whole cents.
    pub amount: Option<Cents>,
}

impl Event {
    /// The event as a JSON object of spec §1, for a record that must be kept but whose bytes
    /// are no longer at hand.
    pub fn to_json(&self) -> String {
        let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
        let mut json =
            format!(r#"{{"ts":"{}","event_type":"{}","stream_id":{}"#, self.ts, self.kind, quoted(&self.stream_id));
        if let Some(user) = &self.user_id {
            json.push_str(&format!(r#","user_id":{}"#, quoted(user)));
        }
        if let Some(len) = self.message_len {
            json.push_str(&format!(r#","message_len":{len}"#));
        }
        if let Some(amount) = self.amount {
            json.push_str(&format!(r#","amount_usd":{amount}"#));
        }
        json.push('}');
        json
    }
}

/// The six kinds of event of spec §1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `stream_start`
    StreamStart,
    /// `stream_stop`
    StreamStop,
    /// `viewer_join`
    ViewerJoin,
    /// `viewer_leave`
    ViewerLeave,
    /// `chat_message`
    ChatMessage,
    /// `donation`
    Donation,
}

impl EventType {
    /// Every kind, in the order of spec §1.
    pub const ALL: [EventType; 6] = [
        EventType::StreamStart,
        EventType::StreamStop,
        EventType::ViewerJoin,
        EventType::ViewerLeave,
        EventType::ChatMessage,
        EventType::Donation,
    ];

    /// The wire name, as in the JSON `event_type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::StreamStart => "stream_start",
            EventType::StreamStop => "stream_stop",
            EventType::ViewerJoin => "viewer_join",
            EventType::ViewerLeave => "viewer_leave",
            EventType::ChatMessage => "chat_message",
            EventType::Donation => "donation",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;
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

/// An exact amount of money in whole cents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cents(pub i64);

/// Why an amount was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a JSON number.
    #[error("not a number")]
    NotANumber,
    /// Below 0 or above 1,000,000,000.
    #[error("outside 0 to 1,000,000,000")]
    OutOfRange,
}

impl Cents {
    /// The largest amount one event may carry: 1,000,000,000 USD.
    pub const MAX_EVENT_AMOUNT: Cents = Cents(100_000_000_000);

    /// Parses the text of a JSON number exactly, checks it lies in `0 ..= 1,000,000,000` (on the
    /// exact value, before rounding), and rounds it half away from zero to whole cents.
    ///
    /// Working on the decimal text rather than an `f64` keeps `1.005` at 101 cents, and any
    /// number of digits and any exponent is read exactly: `0.000…01e2002` is 100.00.
    pub fn from_json_number(text: &str) -> Result<Cents, AmountError> {
        let number = DecimalText::parse(text).ok_or(AmountError::NotANumber)?;
        // The value is 0.DIGITS × 10^point; only the digits from the first non-zero one matter.
        let Some(first) = number.first_nonzero() else { return Ok(Cents(0)) };
        if number.negative {
            return Err(AmountError::OutOfRange);
        }
        // Digits before the decimal point, counted from the first non-zero one: past 10 the value
        // is at least 10^10, out of range however the rest reads.
        if number.point.saturating_sub(first) > 10 {
            return Err(AmountError::OutOfRange);
        }
        // Digit `i` stands at place `i - point + 1` after the decimal point (0 or less: an integer
        // digit); whole cents are the digits up to place 2, and place 3 decides the rounding.
        let place_of_first = first - number.point + 1;
        let mut cents = 0i64;
        for place in place_of_first..=2 {
            cents = cents * 10 + number.digit(first + place - place_of_first);
        }
        let rounding = first + 3 - place_of_first;
        let max = Cents::MAX_EVENT_AMOUNT.0;
        if cents > max || (cents == max && number.any_nonzero_from(rounding)) {
            return Err(AmountError::OutOfRange);
        }
        if number.digit(rounding) >= 5 {
            cents += 1;
        }
        Ok(Cents(cents))
    }
}

/// The parts of a JSON number's text: `-? int (. frac)? ([eE] [+-]? exp)?`.
struct DecimalText<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// `int.len() + exponent`: the value is `0.(int ++ frac) × 10^point`. Saturated far beyond
    /// any payload's length, which changes no result.
    point: i64,
}

impl<'a> DecimalText<'a> {
    fn parse(text: &'a str) -> Option<DecimalText<'a>> {
        let digits_at = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
        let b = text.as_bytes();
        let (negative, b) = match b {
            [b'-', rest @ ..] => (true, rest),
            _ => (false, b),
        };
        let (int, mut rest) = b.split_at(digits_at(b));
        if int.is_empty() {
            return None;
        }
        let mut frac: &[u8] = &[];
        if let [b'.', tail @ ..] = rest {
            let (digits, after) = tail.split_at(digits_at(tail));
            if digits.is_empty() {
                return None;
            }
            (frac, rest) = (digits, after);
        }
        let mut exponent = 0i64;
        if let [b'e' | b'E', tail @ ..] = rest {
            let (sign, tail) = match tail {
                [b'-', t @ ..] => (-1, t),
                [b'+', t @ ..] => (1, t),
                t => (1, t),
            };
            if tail.is_empty() || !tail.iter().all(u8::is_ascii_digit) {
                return None;
            }
            const LIMIT: i64 = 1 << 40;
            let magnitude = tail.iter().fold(0i64, |acc, &c| (acc * 10 + i64::from(c - b'0')).min(LIMIT));
            exponent = sign * magnitude;
            rest = &[];
        }
        if !rest.is_empty() {
            return None;
        }
        Some(DecimalText { negative, int, frac, point: int.len() as i64 + exponent })
    }

    /// The number of digits, integer part then fraction.
    fn len(&self) -> i64 {
        (self.int.len() + self.frac.len()) as i64
    }

    /// Digit `i` of the integer part followed by the fraction, as a number; 0 outside them.
    fn digit(&self, i: i64) -> i64 {
        let Ok(i) = usize::try_from(i) else { return 0 };
        let c =
            if i < self.int.len() { self.int[i] } else { self.frac.get(i - self.int.len()).copied().unwrap_or(b'0') };
        i64::from(c - b'0')
    }

    fn first_nonzero(&self) -> Option<i64> {
        (0..self.len()).find(|&i| self.digit(i) != 0)
    }

    fn any_nonzero_from(&self, from: i64) -> bool {
        (from.max(0)..self.len()).any(|i| self.digit(i) != 0)
    }
}

/// Dollars with exactly two decimals: `1234.50`, `-0.05`.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn amounts_round_half_away_from_zero_exactly() {
        let c = |s: &str| Cents::from_json_number(s).map(|c| c.0);
        assert_eq!(c("12"), Ok(1200));
        assert_eq!(c("12.5"), Ok(1250));
        assert_eq!(c("1.005"), Ok(101));
        assert_eq!(c("1.004999"), Ok(100));
        assert_eq!(c("0.125"), Ok(13));
        assert_eq!(c("0.0049"), Ok(0));
        assert_eq!(c("0"), Ok(0));
        assert_eq!(c("-0"), Ok(0));
        assert_eq!(c("-0.0"), Ok(0));
        assert_eq!(c("-0e5"), Ok(0));
        // The range is checked on the exact value, before rounding.
        assert_eq!(c("-0.004"), Err(AmountError::OutOfRange));
        assert_eq!(c("1e3"), Ok(100_000));
        assert_eq!(c("1.5E-1"), Ok(15));
        assert_eq!(c("12345e-4"), Ok(123));
        assert_eq!(c("1000000000"), Ok(100_000_000_000));
        assert_eq!(c("1000000000.004"), Err(AmountError::OutOfRange));
        assert_eq!(c("1000000000.000"), Ok(100_000_000_000));
        assert_eq!(c("999999999.995"), Ok(100_000_000_000));
        assert_eq!(c("0.1e10"), Ok(100_000_000_000));
        assert_eq!(c("10000000000e-1"), Ok(100_000_000_000));
        assert_eq!(c("1000000000.005"), Err(AmountError::OutOfRange));
        assert_eq!(c("1e10"), Err(AmountError::OutOfRange));
        assert_eq!(c("1e999999999999999999999"), Err(AmountError::OutOfRange));
        assert_eq!(c("1e-999999999999999999999"), Ok(0));
        assert_eq!(c("-0.01"), Err(AmountError::OutOfRange));
        assert_eq!(c("99999999999999999999999999999"), Err(AmountError::OutOfRange));
        assert_eq!(c("\"12\""), Err(AmountError::NotANumber));
        assert_eq!(c("true"), Err(AmountError::NotANumber));
        assert_eq!(c("1."), Err(AmountError::NotANumber));
        assert_eq!(c(".5"), Err(AmountError::NotANumber));
        assert_eq!(c("1e"), Err(AmountError::NotANumber));
    }

    #[test]
    fn long_mantissas_and_large_exponents_are_read_exactly() {
        let c = |s: &str| Cents::from_json_number(s).map(|c| c.0);
        // 0.(1,999 zeros)1 × 10^2002 = 100.
        assert_eq!(c(&format!("0.{}1e2002", "0".repeat(1_999))), Ok(10_000));
        assert_eq!(c(&format!("{}e-1998", "1".repeat(2_000))), Ok(1_111));
        assert_eq!(c(&format!("0.{}5", "0".repeat(2))), Ok(1)); // 0.005
        assert_eq!(c(&format!("0.{}", "4".repeat(2_000))), Ok(44));
        assert_eq!(c(&format!("0.{}", "9".repeat(2_000))), Ok(100));
        assert_eq!(c(&"9".repeat(2_000)), Err(AmountError::OutOfRange));
        assert_eq!(c(&format!("1000000000.{}1", "0".repeat(1_990))), Err(AmountError::OutOfRange));
        assert_eq!(c(&format!("{}1e-2000", "0".repeat(1_999))), Ok(0));
        assert_eq!(c("1e-999999999999999999999999999999"), Ok(0));
        assert_eq!(c("0e999999999999999999999999999999"), Ok(0));
    }

    #[test]
    fn an_event_written_as_json_decodes_to_itself() {
        let event = Event {
            ts: EventTime::parse_rfc3339("2025-12-20T18:34:38.300308Z").unwrap(),
            kind: EventType::Donation,
            stream_id: "stream \"1\"".into(),
            user_id: Some("u7".into()),
            message_len: None,
            amount: Some(Cents(1250)),
        };
        assert_eq!(crate::decode::decode(event.to_json().as_bytes()), Ok(event));
    }

    #[test]
    fn cents_display_with_two_decimals() {
        assert_eq!(Cents(0).to_string(), "0.00");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(123_456).to_string(), "1234.56");
        assert_eq!(Cents(-5).to_string(), "-0.05");
    }
}
