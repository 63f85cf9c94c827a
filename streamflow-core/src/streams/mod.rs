//! The built-in schema: the live-stream metrics of spec §3 — per stream and minute, events,
//! chat messages, donations and their exact sum, joins and leaves, distinct viewers, and the
//! running audience — as one user of [`crate::schema`], with no special case in the dataflow.
//!
//! * [`event`]: the [`Event`] of spec §1.
//! * [`decode`]: bytes to an event, or the reason they are refused.
//! * [`Row`]: a row of `stream_metrics_minute`.
//! * [`generator`]: the original pipeline's events, seeded.

pub mod decode;
pub mod event;
pub mod generator;
mod row;
mod scan;

use std::sync::OnceLock;

pub use event::{Event, EventType, StreamId, UserId};
pub use row::Row;

use crate::dead_letter::{Refusal, StoredText};
use crate::schema::{Columns, Inputs, Kind, Number, Schema};
use crate::time::EventTime;

/// The columns of [`Row`], by index in [`LiveStreams`]'s description.
pub mod column {
    /// Accepted events.
    pub const EVENTS: usize = 0;
    /// `chat_message` events.
    pub const CHAT_MESSAGES: usize = 1;
    /// `donation` events.
    pub const DONATIONS_COUNT: usize = 2;
    /// Their exact sum, in cents.
    pub const DONATIONS_USD: usize = 3;
    /// `viewer_join` events.
    pub const VIEWER_JOINS: usize = 4;
    /// `viewer_leave` events.
    pub const VIEWER_LEAVES: usize = 5;
    /// Joins minus leaves.
    pub const NET_VIEWER_DELTA: usize = 6;
    /// Distinct users.
    pub const UNIQUE_VIEWERS: usize = 7;
    /// The running audience.
    pub const ACTIVE_VIEWERS: usize = 8;
}

/// How many columns a row has.
pub const COLUMNS: usize = 9;

/// Every reason a record of this schema can be refused for.
pub const REASONS: [crate::Reason; 18] = {
    use crate::Reason as R;
    [
        R::TooLarge,
        R::NotUtf8,
        R::NotJson,
        R::NotAnObject,
        R::MissingTs,
        R::BadTs,
        R::MissingEventType,
        R::UnknownEventType,
        R::BadEventType,
        R::MissingStreamId,
        R::BadStreamId,
        R::BadUserId,
        R::BadEventId,
        R::BadMessageLen,
        R::MissingAmount,
        R::BadAmount,
        R::AmountOutOfRange,
        R::Late,
    ]
};

/// The schema of spec §1 and §3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStreams;

impl LiveStreams {
    /// The column description: `stream_metrics_minute` keyed by `stream_id`, `stream_state`
    /// holding each stream's audience.
    pub fn columns() -> &'static Columns {
        static COLUMNS: OnceLock<Columns> = OnceLock::new();
        COLUMNS.get_or_init(|| {
            let count = |columns: Columns, name, doc| columns.column(name, Kind::Sum, Number::Integer, doc);
            let columns = Columns::new("stream_metrics_minute", "stream_id", "streams").expect("valid names");
            let columns = count(columns, "events", "Accepted events.").expect("valid");
            let columns = count(columns, "chat_messages", "chat_message events.").expect("valid");
            let columns = count(columns, "donations_count", "donation events.").expect("valid");
            let columns = columns
                .column("donations_usd", Kind::Sum, Number::Decimal { scale: 2 }, "Their exact sum, with two decimals.")
                .expect("valid");
            let columns = count(columns, "viewer_joins", "viewer_join events.").expect("valid");
            let columns = count(columns, "viewer_leaves", "viewer_leave events.").expect("valid");
            let columns = count(columns, "net_viewer_delta", "Joins minus leaves.").expect("valid");
            columns
                .column("unique_viewers", Kind::Distinct, Number::Integer, "Distinct users among the window's events.")
                .and_then(|c| {
                    c.column(
                        "active_viewers",
                        Kind::Running { at_least_zero: true },
                        Number::Integer,
                        "The running audience at the window's end: joins minus leaves over all the stream's \
                         events before it, at least 0.",
                    )
                })
                .and_then(|c| c.with_state_table("stream_state"))
                // The rankings of spec §6.
                .and_then(|c| c.unranked(&["viewer_joins", "viewer_leaves", "net_viewer_delta"]))
                .expect("valid")
        })
    }
}

impl Schema for LiveStreams {
    type Event = Event;
    type Row = Row;
    type Slots = [i64; COLUMNS];

    fn columns(&self) -> &Columns {
        LiveStreams::columns()
    }

    fn decode(&self, key: Option<&[u8]>, payload: &[u8]) -> Result<Event, Refusal> {
        decode::decode_record(key, payload)
    }

    fn time(&self, event: &Event) -> EventTime {
        event.ts
    }

    fn key<'e>(&self, event: &'e Event) -> &'e str {
        &event.stream_id
    }

    fn contribute(&self, event: &Event, inputs: &mut Inputs<'_, Self::Slots>) {
        inputs.count(column::EVENTS);
        let audience = match event.kind {
            EventType::ChatMessage => {
                inputs.count(column::CHAT_MESSAGES);
                0
            }
            EventType::Donation => {
                inputs.count(column::DONATIONS_COUNT);
                inputs.add(column::DONATIONS_USD, event.amount.map_or(0, |c| c.0));
                0
            }
            EventType::ViewerJoin => {
                inputs.count(column::VIEWER_JOINS);
                1
            }
            EventType::ViewerLeave => {
                inputs.count(column::VIEWER_LEAVES);
                -1
            }
            EventType::StreamStart | EventType::StreamStop => 0,
        };
        if audience != 0 {
            inputs.add(column::NET_VIEWER_DELTA, audience);
            inputs.add(column::ACTIVE_VIEWERS, audience);
        }
        if let Some(user) = &event.user_id {
            inputs.distinct(column::UNIQUE_VIEWERS, user);
        }
    }

    fn event_id(&self, payload: &[u8]) -> Option<StoredText> {
        decode::event_id(payload)
    }

    fn payload_of(&self, event: &Event) -> Vec<u8> {
        event.to_json().into_bytes()
    }
}
