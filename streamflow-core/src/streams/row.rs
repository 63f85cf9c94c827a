//! One row of `stream_metrics_minute` (spec §3), a field per column.

use serde::{Deserialize, Serialize};

use super::event::StreamId;
use super::{column, COLUMNS};
use crate::money::Cents;
use crate::schema::{self, Value};
use crate::time::EventTime;

/// The aggregates of one stream in one window.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Row {
    /// The window's start.
    pub window_start: EventTime,
    /// The window's end.
    pub window_end: EventTime,
    /// The stream.
    pub stream_id: StreamId,
    /// Accepted events.
    pub events: u64,
    /// `chat_message` events.
    pub chat_messages: u64,
    /// `donation` events.
    pub donations_count: u64,
    /// The exact sum of donations.
    pub donations_usd: Cents,
    /// `viewer_join` events.
    pub viewer_joins: u64,
    /// `viewer_leave` events.
    pub viewer_leaves: u64,
    /// Joins minus leaves.
    pub net_viewer_delta: i64,
    /// Distinct `user_id`s among the window's events.
    pub unique_viewers: u64,
    /// max(0, joins − leaves over all the stream's events before the window's end).
    pub active_viewers: u64,
}

impl Row {
    /// The primary key: `(window_start, stream_id)`.
    pub fn key(&self) -> (EventTime, &str) {
        (self.window_start, &self.stream_id)
    }
}

impl schema::Row for Row {
    fn from_values(window_start: EventTime, window_end: EventTime, key: &str, values: &[Value]) -> Row {
        let value = |column: usize| values.get(column).copied().flatten().unwrap_or(0);
        let count = |column: usize| u64::try_from(value(column)).unwrap_or(0);
        Row {
            window_start,
            window_end,
            stream_id: key.into(),
            events: count(column::EVENTS),
            chat_messages: count(column::CHAT_MESSAGES),
            donations_count: count(column::DONATIONS_COUNT),
            donations_usd: Cents(value(column::DONATIONS_USD)),
            viewer_joins: count(column::VIEWER_JOINS),
            viewer_leaves: count(column::VIEWER_LEAVES),
            net_viewer_delta: value(column::NET_VIEWER_DELTA),
            unique_viewers: count(column::UNIQUE_VIEWERS),
            active_viewers: count(column::ACTIVE_VIEWERS),
        }
    }

    fn window_start(&self) -> EventTime {
        self.window_start
    }

    fn window_end(&self) -> EventTime {
        self.window_end
    }

    fn key(&self) -> &str {
        &self.stream_id
    }

    fn value(&self, index: usize) -> Value {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        debug_assert!(index < COLUMNS);
        Some(match index {
            column::EVENTS => count(self.events),
            column::CHAT_MESSAGES => count(self.chat_messages),
            column::DONATIONS_COUNT => count(self.donations_count),
            column::DONATIONS_USD => self.donations_usd.0,
            column::VIEWER_JOINS => count(self.viewer_joins),
            column::VIEWER_LEAVES => count(self.viewer_leaves),
            column::NET_VIEWER_DELTA => self.net_viewer_delta,
            column::UNIQUE_VIEWERS => count(self.unique_viewers),
            column::ACTIVE_VIEWERS => count(self.active_viewers),
            _ => return None,
        })
    }
}
