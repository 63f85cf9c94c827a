//! What a restart needs, stored by the sink with the rows it describes (spec §4): the
//! [`Checkpoint`], what one epoch changed of it ([`CheckpointUpdate`]), and the [`Settings`]
//! the results were computed with.
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
//! final in the sink and their part of the running columns is in `closed_running`. The open
//! windows are rebuilt exactly, and the sink writes nothing until every partition has passed
//! `next_offset` again, so no row moves backwards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::position::{Offset, PartitionId};
use crate::schema::Key;
use crate::time::{EventTime, WindowConfig};

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

/// The state a restart resumes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where each partition stands.
    pub positions: BTreeMap<PartitionId, PartitionPosition>,
    /// The pipeline watermark up to which windows are closed: their rows are final.
    pub closed_through: Option<EventTime>,
    /// Per key, each running column's sum over the key's closed windows (in the order of the
    /// schema's running columns): the base the running columns go on from.
    pub closed_running: BTreeMap<Key, Vec<i64>>,
}

impl Checkpoint {
    /// Whether this checkpoint holds nothing: a first run.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.closed_through.is_none() && self.closed_running.is_empty()
    }

    /// The offset a source resumes `partition` at, if the partition was read before.
    pub fn replay_from(&self, partition: PartitionId) -> Option<Offset> {
        self.positions.get(&partition).map(|p| p.replay_from)
    }

    /// Where each partition known resumes.
    pub fn replay_offsets(&self) -> BTreeMap<PartitionId, Offset> {
        self.positions.values().map(|p| (p.partition, p.replay_from)).collect()
    }

    /// The offset below which `partition`'s records are already in the sink.
    pub fn committed(&self, partition: PartitionId) -> Offset {
        self.positions.get(&partition).map_or(Offset::MIN, |p| p.next_offset)
    }

    /// Applies what an epoch changed.
    pub fn apply(&mut self, update: CheckpointUpdate) {
        self.positions.extend(update.positions);
        self.closed_through = self.closed_through.max(update.closed_through);
        self.closed_running.extend(update.closed_running);
    }
}

/// What one epoch (or several, merged) changed of the checkpoint: values to store over the
/// previous ones — positions of the partitions read, the closed-through watermark, and the
/// running columns' bases of the keys whose windows closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointUpdate {
    /// The partitions read, where they stand now.
    pub positions: BTreeMap<PartitionId, PartitionPosition>,
    /// The new closed-through watermark, when it moved.
    pub closed_through: Option<EventTime>,
    /// The keys whose windows closed, with their new bases.
    pub closed_running: BTreeMap<Key, Vec<i64>>,
}

impl CheckpointUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.closed_through.is_none() && self.closed_running.is_empty()
    }

    /// Folds a later update in: the pair says what both changed, the later values winning.
    pub fn absorb(&mut self, later: CheckpointUpdate) {
        self.positions.extend(later.positions);
        self.closed_through = self.closed_through.max(later.closed_through);
        self.closed_running.extend(later.closed_running);
    }
}

/// What shapes a pipeline's results, stored with its checkpoint: a sink refuses to resume results
/// computed under other settings, for the rows of both would mix (spec §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Window size and allowed lateness.
    pub window: WindowConfig,
    /// The columns of a row, as [`crate::schema::Columns::fingerprint`] writes them.
    pub columns: String,
}

impl Settings {
    /// What differs between the `stored` settings and these, one phrase each; empty when they
    /// agree. Settings stored without columns (before they were recorded) agree on columns.
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
        if !stored.columns.is_empty() && stored.columns != self.columns {
            differences.push(format!("the columns (stored results: {}, this run: {})", stored.columns, self.columns));
        }
        differences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_setting() {
        let settings = |size, lateness, columns: &str| Settings {
            window: WindowConfig::new(size, lateness).unwrap(),
            columns: columns.into(),
        };
        assert!(settings(60, 600, "a:sum").differences(&settings(60, 600, "a:sum")).is_empty());
        assert!(settings(60, 600, "a:sum").differences(&settings(60, 600, "")).is_empty());
        let differences = settings(300, 60, "a:sum").differences(&settings(60, 600, "b:max"));
        assert_eq!(differences.len(), 3);
        assert!(differences[0].contains("window size") && differences[0].contains("60 s"), "{differences:?}");
        assert!(differences[1].contains("lateness") && differences[1].contains("600 s"), "{differences:?}");
        assert!(differences[2].contains("b:max"), "{differences:?}");
    }

    #[test]
    fn updates_apply_in_order() {
        let mut checkpoint = Checkpoint::default();
        let mut first = CheckpointUpdate { closed_through: Some(EventTime(10)), ..CheckpointUpdate::default() };
        first.closed_running.insert("s".into(), vec![3]);
        let mut second = CheckpointUpdate { closed_through: Some(EventTime(5)), ..CheckpointUpdate::default() };
        second.closed_running.insert("s".into(), vec![4]);
        first.absorb(second);
        checkpoint.apply(first);
        assert_eq!(checkpoint.closed_through, Some(EventTime(10)));
        assert_eq!(checkpoint.closed_running["s"], vec![4]);
    }
}
