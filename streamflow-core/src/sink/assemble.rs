//! How the sink operator on worker 0 turns each completed epoch's deliveries into an
//! [`EpochBatch`]: row changes (a pure retraction being a row whose window closed), dead
//! letters, and the checkpoint, kept whole here and sent as what changed.
//!
//! After a restart the pipeline first reads again what the sink already holds, to rebuild the
//! windows that were open. Until every partition is back at its committed offset the batches are
//! held back and merged, so the sink never sees a row move backwards; then they go as one batch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EpochBatch, RowChange};
use crate::aggregate::CheckpointPart;
use crate::checkpoint::{Checkpoint, CheckpointUpdate, PartitionPosition};
use crate::dead_letter::DeadLetter;
use crate::error::Error;
use crate::position::{Offset, PartitionId, Progress};
use crate::schema::{Key, Row};
use crate::time::EventTime;

/// What flows into the sink operator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Delivery<R> {
    /// A row change from the aggregate at an epoch: `+1` a new value, `-1` a retracted one.
    ///
    /// Differential sends updates at their own epoch, which may be later than the epoch of the
    /// message carrying them; the sink files them under their own.
    Row(R, u64, isize),
    /// A refused record.
    DeadLetter(DeadLetter),
    /// A partition's progress.
    Progress(Progress),
    /// One worker's part of the checkpoint.
    Checkpoint(CheckpointPart),
}

/// Turns each epoch's deliveries into a batch, keeping the whole checkpoint, and holds batches
/// back while a restarted pipeline replays what the sink already has.
pub struct Assembler<R> {
    state: Checkpoint,
    /// Per partition, the offset a replay must reach before anything is delivered.
    replaying: BTreeMap<PartitionId, Offset>,
    /// Batches held back during a replay, merged.
    held: Option<EpochBatch<R>>,
    started: std::time::Instant,
}

impl<R: Row> Assembler<R> {
    /// The assembler of a pipeline resuming from `resume`.
    pub fn new(resume: &Checkpoint) -> Assembler<R> {
        let replaying: BTreeMap<_, _> = resume
            .positions
            .values()
            .filter(|p| p.replay_from < p.next_offset)
            .map(|p| (p.partition, p.next_offset))
            .collect();
        let held = (!replaying.is_empty()).then(EpochBatch::default);
        // The sources start again at the replay offsets; the state follows them from there.
        let mut state = resume.clone();
        for position in state.positions.values_mut() {
            position.next_offset = position.replay_from;
            position.max_ts = position.replay_max_ts;
        }
        Assembler { state, replaying, held, started: std::time::Instant::now() }
    }

    /// The batch of a completed epoch, or `None` while a replay is held back.
    pub fn assemble(&mut self, epoch: u64, deliveries: Vec<Delivery<R>>) -> Option<EpochBatch<R>> {
        let mut rows: Vec<(R, isize)> = Vec::new();
        let mut dead_letters = Vec::new();
        let mut progress = Vec::new();
        let mut parts = Vec::new();
        for delivery in deliveries {
            match delivery {
                Delivery::Row(row, _, diff) => rows.push((row, diff)),
                Delivery::DeadLetter(letter) => dead_letters.push(letter),
                Delivery::Progress(report) => progress.push(report),
                Delivery::Checkpoint(part) => parts.push(part),
            }
        }
        dead_letters.sort_by_key(|letter: &DeadLetter| (letter.partition, letter.offset));
        let batch =
            EpochBatch { epoch, rows: row_changes(rows), dead_letters, checkpoint: self.advance(progress, parts) };

        let Some(held) = self.held.as_mut() else { return Some(batch) };
        held.absorb(batch);
        let state = &self.state;
        self.replaying
            .retain(|partition, committed| state.positions.get(partition).is_none_or(|p| p.next_offset < *committed));
        if !self.replaying.is_empty() {
            return None;
        }
        tracing::info!(seconds = self.started.elapsed().as_secs_f64(), "Replay caught up with the committed offsets.");
        self.held.take()
    }

    /// Applies an epoch's progress and checkpoint parts to the state; returns what changed.
    fn advance(&mut self, progress: Vec<Progress>, parts: Vec<CheckpointPart>) -> CheckpointUpdate {
        let mut changed = CheckpointUpdate::default();
        for report in progress {
            let position = self
                .state
                .positions
                .entry(report.partition)
                .or_insert_with(|| PartitionPosition::start(report.partition, report.next_offset));
            position.next_offset = position.next_offset.max(report.next_offset);
            position.max_ts = position.max_ts.max(report.max_ts);
            changed.positions.insert(report.partition, *position);
        }

        let mut replay: BTreeMap<PartitionId, (Offset, Option<EventTime>)> = BTreeMap::new();
        let mut running: BTreeMap<Key, Vec<i64>> = BTreeMap::new();
        for part in parts {
            if part.closed_through > self.state.closed_through {
                self.state.closed_through = part.closed_through;
                changed.closed_through = part.closed_through;
            }
            for (partition, offset, max_ts) in part.replay {
                let earliest = replay.entry(partition).or_insert((offset, max_ts));
                if offset < earliest.0 {
                    *earliest = (offset, max_ts);
                }
            }
            for (key, deltas) in part.closed_running {
                add(running.entry(key).or_default(), &deltas);
            }
        }
        for (partition, (offset, max_ts)) in replay {
            if let Some(position) = self.state.positions.get_mut(&partition) {
                position.replay_from = offset;
                position.replay_max_ts = max_ts;
                changed.positions.insert(partition, *position);
            }
        }
        for (key, deltas) in running {
            let totals = self.state.closed_running.entry(key.clone()).or_default();
            add(totals, &deltas);
            changed.closed_running.insert(key, totals.clone());
        }
        changed
    }

    /// The error to report when the input ended while a replay was still held back: the input
    /// is not the one the sink's results came from.
    pub fn unfinished_replay(&self) -> Option<Error> {
        self.replaying.iter().next().map(|(&partition, &committed)| {
            let reached = self.state.positions.get(&partition).map_or(0, |p| p.next_offset);
            Error::data_lost(format!(
                "the input ended at offset {reached} of partition {partition}, before the committed offset {committed}"
            ))
        })
    }
}

/// Adds `deltas` to `totals`, slot by slot, growing `totals` as needed.
fn add(totals: &mut Vec<i64>, deltas: &[i64]) {
    if totals.len() < deltas.len() {
        totals.resize(deltas.len(), 0);
    }
    for (total, delta) in totals.iter_mut().zip(deltas) {
        *total = total.wrapping_add(*delta);
    }
}

/// One epoch's row updates as changes: consolidated per key, a key with only a retraction being a
/// row whose window closed.
fn row_changes<R: Row>(mut rows: Vec<(R, isize)>) -> Vec<RowChange<R>> {
    differential_dataflow::consolidation::consolidate(&mut rows);
    // A row type may order by more than its window and key first: group by those.
    rows.sort_by(|(a, _), (b, _)| (a.window_start(), a.key()).cmp(&(b.window_start(), b.key())));
    let mut changes: Vec<RowChange<R>> = Vec::new();
    for (row, diff) in rows {
        let same_key = changes
            .last()
            .is_some_and(|last| (last.row().window_start(), last.row().key()) == (row.window_start(), row.key()));
        match (diff > 0, same_key) {
            (true, true) => *changes.last_mut().expect("same_key implies a last") = RowChange::Update(row),
            (true, false) => changes.push(RowChange::Update(row)),
            (false, true) => {} // the old value of a row updated in this epoch
            (false, false) => changes.push(RowChange::Final(row)),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::streams::{self, column};

    fn row(window: i64, stream: &str, events: i64) -> streams::Row {
        let mut values = vec![Some(0); streams::COLUMNS];
        values[column::EVENTS] = Some(events);
        streams::Row::from_values(EventTime::from_secs(window), EventTime::from_secs(window + 60), stream, &values)
    }

    #[test]
    fn updates_and_closures_are_told_apart() {
        let rows = vec![
            (row(0, "a", 1), -1),
            (row(0, "a", 2), 1),
            (row(0, "b", 5), -1),
            (row(60, "a", 1), 1),
            (row(60, "c", 3), 1),
            (row(60, "c", 3), -1),
        ];
        assert_eq!(
            row_changes(rows),
            vec![
                RowChange::Update(row(0, "a", 2)),
                RowChange::Final(row(0, "b", 5)),
                RowChange::Update(row(60, "a", 1))
            ]
        );
    }
}
