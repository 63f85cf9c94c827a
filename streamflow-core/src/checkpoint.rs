//! What a restart needs, stored by the sink with the rows it describes (spec §4).
//!
//! ```text
//!   partition p:  ... | r ........................ | n ......
//!                      ^ replay_from                ^ next_offset (everything before it is in the sink)
//!                      every event of p in a window still open lies at or after r,
//!                      and replay_max_ts is p's largest ts before r
//! ```
//! A restarted pipeline reads each partition again from `replay_from`, with the partition's
//! lateness clock set to `replay_max_ts`, so every record gets the decision it got the first time.
//! Events of windows already closed (`window_end <= closed_through`) are skipped: their rows are
//! final in the sink and their joins and leaves are in `closed_audience`. The open windows are
//! rebuilt exactly, and the sink writes nothing until every partition has passed `next_offset`
//! again, so no row moves backwards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{EventTime, StreamId};
use crate::source::{Offset, PartitionId};
use crate::window::WindowConfig;

/// What shapes a pipeline's results, stored with its checkpoint: a sink refuses to resume results
/// computed under other settings, for the rows of both would mix (spec §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Window size and allowed lateness.
    pub window: WindowConfig,
}

impl Settings {
    /// What differs between the `stored` settings and these, one phrase each; empty when they
    /// agree.
    pub fn differences(&self, stored: &Settings) -> Vec<String> {
        let mut differences = Vec::new();
        let (now, then) = (&self.window, &stored.window);
        if now.size_secs() != then.size_secs() {
            differences.push(format!(
                "the window size (stored results: {} s, this run: {} s)",
                then.size_secs(),
                now.size_secs()
            ));
        }
        if now.lateness_secs() != then.lateness_secs() {
            differences.push(format!(
                "the allowed lateness (stored results: {} s, this run: {} s)",
                then.lateness_secs(),
                now.lateness_secs()
            ));
        }
        differences
    }
}

/// Where one partition stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionPosition {
    /// The partition.
    pub partition: PartitionId,
    /// The next offset to read: every record before it is accounted for in the sink.
    pub next_offset: Offset,
    /// The largest `ts` read before `next_offset`, if any (the partition's watermark is this
    /// minus the allowed lateness).
    pub max_ts: Option<EventTime>,
    /// The offset a restart reads from: no event of an open window lies before it.
    pub replay_from: Offset,
    /// The largest `ts` read before `replay_from`: the lateness clock a restart starts with.
    pub replay_max_ts: Option<EventTime>,
}

impl PartitionPosition {
    /// A partition nothing has been read from, starting at `offset`.
    pub fn start(partition: PartitionId, offset: Offset) -> PartitionPosition {
        PartitionPosition { partition, next_offset: offset, max_ts: None, replay_from: offset, replay_max_ts: None }
    }
}

/// The state a restart resumes from, or the part of it that one epoch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where each partition stands.
    pub positions: BTreeMap<PartitionId, PartitionPosition>,
    /// The pipeline watermark up to which windows are closed: their rows are final.
    pub closed_through: Option<EventTime>,
    /// Per stream, joins minus leaves summed over its closed windows: the base of the running
    /// audience (`active_viewers`).
    pub closed_audience: BTreeMap<StreamId, i64>,
}

impl Checkpoint {
    /// Whether this checkpoint holds nothing: a first run.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.closed_through.is_none() && self.closed_audience.is_empty()
    }

    /// The offset a source resumes `partition` at, if the partition was read before.
    pub fn replay_from(&self, partition: PartitionId) -> Option<Offset> {
        self.positions.get(&partition).map(|p| p.replay_from)
    }

    /// The offset below which `partition`'s records are already in the sink.
    pub fn committed(&self, partition: PartitionId) -> Offset {
        self.positions.get(&partition).map_or(Offset::MIN, |p| p.next_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_setting() {
        let settings = |size, lateness| Settings { window: WindowConfig::new(size, lateness).unwrap() };
        assert!(settings(60, 600).differences(&settings(60, 600)).is_empty());
        let differences = settings(300, 60).differences(&settings(60, 600));
        assert_eq!(differences.len(), 2);
        assert!(differences[0].contains("window size") && differences[0].contains("60 s"), "{differences:?}");
        assert!(differences[1].contains("lateness") && differences[1].contains("600 s"), "{differences:?}");
    }
}
