//! Records the pipeline refused, with the one rule each broke (spec §1, §2).
//!
//! A dead letter keeps the raw payload and where it came from, so nothing is lost: it can be
//! inspected, fixed and replayed. Its text (the `event_id`, the detail) is [`StoredText`], which
//! any store can hold: no record, however malformed, can make a sink refuse its dead letter.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::source::{Offset, PartitionId};

/// The rule a refused record broke; one reason per rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The payload is over 1 MiB.
    TooLarge,
    /// The payload is not UTF-8.
    NotUtf8,
    /// The payload is not JSON.
    NotJson,
    /// The payload is JSON but not an object.
    NotAnObject,
    /// `ts` is absent or null.
    MissingTs,
    /// `ts` is not an RFC 3339 string with an offset.
    BadTs,
    /// `event_type` is absent or null.
    MissingEventType,
    /// `event_type` is a string, but not one of the six kinds.
    UnknownEventType,
    /// `event_type` is not a string.
    BadEventType,
    /// `stream_id` is absent or null.
    MissingStreamId,
    /// `stream_id` is not a string of 1 to 128 bytes.
    BadStreamId,
    /// `user_id` is not a string.
    BadUserId,
    /// `event_id` is not a string.
    BadEventId,
    /// `message_len` is not an integer ≥ 0.
    BadMessageLen,
    /// A donation without `amount_usd` (or the legacy `amount`).
    MissingAmount,
    /// The amount is not a number.
    BadAmount,
    /// The amount is below 0 or above 1,000,000,000.
    AmountOutOfRange,
    /// The event's window had already closed for its partition when it was read.
    Late,
}

impl Reason {
    /// Every reason, in declaration order (the index of [`Reason::index`]).
    pub const ALL: [Reason; 18] = [
        Reason::TooLarge,
        Reason::NotUtf8,
        Reason::NotJson,
        Reason::NotAnObject,
        Reason::MissingTs,
        Reason::BadTs,
        Reason::MissingEventType,
        Reason::UnknownEventType,
        Reason::BadEventType,
        Reason::MissingStreamId,
        Reason::BadStreamId,
        Reason::BadUserId,
        Reason::BadEventId,
        Reason::BadMessageLen,
        Reason::MissingAmount,
        Reason::BadAmount,
        Reason::AmountOutOfRange,
        Reason::Late,
    ];

    /// The stable snake_case name stored in `dead_letters.reason` and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::NotUtf8 => "not_utf8",
            Reason::NotJson => "not_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingTs => "missing_ts",
            Reason::BadTs => "bad_ts",
            Reason::MissingEventType => "missing_event_type",
            Reason::UnknownEventType => "unknown_event_type",
            Reason::BadEventType => "bad_event_type",
            Reason::MissingStreamId => "missing_stream_id",
            Reason::BadStreamId => "bad_stream_id",
            Reason::BadUserId => "bad_user_id",
            Reason::BadEventId => "bad_event_id",
            Reason::BadMessageLen => "bad_message_len",
            Reason::MissingAmount => "missing_amount",
            Reason::BadAmount => "bad_amount",
            Reason::AmountOutOfRange => "amount_out_of_range",
            Reason::Late => "late",
        }
    }

    /// A dense index into [`Reason::ALL`], for counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text taken from a record, made fit to store anywhere: U+0000, which no PostgreSQL text can
/// hold, is replaced by U+FFFD. The only way to build one is [`StoredText::new`].
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct StoredText(String);

impl StoredText {
    /// `text`, with every U+0000 replaced by U+FFFD.
    pub fn new(text: &str) -> StoredText {
        if text.contains('\0') {
            StoredText(text.replace('\0', "\u{FFFD}"))
        } else {
            StoredText(text.to_owned())
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for StoredText {
    fn from(text: String) -> StoredText {
        if text.contains('\0') {
            StoredText::new(&text)
        } else {
            StoredText(text)
        }
    }
}

impl From<&str> for StoredText {
    fn from(text: &str) -> StoredText {
        StoredText::new(text)
    }
}

impl From<StoredText> for String {
    fn from(text: StoredText) -> String {
        text.0
    }
}

impl std::ops::Deref for StoredText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoredText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refused record: where it came from, why, and the bytes themselves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The source partition.
    pub partition: PartitionId,
    /// The record's offset in its partition.
    pub offset: Offset,
    /// The rule it broke.
    pub reason: Reason,
    /// A human-readable detail, when there is more to say than the reason.
    pub detail: Option<StoredText>,
    /// The `event_id` of the payload, when it had a readable one.
    pub event_id: Option<StoredText>,
    /// The record's key, unchanged, when it had one.
    pub key: Option<Vec<u8>>,
    /// The payload, unchanged.
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_holds_no_nul() {
        assert_eq!(StoredText::new("a\0b").as_str(), "a\u{FFFD}b");
        assert_eq!(StoredText::from("\0".to_owned()).as_str(), "\u{FFFD}");
        let decoded: StoredText = serde_json::from_str("\"x\\u0000y\"").unwrap();
        assert_eq!(decoded.as_str(), "x\u{FFFD}y");
        assert_eq!(StoredText::new("plain").as_str(), "plain");
    }
}
