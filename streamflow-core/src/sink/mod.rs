//! Where results go: the [`Sink`] trait, the [`EpochBatch`] it receives, and the operator that
//! assembles those batches on worker 0.
//!
//! A batch holds everything one completed epoch changed: rows, dead letters and the checkpoint a
//! restart needs. A sink that stores all three in one transaction, and hands the stored
//! checkpoint back through [`Sink::checkpoint`], delivers exactly once (spec §4).
//!
//! After a restart the pipeline first reads again what the sink already holds, to rebuild the
//! windows that were open. Until every partition is back at its committed offset the operator
//! holds the batches back and merges them, so the sink never sees a row move backwards; then it
//! delivers them as one batch.

mod memory;
pub mod postgres;

use std::collections::BTreeMap;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

pub use memory::{MemorySink, Table, TableRow};
pub use postgres::{PostgresConfig, PostgresSink};

use crate::aggregate::{CheckpointPart, Row};
use crate::checkpoint::{Checkpoint, PartitionPosition, Settings};
use crate::dataflow::Control;
use crate::dead_letter::DeadLetter;
use crate::error::Error;
use crate::event::{EventTime, StreamId};
use crate::source::PartitionId;
use crate::window::PartitionProgress;

/// A change to one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowChange {
    /// The row's new value; its window is still open.
    Update(Row),
    /// The row's window closed: this value is final and its state has left memory.
    Final(Row),
}

impl RowChange {
    /// The row, whichever the change.
    pub fn row(&self) -> &Row {
        match self {
            RowChange::Update(row) | RowChange::Final(row) => row,
        }
    }

    /// Whether the row is final.
    pub fn is_final(&self) -> bool {
        matches!(self, RowChange::Final(_))
    }
}

/// Everything one completed epoch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochBatch {
    /// The epoch.
    pub epoch: u64,
    /// Changed rows, in key order.
    pub rows: Vec<RowChange>,
    /// Records refused in this epoch, in (partition, offset) order.
    pub dead_letters: Vec<DeadLetter>,
    /// The part of the checkpoint this epoch changed: positions of the partitions read, the
    /// closed-through watermark, and the closed audience of streams whose windows closed (all
    /// absolute values, to be stored over the previous ones).
    pub checkpoint: Checkpoint,
}

impl EpochBatch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.dead_letters.is_empty() && self.checkpoint.is_empty()
    }

    /// Folds a later batch into this one: the pair then says what both epochs changed, with the
    /// later values where both changed the same row or checkpoint entry. A sink that commits
    /// less often than epochs complete writes the merged batch.
    pub fn absorb(&mut self, later: EpochBatch) {
        self.epoch = later.epoch;
        if self.rows.is_empty() {
            self.rows = later.rows;
        } else if !later.rows.is_empty() {
            let mut rows: BTreeMap<(EventTime, StreamId), RowChange> = std::mem::take(&mut self.rows)
                .into_iter()
                .map(|change| ((change.row().window_start, change.row().stream_id.clone()), change))
                .collect();
            for change in later.rows {
                rows.insert((change.row().window_start, change.row().stream_id.clone()), change);
            }
            self.rows = rows.into_values().collect();
        }
        self.dead_letters.extend(later.dead_letters);
        let checkpoint = later.checkpoint;
        self.checkpoint.positions.extend(checkpoint.positions);
        self.checkpoint.closed_through = self.checkpoint.closed_through.max(checkpoint.closed_through);
        self.checkpoint.closed_audience.extend(checkpoint.closed_audience);
    }
}

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct SinkError {
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// An error with a message only.
    pub fn new(context: impl Into<String>) -> SinkError {
        SinkError { context: context.into(), source: None }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> SinkError {
        SinkError { context: context.into(), source: Some(Box::new(source)) }
    }
}

/// A consumer of epoch batches. It runs on worker 0 and sees every epoch once, in order.
pub trait Sink: Send + 'static {
    /// The checkpoint this sink holds from a previous run, to resume from; empty on a first run.
    /// Called once, before any batch, with the settings that shape the results: a sink that
    /// keeps results across runs stores them, and refuses to resume results computed with
    /// other settings ([`Settings::differences`] says what differs).
    fn checkpoint(&mut self, _settings: &Settings) -> Result<Checkpoint, SinkError> {
        Ok(Checkpoint::default())
    }

    /// Takes the changes of one epoch. An error stops the pipeline, and no later batch is given.
    fn apply(&mut self, batch: EpochBatch) -> Result<(), SinkError>;

    /// Called once after the last batch, when the input ended or the pipeline was asked to stop.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        (**self).checkpoint(settings)
    }
    fn apply(&mut self, batch: EpochBatch) -> Result<(), SinkError> {
        (**self).apply(batch)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        (**self).finish()
    }
}

/// What flows into the sink operator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Delivery {
    /// A row change from the aggregate at an epoch: `+1` a new value, `-1` a retracted one.
    ///
    /// Differential sends updates at their own epoch, which may be later than the epoch of the
    /// message carrying them; the sink files them under their own.
    Row(Row, u64, isize),
    /// A refused record.
    DeadLetter(DeadLetter),
    /// A partition's progress.
    Progress(PartitionProgress),
    /// One worker's part of the checkpoint.
    Checkpoint(CheckpointPart),
}

/// The sink operator: gathers each epoch on worker 0 and hands it to `sink` once every worker
/// has finished the epoch. Its output carries no data; its frontier says which epochs the sink
/// has taken.
pub fn deliver<'scope>(
    deliveries: StreamVec<'scope, u64, Delivery>,
    sink: Option<Box<dyn Sink>>,
    resume: Arc<Checkpoint>,
    control: Control,
) -> StreamVec<'scope, u64, ()> {
    let on_worker_zero = deliveries.scope().index() == 0;
    let to_worker_zero = Exchange::new(|_: &Delivery| 0);
    deliveries.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        to_worker_zero,
        "Sink",
        move |capability, _info| {
            let mut capability = Some(capability);
            let mut sink = sink;
            let mut stash: BTreeMap<u64, Vec<Delivery>> = BTreeMap::new();
            let mut assembler = Assembler::new(&resume);
            move |(input, frontier), _output| {
                input.for_each_stamp(|cap, batches| {
                    let Some(&epoch) = cap.least() else { return };
                    for delivery in batches.flat_map(|b| b.drain(..)) {
                        let epoch = match delivery {
                            Delivery::Row(_, time, _) => time,
                            _ => epoch,
                        };
                        stash.entry(epoch).or_default().push(delivery);
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (epoch, deliveries) = entry.remove_entry();
                    let Some(batch) = assembler.assemble(epoch, deliveries) else { continue };
                    control.metrics().epoch_delivered(batch.rows.len() as u64);
                    if let Some(Err(error)) = sink.as_mut().map(|sink| sink.apply(batch)) {
                        control.fail(error.into());
                        sink = None;
                    }
                }
                match frontier.frontier().first() {
                    Some(time) => {
                        if let Some(cap) = capability.as_mut() {
                            cap.downgrade(time);
                        }
                    }
                    None if capability.is_some() => {
                        capability = None;
                        let finished = match assembler.unfinished_replay().filter(|_| on_worker_zero) {
                            Some(error) => Err(error),
                            None => sink.as_mut().map_or(Ok(()), |sink| sink.finish().map_err(Error::from)),
                        };
                        if let Err(error) = finished {
                            control.fail(error);
                        }
                    }
                    None => {}
                }
            }
        },
    )
}

/// Turns each epoch's deliveries into a batch, keeping the whole checkpoint, and holds batches
/// back while a restarted pipeline replays what the sink already has.
struct Assembler {
    state: Checkpoint,
    /// Per partition, the offset a replay must reach before anything is delivered.
    replaying: BTreeMap<PartitionId, crate::source::Offset>,
    /// Batches held back during a replay, merged.
    held: Option<EpochBatch>,
    started: std::time::Instant,
}

impl Assembler {
    fn new(resume: &Checkpoint) -> Assembler {
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
    fn assemble(&mut self, epoch: u64, deliveries: Vec<Delivery>) -> Option<EpochBatch> {
        let mut rows: Vec<(Row, isize)> = Vec::new();
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
    fn advance(&mut self, progress: Vec<PartitionProgress>, parts: Vec<CheckpointPart>) -> Checkpoint {
        let mut changed = Checkpoint::default();
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

        let mut replay: BTreeMap<PartitionId, (crate::source::Offset, Option<EventTime>)> = BTreeMap::new();
        let mut audience: BTreeMap<StreamId, i64> = BTreeMap::new();
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
            for (stream, delta) in part.closed_audience {
                *audience.entry(stream).or_default() += delta;
            }
        }
        for (partition, (offset, max_ts)) in replay {
            if let Some(position) = self.state.positions.get_mut(&partition) {
                position.replay_from = offset;
                position.replay_max_ts = max_ts;
                changed.positions.insert(partition, *position);
            }
        }
        for (stream, delta) in audience {
            let total = self.state.closed_audience.entry(stream.clone()).or_default();
            *total += delta;
            changed.closed_audience.insert(stream, *total);
        }
        changed
    }

    /// The error to report when the input ended while a replay was still held back.
    fn unfinished_replay(&self) -> Option<Error> {
        self.replaying.iter().next().map(|(&partition, &committed)| Error::InputShorterThanCommitted {
            partition,
            reached: self.state.positions.get(&partition).map_or(0, |p| p.next_offset),
            committed,
        })
    }
}

/// One epoch's row updates as changes: consolidated per key, a key with only a retraction being a
/// row whose window closed.
fn row_changes(mut rows: Vec<(Row, isize)>) -> Vec<RowChange> {
    differential_dataflow::consolidation::consolidate(&mut rows);
    let mut changes: Vec<RowChange> = Vec::new();
    for (row, diff) in rows {
        let same_key = changes.last().is_some_and(|last| last.row().key() == row.key());
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
    use crate::aggregate::Counters;
    use crate::event::EventTime;

    fn row(window: i64, stream: &str, events: i64) -> Row {
        let counters = Counters { events, ..Counters::default() };
        Row::new(EventTime::from_secs(window), EventTime::from_secs(window + 60), stream.into(), &counters, 0)
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
