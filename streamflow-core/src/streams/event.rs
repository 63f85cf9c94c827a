//! The event of spec §1: what happened on which stream, when, by whom.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::money::Cents;
use crate::time::EventTime;

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(super::super::decode::decode(event.to_json().as_bytes()), Ok(event));
    }
}
