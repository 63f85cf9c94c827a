//! The incremental per-(window, key) aggregate of a schema's columns, the rules without the
//! dataflow around them: [`Contributions`] (what one worker adds, epoch by epoch, and takes out
//! when a window closes) and [`running`] (the rows, with the running columns across windows).
//!
//! ```text
//!  events of epoch e ─► Contributions (per worker, for the keys it holds)
//!                          at e's end: per (key, window) what e added ─────────► counts (differential)
//!  progress (every partition's) ─► pipeline watermark: windows it passed close:   at e + 1: minus all it added,
//!                                                                                  running part to the key's base
//!  counts of a key, in window order ─► running::rows ─► rows
//! ```
//! * Events are exchanged by key, so one worker holds each (window, key): its distinct values and
//!   its min and max are counted there ([`crate::schema::Seen`]), and only changes go on.
//! * The [`Sums`] of a (window, key) are the *difference type* of the counts collection:
//!   differential adds them up, so a window's aggregate is the sum of what its epochs added.
//! * **Closing.** When the pipeline watermark (the least partition watermark) passes a window's
//!   end, the worker holding it retracts exactly what it added, at the epoch after the one whose
//!   progress moved the watermark, and the running columns' part goes into a base record of the
//!   key (window [`EventTime::MIN`]), so their totals stay exact. Every worker sees the same
//!   broadcast progress, so all close at the same epoch; the sink reads a pure retraction as
//!   "this row is final". State stays bounded by the open windows.
//! * An epoch's events wait until the epoch is complete: the progress of an earlier epoch may
//!   still close their window, and then they are too late (from a partition that was idle while
//!   the others closed it), a `late` dead letter, not part of the row.

pub mod running;

use std::collections::BTreeMap;
use std::sync::Arc;

use differential_dataflow::difference::{Abelian, IsZero, Semigroup};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::control::Control;
use crate::dead_letter::{DeadLetter, Reason, StoredText};
use crate::lateness::Windowed;
use crate::position::{Offset, PartitionId, Progress};
use crate::schema::{Inputs, Key, Schema, Seen, Sums};
use crate::time::{EventTime, WindowConfig};

/// An update of the counts collection: `((key, window), epoch, sums)`.
pub type CountUpdate<A> = ((Key, EventTime), u64, Sums<A>);

/// What one worker's aggregate adds to the checkpoint after an epoch. The sink operator merges
/// the parts of all workers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointPart {
    /// The pipeline watermark through which windows are closed.
    pub closed_through: Option<EventTime>,
    /// Per partition: the earliest offset of an event this worker holds in an open window (or the
    /// partition's next offset when it holds none), with the partition's clock before it.
    pub replay: Vec<(PartitionId, Offset, Option<EventTime>)>,
    /// Per key, what the windows this worker closed in the epoch add to its running columns.
    pub closed_running: Vec<(Key, Vec<i64>)>,
}

/// What one completed epoch gives.
pub struct Flushed<A> {
    /// Updates of the counts collection.
    pub counts: Vec<CountUpdate<A>>,
    /// This worker's part of the checkpoint.
    pub checkpoint: CheckpointPart,
    /// Events that came for a window already closed.
    pub too_late: Vec<DeadLetter>,
}

/// What this worker has put into one (window, key): what it must take out when the window closes.
struct KeyState<A> {
    total: Sums<A>,
    seen: Seen,
}

/// A window this worker holds.
struct OpenWindow<A> {
    keys: FxHashMap<Key, KeyState<A>>,
    /// Per partition, the first event read into this window: its offset and the clock before it.
    first_read: Vec<(PartitionId, Offset, Option<EventTime>)>,
}

impl<A> Default for OpenWindow<A> {
    fn default() -> Self {
        OpenWindow { keys: FxHashMap::default(), first_read: Vec::new() }
    }
}

/// An epoch's input, kept until the epoch is complete.
struct Pending<E, A> {
    events: Vec<Windowed<E>>,
    progress: Vec<Progress>,
    base: Vec<CountUpdate<A>>,
}

impl<E, A> Default for Pending<E, A> {
    fn default() -> Self {
        Pending { events: Vec::new(), progress: Vec::new(), base: Vec::new() }
    }
}

/// The aggregate of one worker. See the module documentation.
pub struct Contributions<S: Schema> {
    schema: Arc<S>,
    config: WindowConfig,
    /// The slots of the running columns, in order.
    running_slots: Vec<usize>,
    open: BTreeMap<EventTime, OpenWindow<S::Slots>>,
    pending: BTreeMap<u64, Pending<S::Event, S::Slots>>,
    /// The latest progress of every partition, from every worker.
    partitions: BTreeMap<PartitionId, Progress>,
    closed_through: Option<EventTime>,
    control: Control,
}

impl<S: Schema> Contributions<S> {
    /// The aggregate of a worker resuming from `resume`; `holds_base` (one worker) puts the
    /// running columns' base of the windows a previous run closed back, at epoch 0.
    pub fn new(
        schema: Arc<S>,
        config: WindowConfig,
        resume: &Checkpoint,
        holds_base: bool,
        control: Control,
    ) -> Contributions<S> {
        let columns = schema.columns();
        let running_slots: Vec<usize> = columns.running().map(|i| columns.slot(i)).collect();
        let mut contributions = Contributions {
            schema,
            config,
            running_slots,
            open: BTreeMap::new(),
            pending: BTreeMap::new(),
            partitions: BTreeMap::new(),
            closed_through: resume.closed_through,
            control,
        };
        if holds_base {
            let base: Vec<CountUpdate<S::Slots>> = resume
                .closed_running
                .iter()
                .map(|(key, totals)| {
                    let mut sums = S::Slots::default();
                    for (&slot, &total) in contributions.running_slots.iter().zip(totals) {
                        sums.as_mut()[slot] = total;
                    }
                    ((key.clone(), EventTime::MIN), 0, Sums(sums))
                })
                .collect();
            contributions.pending.entry(0).or_default().base.extend(base);
        }
        contributions
    }

    /// The oldest epoch with input not flushed yet.
    pub fn oldest_pending(&self) -> Option<u64> {
        self.pending.keys().next().copied()
    }

    /// Keeps events read in `epoch` until the epoch is complete.
    pub fn absorb(&mut self, epoch: u64, events: impl Iterator<Item = Windowed<S::Event>>) {
        self.pending.entry(epoch).or_default().events.extend(events);
    }

    /// Keeps progress reported in `epoch` until the epoch is complete.
    pub fn progress(&mut self, epoch: u64, progress: impl Iterator<Item = Progress>) {
        self.pending.entry(epoch).or_default().progress.extend(progress);
    }

    /// Adds a completed epoch's events to this worker's contributions; returns the epoch's sums
    /// per (window, key) and the events that came for a window already closed.
    fn contribute(&mut self, events: Vec<Windowed<S::Event>>) -> (Vec<CountUpdate<S::Slots>>, Vec<DeadLetter>, i64) {
        let mut sums: BTreeMap<EventTime, FxHashMap<Key, Sums<S::Slots>>> = BTreeMap::new();
        let mut too_late = Vec::new();
        let mut opened = 0;
        let columns = self.schema.columns();
        for Windowed { window, partition, offset, max_ts_before, event } in events {
            if self.closed_through.is_some_and(|closed| self.config.end_of(window) <= closed) {
                // Its row is final: the event came from a partition that was idle while the
                // others closed the window. Its bytes are gone by now; its decoded form is kept.
                too_late.push(DeadLetter {
                    partition,
                    offset,
                    reason: Reason::Late,
                    detail: Some(StoredText::new(&format!(
                        "ts {}: its window closed while the partition was idle",
                        self.schema.time(&event)
                    ))),
                    event_id: None,
                    key: None,
                    payload: self.schema.payload_of(&event),
                });
                continue;
            }
            let open = self.open.entry(window).or_default();
            match open.first_read.iter_mut().find(|(p, _, _)| *p == partition) {
                Some(first) if first.1 <= offset => {}
                Some(first) => *first = (partition, offset, max_ts_before),
                None => open.first_read.push((partition, offset, max_ts_before)),
            }
            let key = self.schema.key(&event);
            let state = match open.keys.get_mut(key) {
                Some(state) => state,
                None => {
                    opened += 1;
                    open.keys
                        .entry(Key::from(key))
                        .or_insert_with(|| KeyState { total: Sums::default(), seen: Seen::default() })
                }
            };
            let mut inputs = Inputs::new(columns, &mut state.seen);
            self.schema.contribute(&event, &mut inputs);
            let added = Sums(inputs.added());
            state.total.plus_equals(&added);
            let window_sums = sums.entry(window).or_default();
            match window_sums.get_mut(key) {
                Some(sum) => sum.plus_equals(&added),
                None => {
                    window_sums.insert(Key::from(key), added);
                }
            }
        }
        let updates = sums
            .into_iter()
            .flat_map(|(window, keys)| keys.into_iter().map(move |(key, sums)| ((key, window), 0, sums)))
            .collect();
        (updates, too_late, opened)
    }

    /// The updates of a completed epoch: its contributions at `epoch`, the retraction of the
    /// windows its progress closed at `epoch + 1`, and this worker's part of the checkpoint.
    pub fn flush(&mut self, epoch: u64) -> Flushed<S::Slots> {
        let pending = self.pending.remove(&epoch).unwrap_or_default();
        let (mut counts, too_late, opened) = self.contribute(pending.events);
        for update in &mut counts {
            update.1 = epoch;
        }
        counts.extend(pending.base);
        let metrics = Arc::clone(self.control.metrics());
        metrics.add_open_windows(opened);
        if !too_late.is_empty() {
            metrics.dead_letters([(Reason::Late, too_late.len() as u64)]);
        }
        for report in pending.progress {
            self.control.alignment().report(&report);
            match self.partitions.get_mut(&report.partition) {
                Some(known) => known.merge(&report),
                None => {
                    self.partitions.insert(report.partition, report);
                }
            }
        }

        let mut closed_running: FxHashMap<Key, Vec<i64>> = FxHashMap::default();
        if let Some(watermark) = self.pipeline_watermark().filter(|w| self.closed_through.is_none_or(|c| c < *w)) {
            self.closed_through = Some(watermark);
            metrics.set_pipeline_watermark(watermark);
            let next = epoch + 1;
            let mut closed = 0;
            while let Some(entry) = self.open.first_entry() {
                if self.config.end_of(*entry.key()) > watermark {
                    break;
                }
                let window = *entry.key();
                for (key, state) in entry.remove().keys {
                    closed += 1;
                    let mut retraction = state.total;
                    retraction.negate();
                    counts.push(((key.clone(), window), next, retraction));
                    let mut base = Sums(S::Slots::default());
                    for &slot in &self.running_slots {
                        base.0.as_mut()[slot] = state.total.0.as_ref()[slot];
                    }
                    if !base.is_zero() {
                        let totals =
                            closed_running.entry(key.clone()).or_insert_with(|| vec![0; self.running_slots.len()]);
                        for (total, &slot) in totals.iter_mut().zip(&self.running_slots) {
                            *total = total.wrapping_add(base.0.as_ref()[slot]);
                        }
                        counts.push(((key, EventTime::MIN), next, base));
                    }
                }
            }
            metrics.add_open_windows(-closed);
        }

        let replay = self
            .partitions
            .values()
            .map(|progress| {
                let first_reads = self.open.values().flat_map(|w| &w.first_read).filter(|r| r.0 == progress.partition);
                first_reads.min().copied().unwrap_or((progress.partition, progress.next_offset, progress.max_ts))
            })
            .collect();
        let mut closed_running: Vec<(Key, Vec<i64>)> = closed_running.into_iter().collect();
        closed_running.sort();
        Flushed {
            counts,
            checkpoint: CheckpointPart { closed_through: self.closed_through, replay, closed_running },
            too_late,
        }
    }

    /// The least watermark of the partitions that hold it back. A finished or idle partition
    /// holds back no window while others go on; when none holds it, it stays where their own
    /// clocks put it.
    fn pipeline_watermark(&self) -> Option<EventTime> {
        let any_active = self.partitions.values().any(|p| p.state.holds_watermark());
        self.partitions
            .values()
            .filter(|p| p.state.holds_watermark() || !any_active)
            .map(|p| p.max_ts.map(|max| self.config.watermark(max)))
            .min()
            .flatten()
    }
}
