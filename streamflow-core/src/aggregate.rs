//! The incremental per-(window, stream) aggregate of spec §3, as a differential-dataflow
//! collection.
//!
//! ```text
//!  Windowed events ─ exchange by stream ─► Contribute ──► counts: (stream, window) with Counters ──► reduce "Audience"
//!                                          │ per epoch: what its events add            (running joins − leaves   │
//!  progress (broadcast) ──────────────────►│ at close: minus everything it added        over a stream's windows)  ▼
//!                                          └─► checkpoint parts                                          rows per epoch
//! ```
//!
//! * Events are exchanged by `stream_id`, so one worker holds each (window, stream). It adds up
//!   the epoch's events and keeps the window's users; a user seen for the first time in the window
//!   adds one to `unique_viewers`. A differential `distinct` over (window, stream, user) gives the
//!   same number but carries every user through the arrangements twice (in, and out at close);
//!   counting where the key lives carries none (see the benchmark note in `docs/decisions.md`).
//! * [`Counters`] is the *difference type* of the counts collection: differential adds them up,
//!   so a window's counters are the sum of what its epochs added.
//! * `active_viewers` is a running sum over *all* of a stream's windows, computed by the
//!   `Audience` reduce: a late join updates every later window of the stream. A closed window's
//!   joins and leaves are folded into a base record (window [`EventTime::MIN`]), so the sum stays
//!   exact while the closed window's own records are retracted.
//!
//! **Closing.** When the pipeline watermark (the least partition watermark) passes a window's end,
//! the worker holding it retracts exactly what it added, at the epoch after the one whose progress
//! moved the watermark. Every worker sees the same broadcast progress, so all close at the same
//! epoch, and the row disappears at once: the sink reads a pure retraction as "this row is final".
//! No accepted event can fall into a closed window: its partition's watermark was already at or
//! past the pipeline watermark when it was read, and its window ends after that. State therefore
//! stays bounded by the open windows.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use differential_dataflow::{AsCollection, VecCollection};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::StreamVec;

use crate::checkpoint::Checkpoint;
use crate::dead_letter::{DeadLetter, Reason, StoredText};
use crate::event::{Cents, Event, EventTime, EventType, StreamId, UserId};
use crate::metrics::Metrics;
use crate::source::{Offset, PartitionId};
use crate::window::{PartitionProgress, WindowConfig, Windowed};

/// The additive part of a row: counts and sums that add up across events.
///
/// It is the difference type of the counts collection, so it is a commutative group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Counters {
    /// Accepted events.
    pub events: i64,
    /// `chat_message` events.
    pub chat_messages: i64,
    /// `donation` events.
    pub donations_count: i64,
    /// The sum of donations, in cents.
    pub donations_cents: i64,
    /// `viewer_join` events.
    pub viewer_joins: i64,
    /// `viewer_leave` events.
    pub viewer_leaves: i64,
    /// Distinct users seen (each adds one when first seen in its window).
    pub unique_viewers: i64,
}

impl Counters {
    /// What one event adds.
    pub fn of(event: &Event) -> Counters {
        let mut counters = Counters { events: 1, ..Counters::default() };
        match event.kind {
            EventType::ChatMessage => counters.chat_messages = 1,
            EventType::Donation => {
                counters.donations_count = 1;
                counters.donations_cents = event.amount.map_or(0, |c| c.0);
            }
            EventType::ViewerJoin => counters.viewer_joins = 1,
            EventType::ViewerLeave => counters.viewer_leaves = 1,
            EventType::StreamStart | EventType::StreamStop => {}
        }
        counters
    }

    /// Joins minus leaves.
    pub fn net_viewers(&self) -> i64 {
        self.viewer_joins - self.viewer_leaves
    }

    /// Only the joins and leaves: what a closed window leaves behind for the running audience.
    fn audience(&self) -> Counters {
        Counters { viewer_joins: self.viewer_joins, viewer_leaves: self.viewer_leaves, ..Counters::default() }
    }
}

impl IsZero for Counters {
    fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

impl Semigroup for Counters {
    fn plus_equals(&mut self, rhs: &Self) {
        self.events += rhs.events;
        self.chat_messages += rhs.chat_messages;
        self.donations_count += rhs.donations_count;
        // Ten million donations of the largest amount reach i64's range; wrapping keeps the
        // group exact (retractions still cancel) where overflowing would panic.
        self.donations_cents = self.donations_cents.wrapping_add(rhs.donations_cents);
        self.viewer_joins += rhs.viewer_joins;
        self.viewer_leaves += rhs.viewer_leaves;
        self.unique_viewers += rhs.unique_viewers;
    }
}

impl Monoid for Counters {
    fn zero() -> Self {
        Counters::default()
    }
}

impl Abelian for Counters {
    fn negate(&mut self) {
        *self = Counters {
            events: -self.events,
            chat_messages: -self.chat_messages,
            donations_count: -self.donations_count,
            donations_cents: self.donations_cents.wrapping_neg(),
            viewer_joins: -self.viewer_joins,
            viewer_leaves: -self.viewer_leaves,
            unique_viewers: -self.unique_viewers,
        };
    }
}

/// One row of `stream_metrics_minute`: the aggregates of one stream in one window.
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
    /// The row of one window from its parts.
    pub fn new(
        window_start: EventTime,
        window_end: EventTime,
        stream_id: StreamId,
        counters: &Counters,
        active_viewers: u64,
    ) -> Row {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Row {
            window_start,
            window_end,
            stream_id,
            events: count(counters.events),
            chat_messages: count(counters.chat_messages),
            donations_count: count(counters.donations_count),
            donations_usd: Cents(counters.donations_cents),
            viewer_joins: count(counters.viewer_joins),
            viewer_leaves: count(counters.viewer_leaves),
            net_viewer_delta: counters.net_viewers(),
            unique_viewers: count(counters.unique_viewers),
            active_viewers,
        }
    }

    /// The primary key: `(window_start, stream_id)`.
    pub fn key(&self) -> (EventTime, &str) {
        (self.window_start, &self.stream_id)
    }
}

/// What one worker's aggregate adds to the checkpoint after an epoch. The sink operator merges
/// the parts of all workers into a [`crate::Checkpoint`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointPart {
    /// The pipeline watermark through which windows are closed.
    pub closed_through: Option<EventTime>,
    /// Per partition: the earliest offset of an event this worker holds in an open window (or the
    /// partition's next offset when it holds none), with the partition's clock before it.
    pub replay: Vec<(PartitionId, Offset, Option<EventTime>)>,
    /// Joins minus leaves of the windows this worker closed in the epoch, per stream.
    pub closed_audience: Vec<(StreamId, i64)>,
}

/// What the aggregate sends on.
pub struct Aggregated<'scope> {
    /// The rows, as a collection.
    pub rows: VecCollection<'scope, u64, Row>,
    /// Each worker's part of the checkpoint, once per epoch.
    pub checkpoint: StreamVec<'scope, u64, CheckpointPart>,
    /// Events that came for a window already closed: possible only from a partition that was
    /// idle, and so did not hold the watermark back, while the others closed the window.
    pub too_late: StreamVec<'scope, u64, DeadLetter>,
}

/// The aggregate: accepted events and the broadcast progress of every partition in; the
/// collection of rows, each worker's part of the checkpoint, and events too late for their
/// closed window, out.
pub fn aggregate<'scope>(
    events: StreamVec<'scope, u64, Windowed>,
    progress: StreamVec<'scope, u64, PartitionProgress>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    metrics: Arc<Metrics>,
) -> Aggregated<'scope> {
    let (counts, checkpoint, too_late) = contribute(events, progress, config, resume, metrics);
    let rows = counts.reduce_named(
        "Audience",
        move |stream, windows: &[(&EventTime, Counters)], out: &mut Vec<(Row, isize)>| {
            let mut running = 0i64;
            for &(&window, counters) in windows {
                running += counters.net_viewers();
                if window != EventTime::MIN {
                    let active = u64::try_from(running).unwrap_or(0);
                    out.push((Row::new(window, config.end_of(window), stream.clone(), &counters, active), 1));
                }
            }
        },
    );
    Aggregated { rows: rows.map(|(_stream, row)| row), checkpoint, too_late }
}

/// Counts, keyed by stream with the window as value, so one reduce sees a stream's windows in order.
type Counts<'scope> = VecCollection<'scope, u64, (StreamId, EventTime), Counters>;

type CountUpdate = ((StreamId, EventTime), u64, Counters);
type Output<D> = OutputBuilder<u64, CapacityContainerBuilder<Vec<D>>>;

/// The `Contribute` operator: turns this worker's events into updates of the two collections,
/// one consolidated set per epoch, retracts closed windows, and reports its part of the checkpoint.
fn contribute<'scope>(
    events: StreamVec<'scope, u64, Windowed>,
    progress: StreamVec<'scope, u64, PartitionProgress>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    metrics: Arc<Metrics>,
) -> (Counts<'scope>, StreamVec<'scope, u64, CheckpointPart>, StreamVec<'scope, u64, DeadLetter>) {
    let worker = events.scope().index();
    let mut builder = OperatorBuilder::new("Contribute".to_owned(), events.scope());
    let by_stream = Exchange::new(|windowed: &Windowed| {
        let mut hasher = rustc_hash::FxHasher::default();
        windowed.event.stream_id.hash(&mut hasher);
        hasher.finish()
    });
    let mut events_in = builder.new_input(events, by_stream);
    let mut progress_in = builder.new_input(progress, Pipeline);
    let (counts_out, counts) = builder.new_output();
    let (checkpoint_out, checkpoint) = builder.new_output();
    let (too_late_out, too_late) = builder.new_output();
    let mut counts_out: Output<CountUpdate> = OutputBuilder::from(counts_out);
    let mut checkpoint_out: Output<CheckpointPart> = OutputBuilder::from(checkpoint_out);
    let mut too_late_out: Output<DeadLetter> = OutputBuilder::from(too_late_out);

    builder.build(move |capabilities| {
        let mut capabilities = Some(capabilities);
        let mut state = Contributions::new(config, resume.closed_through, metrics);
        // The audience of windows a previous run closed enters once, at epoch 0.
        if worker == 0 {
            let base = resume.closed_audience.iter().map(|(stream, &net)| {
                ((stream.clone(), EventTime::MIN), 0, Counters { viewer_joins: net, ..Counters::default() })
            });
            state.pending(0).base.extend(base);
        }
        move |frontiers| {
            events_in.for_each_stamp(|cap, batches| {
                let Some(&epoch) = cap.least() else { return };
                for batch in batches {
                    state.absorb(epoch, batch.drain(..));
                }
            });
            progress_in.for_each_stamp(|cap, batches| {
                let Some(&epoch) = cap.least() else { return };
                for batch in batches {
                    state.pending(epoch).progress.append(batch);
                }
            });

            let Some(caps) = capabilities.as_mut() else { return };
            // Updates carry their own time (the epoch, or the next one for closing retractions),
            // never earlier than the capabilities they are sent under.
            let complete = |epoch: &u64| frontiers.iter().all(|f| !f.less_equal(epoch));
            let mut counts_handle = counts_out.activate();
            let mut checkpoint_handle = checkpoint_out.activate();
            let mut too_late_handle = too_late_out.activate();
            while let Some(epoch) = state.oldest_pending().filter(complete) {
                let (counts, checkpoint, too_late) = state.flush(epoch);
                counts_handle.session(&caps[0].delayed(&epoch)).give_iterator(counts.into_iter());
                checkpoint_handle.session(&caps[1].delayed(&(epoch + 1))).give(checkpoint);
                too_late_handle.session(&caps[2].delayed(&epoch)).give_iterator(too_late.into_iter());
            }
            match frontiers.iter().filter_map(|f| f.frontier().first().copied()).min() {
                Some(frontier) => caps.iter_mut().for_each(|cap| cap.downgrade(&frontier)),
                None => capabilities = None,
            }
        }
    });

    (counts.as_collection(), checkpoint, too_late)
}

/// What this worker has put into one (window, stream): what it must take out when the window closes.
#[derive(Default)]
struct Contribution {
    counters: Counters,
    users: FxHashSet<UserId>,
}

/// A window this worker holds.
#[derive(Default)]
struct OpenWindow {
    streams: FxHashMap<StreamId, Contribution>,
    /// Per partition, the first event read into this window: its offset and the clock before it.
    first_read: Vec<(PartitionId, Offset, Option<EventTime>)>,
}

/// Updates of one epoch, not yet sent.
#[derive(Default)]
///
/// An epoch's events wait here until the epoch is complete: the progress of an earlier epoch may
/// still close their window, and then they are too late, not part of the window's row.
struct Pending {
    events: Vec<Windowed>,
    progress: Vec<PartitionProgress>,
    base: Vec<CountUpdate>,
}

/// The state of the `Contribute` operator on one worker.
struct Contributions {
    config: WindowConfig,
    open: BTreeMap<EventTime, OpenWindow>,
    pending: BTreeMap<u64, Pending>,
    /// The latest progress of every partition, from every worker.
    partitions: BTreeMap<PartitionId, PartitionProgress>,
    closed_through: Option<EventTime>,
    metrics: Arc<Metrics>,
}

impl Contributions {
    fn new(config: WindowConfig, closed_through: Option<EventTime>, metrics: Arc<Metrics>) -> Contributions {
        Contributions {
            config,
            open: BTreeMap::new(),
            pending: BTreeMap::new(),
            partitions: BTreeMap::new(),
            closed_through,
            metrics,
        }
    }

    fn pending(&mut self, epoch: u64) -> &mut Pending {
        self.pending.entry(epoch).or_default()
    }

    fn oldest_pending(&self) -> Option<u64> {
        self.pending.keys().next().copied()
    }

    /// Keeps events read in `epoch` until the epoch is complete.
    fn absorb(&mut self, epoch: u64, events: impl Iterator<Item = Windowed>) {
        self.pending.entry(epoch).or_default().events.extend(events);
    }

    /// Adds a completed epoch's events to this worker's contributions; returns the epoch's sums
    /// per (window, stream) and the events that came for a window already closed.
    fn contribute(
        &mut self,
        events: Vec<Windowed>,
    ) -> (BTreeMap<EventTime, FxHashMap<StreamId, Counters>>, Vec<DeadLetter>) {
        let mut sums: BTreeMap<EventTime, FxHashMap<StreamId, Counters>> = BTreeMap::new();
        let mut too_late = Vec::new();
        let mut opened = 0;
        for Windowed { window, partition, offset, max_ts_before, event } in events {
            if self.closed_through.is_some_and(|closed| self.config.end_of(window) <= closed) {
                // Its row is final: the event came from a partition that was idle while the
                // others closed the window. Its bytes are gone by now; its decoded form is kept.
                self.metrics.dead_letter(Reason::Late);
                too_late.push(DeadLetter {
                    partition,
                    offset,
                    reason: Reason::Late,
                    detail: Some(StoredText::new(&format!(
                        "ts {}: its window closed while the partition was idle",
                        event.ts
                    ))),
                    event_id: None,
                    key: None,
                    payload: event.to_json().into_bytes(),
                });
                continue;
            }
            let open = self.open.entry(window).or_default();
            match open.first_read.iter_mut().find(|(p, _, _)| *p == partition) {
                Some(first) if first.1 <= offset => {}
                Some(first) => *first = (partition, offset, max_ts_before),
                None => open.first_read.push((partition, offset, max_ts_before)),
            }
            let contribution = match open.streams.get_mut(event.stream_id.as_str()) {
                Some(contribution) => contribution,
                None => {
                    opened += 1;
                    open.streams.entry(event.stream_id.clone()).or_default()
                }
            };
            let mut counters = Counters::of(&event);
            if let Some(user) = event.user_id {
                if !contribution.users.contains(&user) {
                    contribution.users.insert(user);
                    counters.unique_viewers = 1;
                }
            }
            contribution.counters.plus_equals(&counters);
            let window_sums = sums.entry(window).or_default();
            match window_sums.get_mut(event.stream_id.as_str()) {
                Some(sum) => sum.plus_equals(&counters),
                None => {
                    window_sums.insert(event.stream_id, counters);
                }
            }
        }
        self.metrics.add_open_windows(opened);
        (sums, too_late)
    }

    /// The updates of a completed epoch: its contributions at `epoch`, the retraction of the
    /// windows its progress closed at `epoch + 1`, and this worker's part of the checkpoint.
    fn flush(&mut self, epoch: u64) -> (Vec<CountUpdate>, CheckpointPart, Vec<DeadLetter>) {
        let pending = self.pending.remove(&epoch).unwrap_or_default();
        let (sums, too_late) = self.contribute(pending.events);
        let mut counts: Vec<CountUpdate> = sums
            .into_iter()
            .flat_map(|(window, streams)| streams.into_iter().map(move |(stream, c)| ((stream, window), epoch, c)))
            .chain(pending.base)
            .collect();
        for report in pending.progress {
            match self.partitions.get_mut(&report.partition) {
                Some(known) => {
                    known.next_offset = known.next_offset.max(report.next_offset);
                    known.max_ts = known.max_ts.max(report.max_ts);
                    known.state = report.state;
                }
                None => {
                    self.partitions.insert(report.partition, report);
                }
            }
        }

        let mut closed_audience: FxHashMap<StreamId, i64> = FxHashMap::default();
        // A finished or idle partition holds back no window while others go on; when none
        // holds the watermark, it stays where their own clocks put it.
        let any_active = self.partitions.values().any(|p| p.state.holds_watermark());
        let pipeline_watermark = self
            .partitions
            .values()
            .filter(|p| p.state.holds_watermark() || !any_active)
            .map(|p| p.max_ts.map(|max| self.config.watermark(max)))
            .min()
            .flatten();
        if let Some(watermark) = pipeline_watermark.filter(|w| self.closed_through.is_none_or(|c| c < *w)) {
            self.closed_through = Some(watermark);
            self.metrics.set_pipeline_watermark(watermark);
            let next = epoch + 1;
            let mut closed = 0;
            while let Some(entry) = self.open.first_entry() {
                if self.config.end_of(*entry.key()) > watermark {
                    break;
                }
                let window = *entry.key();
                for (stream, contribution) in entry.remove().streams {
                    closed += 1;
                    let mut retraction = contribution.counters;
                    retraction.negate();
                    counts.push(((stream.clone(), window), next, retraction));
                    let audience = contribution.counters.audience();
                    if !audience.is_zero() {
                        *closed_audience.entry(stream.clone()).or_default() += audience.net_viewers();
                        counts.push(((stream.clone(), EventTime::MIN), next, audience));
                    }
                }
            }
            self.metrics.add_open_windows(-closed);
        }

        let replay = self
            .partitions
            .values()
            .map(|progress| {
                let first_reads = self.open.values().flat_map(|w| &w.first_read).filter(|r| r.0 == progress.partition);
                first_reads.min().copied().unwrap_or((progress.partition, progress.next_offset, progress.max_ts))
            })
            .collect();
        let mut closed_audience: Vec<(StreamId, i64)> = closed_audience.into_iter().collect();
        closed_audience.sort();
        let checkpoint = CheckpointPart { closed_through: self.closed_through, replay, closed_audience };
        (counts, checkpoint, too_late)
    }
}
