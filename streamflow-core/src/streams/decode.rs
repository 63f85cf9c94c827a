//! Bytes to an [`Event`] of spec §1, or the [`Refusal`] that says which rule they broke.
//!
//! One pass over the payload: the scanner of [`super::scan`] for the flat objects producers
//! send, else `serde_json`, both borrowing strings from it where they have no escapes. Every
//! field is read loosely first and checked afterwards, so that a mistyped field yields its own
//! reason instead of a generic parse error. When the payload has no `stream_id`,
//! the record's key is the `stream_id`, under the same rules.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::event::{Event, EventType};
use crate::dead_letter::{Reason, Refusal, StoredText};
use crate::money::{AmountError, Cents};
use crate::schema::json;
use crate::time::EventTime;

pub use crate::schema::json::MAX_PAYLOAD_BYTES;

/// The longest `stream_id` accepted, in bytes.
pub const MAX_STREAM_ID_BYTES: usize = 128;

/// The reasons of the rules of spec §1, beyond those any JSON schema shares.
#[allow(non_upper_case_globals)] // named as the enum variants they once were
impl Reason {
    /// `ts` is absent or null.
    pub const MissingTs: Reason = Reason::new("missing_ts");
    /// `ts` is not an RFC 3339 string with an offset.
    pub const BadTs: Reason = Reason::new("bad_ts");
    /// `event_type` is absent or null.
    pub const MissingEventType: Reason = Reason::new("missing_event_type");
    /// `event_type` is a string, but not one of the six kinds.
    pub const UnknownEventType: Reason = Reason::new("unknown_event_type");
    /// `event_type` is not a string.
    pub const BadEventType: Reason = Reason::new("bad_event_type");
    /// `stream_id` is absent or null, and the record has no key.
    pub const MissingStreamId: Reason = Reason::new("missing_stream_id");
    /// `stream_id` (or the key standing in for it) is not a string of 1 to 128 bytes without
    /// U+0000.
    pub const BadStreamId: Reason = Reason::new("bad_stream_id");
    /// `user_id` is not a string.
    pub const BadUserId: Reason = Reason::new("bad_user_id");
    /// `event_id` is not a string.
    pub const BadEventId: Reason = Reason::new("bad_event_id");
    /// `message_len` is not an integer ≥ 0.
    pub const BadMessageLen: Reason = Reason::new("bad_message_len");
    /// A donation without `amount_usd` (or the legacy `amount`).
    pub const MissingAmount: Reason = Reason::new("missing_amount");
    /// The amount is not a number.
    pub const BadAmount: Reason = Reason::new("bad_amount");
    /// The amount is below 0 or above 1,000,000,000.
    pub const AmountOutOfRange: Reason = Reason::new("amount_out_of_range");
}

/// The longest piece of a record quoted in a refusal's detail, in characters.
const QUOTED_CHARS: usize = 120;

/// `text` quoted for a detail: escaped, and cut after [`QUOTED_CHARS`] characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

/// Decodes one JSON event that came without a key.
///
/// # Examples
/// ```
/// use streamflow_core::streams::decode::decode;
/// use streamflow_core::{EventType, Reason};
///
/// let event = decode(br#"{"ts":"2025-12-20T18:34:38Z","event_type":"donation","stream_id":"s1","amount_usd":1.005}"#).unwrap();
/// assert_eq!((event.kind, event.amount.unwrap().0), (EventType::Donation, 101));
///
/// let refused = decode(br#"{"ts":"yesterday","event_type":"donation","stream_id":"s1"}"#).unwrap_err();
/// assert_eq!(refused.reason, Reason::BadTs);
/// ```
pub fn decode(payload: &[u8]) -> Result<Event, Refusal> {
    decode_record(None, payload)
}

/// Decodes one JSON event whose record had `key`: the key is the `stream_id` when the payload
/// has none (spec §1).
///
/// # Examples
/// ```
/// use streamflow_core::streams::decode::decode_record;
/// use streamflow_core::Reason;
///
/// let payload = br#"{"ts":"2025-12-20T18:34:38Z","event_type":"chat_message"}"#;
/// assert_eq!(decode_record(Some(b"s1"), payload).unwrap().stream_id, "s1");
/// assert_eq!(decode_record(None, payload).unwrap_err().reason, Reason::MissingStreamId);
/// ```
pub fn decode_record(key: Option<&[u8]>, payload: &[u8]) -> Result<Event, Refusal> {
    let text = json::text(payload)?;
    let fields = match super::scan::scan(text) {
        Some(fields) => fields,
        None => serde_json::from_str(text).map_err(|e| json::refusal(&e))?,
    };
    fields.check(key)
}

/// [`decode_record`] through serde_json alone: what the scanner must agree with.
#[cfg(test)]
fn decode_record_with_serde(key: Option<&[u8]>, payload: &[u8]) -> Result<Event, Refusal> {
    let text = json::text(payload)?;
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|e| json::refusal(&e))?;
    fields.check(key)
}

/// The `event_id` of a payload, when it has a readable one: for dead letters refused after
/// decoding (late events), so that every dead letter can be traced.
pub fn event_id(payload: &[u8]) -> Option<StoredText> {
    let fields: Fields<'_> = serde_json::from_slice(payload).ok()?;
    match fields.event_id {
        Loose::Str(id) => Some(StoredText::new(&id)),
        _ => None,
    }
}

/// A field as it came, before its rule is applied.
#[derive(Default)]
pub(super) enum Loose<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Other,
}

/// The fields of spec §1 as they came; numbers as their JSON text.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) event_id: Loose<'a>,
    pub(super) ts: Loose<'a>,
    pub(super) event_type: Loose<'a>,
    pub(super) stream_id: Loose<'a>,
    pub(super) user_id: Loose<'a>,
    pub(super) message_len: Option<&'a str>,
    pub(super) amount_usd: Option<&'a str>,
    pub(super) amount: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn check(self, key: Option<&[u8]>) -> Result<Event, Refusal> {
        let event_id = match &self.event_id {
            Loose::Str(id) => Some(id.as_ref()),
            Loose::Absent | Loose::Null => None,
            _ => return Err(Refusal::new(Reason::BadEventId)),
        };
        // The id is copied only into a refusal; an accepted event does not keep it.
        let refuse = |reason| Refusal::new(reason).with_event_id(event_id);

        let ts = match &self.ts {
            Loose::Str(text) => EventTime::parse_rfc3339(text)
                .map_err(|_| refuse(Reason::BadTs).with_detail(format!("ts {}", quoted(text))))?,
            Loose::Absent | Loose::Null => return Err(refuse(Reason::MissingTs)),
            _ => return Err(refuse(Reason::BadTs)),
        };
        let kind = match &self.event_type {
            Loose::Str(name) => EventType::from_name(name)
                .ok_or_else(|| refuse(Reason::UnknownEventType).with_detail(format!("event_type {}", quoted(name))))?,
            Loose::Absent | Loose::Null => return Err(refuse(Reason::MissingEventType)),
            _ => return Err(refuse(Reason::BadEventType)),
        };
        let stream_id = match self.stream_id {
            Loose::Str(id) => checked_stream_id(&id).map_err(|rule| refuse(Reason::BadStreamId).with_detail(rule))?,
            Loose::Absent | Loose::Null => match key {
                Some(key) => std::str::from_utf8(key)
                    .map_err(|_| "the record key, standing in for stream_id, is not UTF-8")
                    .and_then(checked_stream_id)
                    .map_err(|rule| refuse(Reason::BadStreamId).with_detail(format!("record key: {rule}")))?,
                None => return Err(refuse(Reason::MissingStreamId)),
            },
            _ => return Err(refuse(Reason::BadStreamId).with_detail("stream_id is not a string")),
        };
        let user_id = match self.user_id {
            Loose::Str(id) => Some(id.as_ref().into()),
            Loose::Absent | Loose::Null => None,
            _ => return Err(refuse(Reason::BadUserId)),
        };
        let message_len =
            match self.message_len {
                None | Some("null") => None,
                Some(text) => Some(json_count(text).ok_or_else(|| {
                    refuse(Reason::BadMessageLen).with_detail(format!("message_len {}", quoted(text)))
                })?),
            };
        // Amounts count on donations only; `amount` stands in when `amount_usd` is absent or null.
        let amount = if kind == EventType::Donation {
            let raw = [self.amount_usd, self.amount].into_iter().flatten().find(|raw| *raw != "null");
            let raw = raw.ok_or_else(|| refuse(Reason::MissingAmount))?;
            match Cents::from_json_number(raw) {
                Ok(cents) => Some(cents),
                Err(AmountError::NotANumber) => return Err(refuse(Reason::BadAmount)),
                Err(AmountError::OutOfRange) => {
                    return Err(refuse(Reason::AmountOutOfRange).with_detail(format!("amount {}", quoted(raw))))
                }
            }
        } else {
            None
        };
        Ok(Event { ts, kind, stream_id, user_id, message_len, amount })
    }
}

/// A `stream_id` as spec §1 allows it: 1 to 128 bytes, no U+0000.
fn checked_stream_id(id: &str) -> Result<super::event::StreamId, &'static str> {
    if !(1..=MAX_STREAM_ID_BYTES).contains(&id.len()) {
        Err("stream_id must be 1 to 128 bytes")
    } else if id.contains('\0') {
        Err("stream_id must not contain U+0000")
    } else {
        Ok(id.into())
    }
}

/// A JSON integer ≥ 0 (`-0` included) as a count, saturating beyond `u64::MAX`; `None` for
/// anything else: a fraction, an exponent, a negative number, not a number.
fn json_count(text: &str) -> Option<u64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if negative {
        return digits.bytes().all(|c| c == b'0').then_some(0);
    }
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "event_id" => fields.event_id = map.next_value()?,
                "ts" => fields.ts = map.next_value()?,
                "event_type" => fields.event_type = map.next_value()?,
                "stream_id" => fields.stream_id = map.next_value()?,
                "user_id" => fields.user_id = map.next_value()?,
                "message_len" => fields.message_len = Some(map.next_value::<&RawValue>()?.get()),
                "amount_usd" => fields.amount_usd = Some(map.next_value::<&RawValue>()?.get()),
                "amount" => fields.amount = Some(map.next_value::<&RawValue>()?.get()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_id":"e-1","ts":"2025-12-20T18:34:38.300308+00:00","event_type":"chat_message","stream_id":"stream_1001","user_id":"user_7","message_len":42,"extra":{"nested":[1,2]}}"#;

    fn reason(payload: &str) -> Reason {
        decode(payload.as_bytes()).unwrap_err().reason
    }

    /// `GOOD` with one field replaced (or removed, for `None`).
    fn with(field: &str, value: Option<&str>) -> String {
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
        match value {
            Some(v) => object.insert(field.to_owned(), serde_json::from_str(v).unwrap()),
            None => object.remove(field),
        };
        serde_json::to_string(&object).unwrap()
    }

    #[test]
    fn decodes_a_good_event_and_ignores_unknown_fields() {
        let event = decode(GOOD.as_bytes()).unwrap();
        assert_eq!(event.kind, EventType::ChatMessage);
        assert_eq!(event.stream_id, "stream_1001");
        assert_eq!(event.user_id.as_deref(), Some("user_7"));
        assert_eq!(event.message_len, Some(42));
        assert_eq!(event.ts.to_string(), "2025-12-20T18:34:38.300308Z");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let event = decode(with("stream_id", Some(r#""stream\u005f1001""#)).as_bytes()).unwrap();
        assert_eq!(event.stream_id, "stream_1001");
    }

    #[test]
    fn every_reason_of_the_decoder() {
        assert_eq!(reason(&format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_PAYLOAD_BYTES))), Reason::TooLarge);
        assert_eq!(decode(b"{\"ts\":\"\xff\"}").unwrap_err().reason, Reason::NotUtf8);
        assert_eq!(reason("{\"ts\":"), Reason::NotJson);
        assert_eq!(reason(""), Reason::NotJson);
        assert_eq!(reason(&format!("{GOOD} trailing")), Reason::NotJson);
        assert_eq!(reason("[1,2,3]"), Reason::NotAnObject);
        assert_eq!(reason("\"a string\""), Reason::NotAnObject);
        assert_eq!(reason(&with("ts", None)), Reason::MissingTs);
        assert_eq!(reason(&with("ts", Some("null"))), Reason::MissingTs);
        assert_eq!(reason(&with("ts", Some("1766255678"))), Reason::BadTs);
        assert_eq!(reason(&with("ts", Some("\"2025-12-20 18:34\""))), Reason::BadTs);
        assert_eq!(reason(&with("event_type", None)), Reason::MissingEventType);
        assert_eq!(reason(&with("event_type", Some("\"raid\""))), Reason::UnknownEventType);
        assert_eq!(reason(&with("event_type", Some("3"))), Reason::BadEventType);
        assert_eq!(reason(&with("stream_id", None)), Reason::MissingStreamId);
        assert_eq!(reason(&with("stream_id", Some("\"\""))), Reason::BadStreamId);
        assert_eq!(reason(&with("stream_id", Some(&format!("\"{}\"", "s".repeat(129))))), Reason::BadStreamId);
        assert_eq!(reason(&with("stream_id", Some("1001"))), Reason::BadStreamId);
        assert_eq!(reason(&with("user_id", Some("7"))), Reason::BadUserId);
        assert_eq!(reason(&with("event_id", Some("{}"))), Reason::BadEventId);
        assert_eq!(reason(&with("message_len", Some("-1"))), Reason::BadMessageLen);
        assert_eq!(reason(&with("message_len", Some("4.5"))), Reason::BadMessageLen);
        assert_eq!(reason(&with("message_len", Some("\"42\""))), Reason::BadMessageLen);
        let donation = with("event_type", Some("\"donation\""));
        assert_eq!(reason(&donation), Reason::MissingAmount);
        let with_amount = |v: &str| {
            let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&donation).unwrap();
            object.insert("amount_usd".into(), serde_json::from_str(v).unwrap());
            serde_json::to_string(&object).unwrap()
        };
        assert_eq!(reason(&with_amount("\"12.50\"")), Reason::BadAmount);
        assert_eq!(reason(&with_amount("-1")), Reason::AmountOutOfRange);
        assert_eq!(reason(&with_amount("1000000000.01")), Reason::AmountOutOfRange);
        assert_eq!(decode(with_amount("1000000000").as_bytes()).unwrap().amount, Some(Cents(100_000_000_000)));
    }

    #[test]
    fn boundaries_that_are_accepted() {
        assert!(decode(with("stream_id", Some(&format!("\"{}\"", "s".repeat(128)))).as_bytes()).is_ok());
        assert!(decode(with("user_id", Some("null")).as_bytes()).unwrap().user_id.is_none());
        assert!(decode(with("user_id", None).as_bytes()).unwrap().user_id.is_none());
        assert_eq!(decode(with("message_len", Some("0")).as_bytes()).unwrap().message_len, Some(0));
    }

    #[test]
    fn legacy_amount_is_read_when_amount_usd_is_absent() {
        let legacy = r#"{"ts":"2025-12-20T18:34:38Z","event_type":"donation","stream_id":"s","amount":7.255}"#;
        assert_eq!(decode(legacy.as_bytes()).unwrap().amount, Some(Cents(726)));
        let both = r#"{"ts":"2025-12-20T18:34:38Z","event_type":"donation","stream_id":"s","amount":1,"amount_usd":2}"#;
        assert_eq!(decode(both.as_bytes()).unwrap().amount, Some(Cents(200)));
    }

    #[test]
    fn a_stream_id_holding_nul_is_refused() {
        assert_eq!(reason(&with("stream_id", Some(r#""s\u00001""#))), Reason::BadStreamId);
        assert_eq!(
            decode_record(Some(b"s\0"), with("stream_id", None).as_bytes()).unwrap_err().reason,
            Reason::BadStreamId
        );
    }

    #[test]
    fn the_key_stands_in_for_a_missing_stream_id() {
        let without = with("stream_id", None);
        assert_eq!(decode_record(Some(b"from_key"), without.as_bytes()).unwrap().stream_id, "from_key");
        let null = with("stream_id", Some("null"));
        assert_eq!(decode_record(Some(b"from_key"), null.as_bytes()).unwrap().stream_id, "from_key");
        // The value's field wins over the key.
        assert_eq!(decode_record(Some(b"from_key"), GOOD.as_bytes()).unwrap().stream_id, "stream_1001");
        // The key follows the rules of stream_id.
        for bad in [&b""[..], b"\xff\xfe", &[b's'; 129]] {
            assert_eq!(decode_record(Some(bad), without.as_bytes()).unwrap_err().reason, Reason::BadStreamId);
        }
        assert_eq!(decode_record(None, without.as_bytes()).unwrap_err().reason, Reason::MissingStreamId);
        // A mistyped field is refused whatever the key.
        let number = with("stream_id", Some("7"));
        assert_eq!(decode_record(Some(b"from_key"), number.as_bytes()).unwrap_err().reason, Reason::BadStreamId);
    }

    #[test]
    fn message_len_is_any_json_integer_at_least_zero() {
        // Written out, since a round trip through serde_json::Value would turn -0 into -0.0.
        let len = |v: &str| {
            let payload = format!(
                r#"{{"ts":"2025-12-20T18:34:38Z","event_type":"chat_message","stream_id":"s","message_len":{v}}}"#
            );
            decode(payload.as_bytes()).map(|e| e.message_len)
        };
        assert_eq!(len("-0"), Ok(Some(0)));
        assert_eq!(len("18446744073709551616"), Ok(Some(u64::MAX)));
        assert_eq!(len(&"9".repeat(400)), Ok(Some(u64::MAX)));
        assert_eq!(len("null"), Ok(None));
        for bad in ["-1", "4.5", "1e2", "\"42\"", "true", "[]"] {
            assert_eq!(len(bad).unwrap_err().reason, Reason::BadMessageLen, "{bad}");
        }
    }

    #[test]
    fn amounts_count_on_donations_only_and_null_falls_back_to_amount() {
        let event = |fields: &str| {
            decode(format!(r#"{{"ts":"2025-12-20T18:34:38Z","stream_id":"s",{fields}}}"#).as_bytes())
                .map(|e| e.amount)
                .map_err(|r| r.reason)
        };
        assert_eq!(event(r#""event_type":"donation","amount_usd":null,"amount":3"#), Ok(Some(Cents(300))));
        assert_eq!(event(r#""event_type":"donation","amount_usd":null,"amount":null"#), Err(Reason::MissingAmount));
        assert_eq!(event(r#""event_type":"donation","amount_usd":"x","amount":3"#), Err(Reason::BadAmount));
        assert_eq!(event(r#""event_type":"donation","amount_usd":-0.004"#), Err(Reason::AmountOutOfRange));
        assert_eq!(event(r#""event_type":"donation","amount_usd":1000000000.004"#), Err(Reason::AmountOutOfRange));
        assert_eq!(event(r#""event_type":"donation","amount_usd":-0"#), Ok(Some(Cents(0))));
        let long = format!(r#""event_type":"donation","amount_usd":0.{}1e2002"#, "0".repeat(1_999));
        assert_eq!(event(&long), Ok(Some(Cents(10_000))));
        // On other kinds amount fields are ignored, whatever they hold.
        assert_eq!(event(r#""event_type":"chat_message","amount_usd":"x","amount":-5"#), Ok(None));
        assert_eq!(event(r#""event_type":"viewer_join","amount_usd":1e999"#), Ok(None));
    }

    #[test]
    fn refused_text_holds_no_nul_and_long_values_are_cut() {
        let refused = decode(br#"{"event_id":"e\u0000","ts":"x\u0000y","event_type":"chat_message","stream_id":"s"}"#)
            .unwrap_err();
        assert_eq!(refused.event_id.as_deref(), Some("e\u{FFFD}"));
        assert!(!refused.detail.as_deref().unwrap().contains('\0'));
        let long_ts = with("ts", Some(&format!("\"{}\"", "7".repeat(100_000))));
        let detail = decode(long_ts.as_bytes()).unwrap_err().detail.unwrap();
        assert!(detail.len() < 300, "{}", detail.len());
    }

    #[test]
    fn refusals_keep_the_event_id() {
        let refused = decode(with("ts", Some("\"soon\"")).as_bytes()).unwrap_err();
        assert_eq!(refused.event_id.as_deref(), Some("e-1"));
        assert!(refused.detail.unwrap().contains("soon"));
    }

    /// The scanner and serde_json agree on everything: generated valid events, malformed ones
    /// of every reason, and adversarial bytes made of the pieces a scanner gets wrong —
    /// escapes, nesting, numbers at the edges of JSON's grammar, whitespace, duplicates,
    /// trailing bytes, control characters, cut payloads.
    mod scanner_agrees_with_serde {
        use super::*;
        use crate::streams::generator::{Generator, GeneratorConfig};
        use proptest::prelude::*;

        fn agree(key: Option<&[u8]>, payload: &[u8]) {
            assert_eq!(
                decode_record(key, payload),
                decode_record_with_serde(key, payload),
                "{:?} (key {key:?})",
                String::from_utf8_lossy(payload)
            );
        }

        #[test]
        fn on_generated_events_valid_late_and_malformed() {
            let config = GeneratorConfig {
                events: Some(50_000),
                late_ratio: 0.05,
                bad_ratio: 0.2,
                ..GeneratorConfig::default()
            };
            let mut generator = Generator::new(&config, 0);
            let mut payload = Vec::new();
            let mut scanned = 0;
            while generator.next_into(&mut payload).is_some() {
                agree(None, &payload);
                agree(Some(b"k"), &payload);
                let text = std::str::from_utf8(&payload).unwrap_or("");
                scanned += usize::from(crate::streams::scan::scan(text).is_some());
                for cut in [1, payload.len() / 2, payload.len().saturating_sub(1)] {
                    agree(None, &payload[..cut.min(payload.len())]);
                }
            }
            // The fast path is taken for the events producers send.
            assert!(scanned > 40_000, "{scanned}");
        }

        fn key() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "event_id",
                "ts",
                "event_type",
                "stream_id",
                "user_id",
                "message_len",
                "amount_usd",
                "amount",
                "extra",
                "t\\u0073",
                "stream_id ",
                "",
            ])
            .prop_map(str::to_owned)
        }

        fn value() -> impl Strategy<Value = String> {
            let fixed = prop::sample::select(vec![
                "\"2025-12-20T18:34:38Z\"",
                "\"2025-12-20T18:34:38.5+01:00\"",
                "\"chat_message\"",
                "\"donation\"",
                "\"viewer_join\"",
                "\"s1\"",
                "\"\"",
                "\"a\\u0000b\"",
                "\"\\\"q\"",
                "\"tab\there\"",
                "\"\u{e9}t\u{e9}\"",
                "null",
                "true",
                "false",
                "nul",
                "0",
                "-0",
                "01",
                "1.",
                ".5",
                "1.005",
                "-1",
                "1e2",
                "1E+2",
                "1e",
                "2e-3",
                "1e400",
                "-1e400",
                "18446744073709551616",
                "99999999999999999999.99",
                "{}",
                "{\"a\":[1,{}]}",
                "[]",
                "[1,2",
                "\"unterminated",
                "\"ctl\u{1}\"",
                " 7 ",
                "\u{3000}1",
            ])
            .prop_map(str::to_owned);
            prop_oneof![
                4 => fixed,
                1 => "[0-9]{1,30}(\\.[0-9]{0,5})?",
                1 => "\"[ -~]{0,12}\"",
            ]
        }

        fn payload() -> impl Strategy<Value = String> {
            let whitespace = prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n"]);
            (
                prop::collection::vec((key(), value(), whitespace.clone()), 0..9),
                whitespace,
                prop::sample::select(vec!["", "", "", " ", "x", "}", ",", "\u{feff}"]),
                any::<bool>(),
            )
                .prop_map(|(fields, space, trailing, leading_bom)| {
                    let body: Vec<String> = fields.iter().map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}")).collect();
                    let bom = if leading_bom { "\u{feff}" } else { "" };
                    format!("{bom}{space}{{{}}}{trailing}", body.join(","))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn on_adversarial_objects(payload in payload(), key in prop::option::of("[a-z\\x00]{0,3}")) {
                agree(key.as_deref().map(str::as_bytes), payload.as_bytes());
            }

            #[test]
            fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                agree(None, &bytes);
            }
        }
    }
}
