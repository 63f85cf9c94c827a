//! Exact money: [`Cents`], parsed from the text of JSON numbers without ever going through a
//! float, rounded half away from zero.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An exact amount of money in whole cents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cents(pub i64);

/// Why an amount was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a JSON number.
    #[error("not a number")]
    NotANumber,
    /// Below 0 or above the largest amount allowed.
    #[error("out of range")]
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
        Cents::from_json_number_up_to(text, Cents::MAX_EVENT_AMOUNT)
    }

    /// As [`Cents::from_json_number`], with the range `0 ..= max` (checked before rounding).
    pub fn from_json_number_up_to(text: &str, max: Cents) -> Result<Cents, AmountError> {
        let number = DecimalText::parse(text).ok_or(AmountError::NotANumber)?;
        // The value is 0.DIGITS × 10^point; only the digits from the first non-zero one matter.
        let Some(first) = number.first_nonzero() else { return Ok(Cents(0)) };
        if number.negative {
            return Err(AmountError::OutOfRange);
        }
        // Digits before the decimal point, counted from the first non-zero one: past 17 the value
        // is beyond any amount of cents an i64 holds, out of range however the rest reads.
        if number.point.saturating_sub(first) > 16 {
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
        let max = max.0;
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

/// Serde of [`Cents`] read from a JSON number (`12.345` → 12.35) in `0 ..= 1,000,000,000`, for
/// events decoded from JSON: `#[serde(with = "streamflow_core::money::amount")]`. Written as the
/// number with two decimals.
pub mod amount {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    use super::{AmountError, Cents};

    /// Writes the amount as a JSON number with two decimals.
    pub fn serialize<S: Serializer>(cents: &Cents, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(cents.to_string()).map_err(serde::ser::Error::custom)?;
        serde::Serialize::serialize(&raw, serializer)
    }

    /// Reads a JSON number exactly, in `0 ..= 1,000,000,000`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cents, D::Error> {
        up_to(deserializer, Cents::MAX_EVENT_AMOUNT)
    }

    /// Reads a JSON number exactly, in `0 ..= max`: for a `deserialize_with` of another range.
    pub fn up_to<'de, D: Deserializer<'de>>(deserializer: D, max: Cents) -> Result<Cents, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        Cents::from_json_number_up_to(raw.get(), max).map_err(|e| match e {
            AmountError::NotANumber => serde::de::Error::custom(format!("expected a number, not {}", raw.get())),
            AmountError::OutOfRange => serde::de::Error::custom(format!("{} is outside 0 to {max}", raw.get())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn cents_display_with_two_decimals() {
        assert_eq!(Cents(0).to_string(), "0.00");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(123_456).to_string(), "1234.56");
        assert_eq!(Cents(-5).to_string(), "-0.05");
    }
}
