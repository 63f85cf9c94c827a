//! Records the pipeline refused, with the one rule each broke (spec §1, §2).
//!
//! A dead letter keeps the raw payload and where it came from, so nothing is lost: it can be
//! inspected, fixed and replayed. Its text (the `event_id`, the detail) is [`StoredText`], which
//! any store can hold: no record, however malformed, can make a sink refuse its dead letter.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::position::{Offset, PartitionId};

/// The rule a refused record broke; one reason per rule, named in snake_case as stored in
/// `dead_letters.reason` and used as a metric label.
///
/// The reasons any pipeline may give are constants here ([`Reason::Late`], [`Reason::NotJson`],
/// …); a schema names its own ([`Reason::new`]), as the built-in live-stream schema does
/// ([`crate::streams`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reason(&'static str);

#[allow(non_upper_case_globals)] // named as the enum variants they once were
impl Reason {
    /// The payload is over the largest size accepted.
    pub const TooLarge: Reason = Reason("too_large");
    /// The payload is not UTF-8.
    pub const NotUtf8: Reason = Reason("not_utf8");
    /// The payload is not JSON.
    pub const NotJson: Reason = Reason("not_json");
    /// The payload is JSON but not an object.
    pub const NotAnObject: Reason = Reason("not_an_object");
    /// The event's window had already closed for its partition when it was read.
    pub const Late: Reason = Reason("late");

    /// A reason of its own name (snake_case, by convention).
    pub const fn new(name: &'static str) -> Reason {
        Reason(name)
    }

    /// The reason of a name known only at run time (`missing_<field>` from a JSON decoder):
    /// kept once for the life of the process, which only a bounded set of names reaches.
    pub fn named(name: &str) -> Reason {
        static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        match names.iter().find(|known| **known == name) {
            Some(known) => Reason(known),
            None => {
                let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
                names.push(kept);
                Reason(kept)
            }
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Reason, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Reason::named(&name))
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

/// Why a payload was refused, with what could be read of it: what a decoder answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The rule it broke.
    pub reason: Reason,
    /// More about it, when there is more to say.
    pub detail: Option<StoredText>,
    /// Its `event_id`, when it had a readable one.
    pub event_id: Option<StoredText>,
}

impl Refusal {
    /// A refusal for `reason`, nothing more said.
    pub fn new(reason: Reason) -> Refusal {
        Refusal { reason, detail: None, event_id: None }
    }

    /// This refusal, with more said.
    pub fn with_detail(self, detail: impl AsRef<str>) -> Refusal {
        Refusal { detail: Some(StoredText::new(detail.as_ref())), ..self }
    }

    /// This refusal, with the record's id.
    pub fn with_event_id(self, event_id: Option<&str>) -> Refusal {
        Refusal { event_id: event_id.map(StoredText::new), ..self }
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
    fn reasons_are_their_names() {
        assert_eq!(Reason::Late.as_str(), "late");
        assert_eq!(Reason::named("missing_product_id"), Reason::named("missing_product_id"));
        assert_eq!(Reason::named("late"), Reason::Late);
        let stored = serde_json::to_string(&Reason::NotJson).unwrap();
        assert_eq!(stored, "\"not_json\"");
        assert_eq!(serde_json::from_str::<Reason>(&stored).unwrap(), Reason::NotJson);
    }

    #[test]
    fn stored_text_holds_no_nul() {
        assert_eq!(StoredText::new("a\0b").as_str(), "a\u{FFFD}b");
        assert_eq!(StoredText::from("\0".to_owned()).as_str(), "\u{FFFD}");
        let decoded: StoredText = serde_json::from_str("\"x\\u0000y\"").unwrap();
        assert_eq!(decoded.as_str(), "x\u{FFFD}y");
        assert_eq!(StoredText::new("plain").as_str(), "plain");
    }
}
