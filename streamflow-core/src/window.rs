//! Tumbling event-time windows, per-partition watermarks and lateness (spec §2).
//!
//! ```text
//!   partition p:  ... e1 e2 e3 ...       (read in offset order by one worker)
//!   max_ts(p)   = the largest ts read so far from p
//!   watermark(p)= max_ts(p) - lateness
//!   e is late  <=> window_end(e.ts) <= watermark(p) when e is read
//! ```
//! The decision looks at the event's own partition only, so a replay of the same log decides the
//! same. The [`window`] operator applies the rule to decoded records in offset order and sends
//! accepted events on with their window, refused ones to the dead-letter stream, and each
//! partition's progress to the aggregate and the sink.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::checkpoint::Checkpoint;
use crate::dead_letter::{DeadLetter, Reason, StoredText};
use crate::decode::{event_id, DecodedBatch, Refusal};
use crate::error::Error;
use crate::event::{Event, EventTime};
use crate::metrics::Metrics;
use crate::source::{Offset, PartitionId, PartitionState};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Window size and allowed lateness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    size_secs: u32,
    lateness_secs: u32,
}

impl Default for WindowConfig {
    /// One-minute windows, ten minutes of lateness: the original pipeline's settings.
    fn default() -> Self {
        WindowConfig { size_secs: 60, lateness_secs: 600 }
    }
}

impl WindowConfig {
    /// Windows of `size_secs` (a whole number of seconds that divides a day) and
    /// `lateness_secs` of allowed lateness.
    pub fn new(size_secs: u32, lateness_secs: u32) -> Result<WindowConfig, Error> {
        if size_secs == 0 || 86_400 % size_secs != 0 {
            return Err(Error::Config(format!(
                "the window size must be a whole number of seconds that divides a day, not {size_secs}"
            )));
        }
        Ok(WindowConfig { size_secs, lateness_secs })
    }

    /// The window size in seconds.
    pub fn size_secs(&self) -> u32 {
        self.size_secs
    }

    /// The allowed lateness in seconds.
    pub fn lateness_secs(&self) -> u32 {
        self.lateness_secs
    }

    fn size_micros(&self) -> i64 {
        i64::from(self.size_secs) * MICROS_PER_SECOND
    }

    /// The start of the window holding `ts`: `floor(ts / size) * size`.
    pub fn start_of(&self, ts: EventTime) -> EventTime {
        EventTime(ts.micros().div_euclid(self.size_micros()) * self.size_micros())
    }

    /// The end of the window starting at `start`.
    pub fn end_of(&self, start: EventTime) -> EventTime {
        start.plus_micros(self.size_micros())
    }

    /// The watermark that a partition whose largest `ts` is `max_ts` has.
    pub fn watermark(&self, max_ts: EventTime) -> EventTime {
        max_ts.plus_micros(-i64::from(self.lateness_secs) * MICROS_PER_SECOND)
    }
}

/// An accepted event with its window and its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windowed {
    /// The start of the event's window.
    pub window: EventTime,
    /// The partition it was read from.
    pub partition: PartitionId,
    /// Its offset there.
    pub offset: Offset,
    /// The partition's largest `ts` before this event: the lateness clock a replay starting at
    /// this event needs.
    pub max_ts_before: Option<EventTime>,
    /// The event.
    pub event: Event,
}

/// How far a partition has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// The partition.
    pub partition: PartitionId,
    /// The next offset to read.
    pub next_offset: Offset,
    /// The largest `ts` read so far, if any.
    pub max_ts: Option<EventTime>,
    /// Whether the partition holds the pipeline watermark back.
    pub state: PartitionState,
}

/// The lateness state of one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionClock {
    max_ts: Option<EventTime>,
}

impl PartitionClock {
    /// A clock that has already read events up to `max_ts` (a resumed partition).
    pub fn at(max_ts: Option<EventTime>) -> PartitionClock {
        PartitionClock { max_ts }
    }

    /// The largest `ts` read so far.
    pub fn max_ts(&self) -> Option<EventTime> {
        self.max_ts
    }

    /// Reads an event time: the start of its window, or `None` when the event is late.
    pub fn admit(&mut self, ts: EventTime, config: &WindowConfig) -> Option<EventTime> {
        let window = config.start_of(ts);
        let late = self.max_ts.is_some_and(|max| config.end_of(window) <= config.watermark(max));
        self.max_ts = self.max_ts.max(Some(ts));
        (!late).then_some(window)
    }
}

/// One partition as the window operator reads it.
struct PartitionReader {
    clock: PartitionClock,
    /// The `seq` of the batch to read next.
    next_seq: u64,
    /// Batches that arrived before their turn, with capabilities for their epoch.
    early: BTreeMap<u64, (OutputCaps, DecodedBatch)>,
    /// Records before this offset were accounted for by a previous run.
    committed: Offset,
    /// The offset after the last record read: a source must not give one twice.
    next_offset: Offset,
}

/// A capability for each output of the window operator.
struct OutputCaps([Capability<u64>; 3]);

type Output<D> = OutputBuilder<u64, CapacityContainerBuilder<Vec<D>>>;

/// The window operator: puts each partition's decoded batches in order, applies the lateness rule
/// and assigns windows.
///
/// Returns the accepted events, the dead letters, and the progress of each partition (one report
/// per batch). When `resume` holds a checkpoint, each partition's clock starts where the
/// checkpoint says, and records a previous run already accounted for are not sent again: dead
/// letters below the committed offset, and events of windows already closed.
pub fn window<'scope>(
    decoded: StreamVec<'scope, u64, DecodedBatch>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    metrics: Arc<Metrics>,
) -> (StreamVec<'scope, u64, Windowed>, StreamVec<'scope, u64, DeadLetter>, StreamVec<'scope, u64, PartitionProgress>) {
    let mut builder = OperatorBuilder::new("Window".to_owned(), decoded.scope());
    let by_partition = Exchange::new(|decoded: &DecodedBatch| u64::from(decoded.batch.partition));
    let mut input = builder.new_input(decoded, by_partition);
    let (events_out, events) = builder.new_output();
    let (dead_out, dead_letters) = builder.new_output();
    let (progress_out, progress) = builder.new_output();
    let mut events_out: Output<Windowed> = OutputBuilder::from(events_out);
    let mut dead_out: Output<DeadLetter> = OutputBuilder::from(dead_out);
    let mut progress_out: Output<PartitionProgress> = OutputBuilder::from(progress_out);

    builder.build(move |_capabilities| {
        let mut readers: HashMap<PartitionId, PartitionReader> = HashMap::new();
        move |_frontiers| {
            let mut events = events_out.activate();
            let mut dead = dead_out.activate();
            let mut progress = progress_out.activate();
            let mut read = |caps: &OutputCaps, reader: &mut PartitionReader, decoded: DecodedBatch| {
                let [events_cap, dead_cap, progress_cap] = &caps.0;
                let mut events = events.session(events_cap);
                let mut dead = dead.session(dead_cap);
                let DecodedBatch { batch, outcomes } = decoded;
                let mut repeated = 0;
                for (record, outcome) in batch.iter().zip(outcomes) {
                    let offset = record.offset;
                    // Offsets only grow within a partition; a record given again is counted once.
                    if offset < reader.next_offset {
                        repeated += 1;
                        continue;
                    }
                    reader.next_offset = offset + 1;
                    let refusal = match outcome {
                        Ok(event) => {
                            let max_ts_before = reader.clock.max_ts();
                            match reader.clock.admit(event.ts, &config) {
                                Some(window) => {
                                    let already_final = offset < reader.committed
                                        && resume.closed_through.is_some_and(|closed| config.end_of(window) <= closed);
                                    if !already_final {
                                        events.give(Windowed {
                                            window,
                                            partition: batch.partition,
                                            offset,
                                            max_ts_before,
                                            event,
                                        });
                                    }
                                    continue;
                                }
                                None => Refusal {
                                    reason: Reason::Late,
                                    detail: Some(StoredText::new(&format!("ts {}", event.ts))),
                                    event_id: event_id(record.payload),
                                },
                            }
                        }
                        Err(refusal) => refusal,
                    };
                    if offset >= reader.committed {
                        metrics.dead_letter(refusal.reason);
                        dead.give(DeadLetter {
                            partition: batch.partition,
                            offset,
                            reason: refusal.reason,
                            detail: refusal.detail,
                            event_id: refusal.event_id,
                            key: record.key.map(<[u8]>::to_vec),
                            payload: record.payload.to_vec(),
                        });
                    }
                }
                if repeated > 0 {
                    tracing::warn!(
                        partition = batch.partition,
                        records = repeated,
                        "The source gave records already read; they are skipped."
                    );
                }
                let max_ts = reader.clock.max_ts();
                metrics.partition_read(&batch, max_ts);
                progress.session(progress_cap).give(PartitionProgress {
                    partition: batch.partition,
                    next_offset: batch.next_offset,
                    max_ts,
                    state: batch.state,
                });
                reader.next_seq += 1;
            };

            input.for_each_stamp(|cap, batches| {
                let Some(&time) = cap.least() else { return };
                for decoded in batches.flat_map(|b| b.drain(..)) {
                    let partition = decoded.batch.partition;
                    let reader = readers.entry(partition).or_insert_with(|| PartitionReader {
                        clock: PartitionClock::at(resume.positions.get(&partition).and_then(|p| p.replay_max_ts)),
                        next_seq: 0,
                        early: BTreeMap::new(),
                        committed: resume.committed(partition),
                        next_offset: Offset::MIN,
                    });
                    let caps = OutputCaps([cap.delayed(&time, 0), cap.delayed(&time, 1), cap.delayed(&time, 2)]);
                    if decoded.batch.seq != reader.next_seq {
                        reader.early.insert(decoded.batch.seq, (caps, decoded));
                        continue;
                    }
                    read(&caps, reader, decoded);
                    while let Some((caps, decoded)) = reader.early.remove(&reader.next_seq) {
                        read(&caps, reader, decoded);
                    }
                }
            });
        }
    });

    (events, dead_letters, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> EventTime {
        EventTime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn window_bounds_and_an_event_exactly_at_window_end() {
        let config = WindowConfig::default();
        assert_eq!(config.start_of(at("2025-12-20T18:34:38.300308Z")), at("2025-12-20T18:34:00Z"));
        assert_eq!(config.end_of(at("2025-12-20T18:34:00Z")), at("2025-12-20T18:35:00Z"));
        // An event at a window's end belongs to the next window, not to the one that ends there.
        assert_eq!(config.start_of(at("2025-12-20T18:35:00Z")), at("2025-12-20T18:35:00Z"));
        assert_eq!(config.start_of(at("2025-12-20T18:34:59.999999Z")), at("2025-12-20T18:34:00Z"));
        // Windows are aligned to UTC whatever the offset the event was written in.
        assert_eq!(config.start_of(at("2025-12-20T20:04:38+05:30")), at("2025-12-20T14:34:00Z"));
    }

    #[test]
    fn windows_before_1970_floor_downwards() {
        let config = WindowConfig::default();
        assert_eq!(config.start_of(at("1969-12-31T23:59:30Z")), at("1969-12-31T23:59:00Z"));
    }

    #[test]
    fn sizes_must_divide_a_day() {
        assert!(WindowConfig::new(0, 0).is_err());
        assert!(WindowConfig::new(7, 0).is_err());
        assert!(WindowConfig::new(300, 0).is_ok());
        assert!(WindowConfig::new(86_400, 0).is_ok());
    }

    #[test]
    fn lateness_at_the_boundary() {
        let config = WindowConfig::default(); // 60 s windows, 600 s lateness
        let mut clock = PartitionClock::default();
        assert_eq!(clock.admit(at("2025-12-20T18:20:00Z"), &config), Some(at("2025-12-20T18:20:00Z")));
        // Watermark is now 18:10:00. The window [18:09, 18:10) ends exactly at it: closed.
        assert_eq!(clock.admit(at("2025-12-20T18:09:59.999999Z"), &config), None);
        // The window [18:10, 18:11) ends after it: still open.
        assert_eq!(clock.admit(at("2025-12-20T18:10:00Z"), &config), Some(at("2025-12-20T18:10:00Z")));
        // A late event does not move the clock back, nor does an old accepted one.
        assert_eq!(clock.max_ts(), Some(at("2025-12-20T18:20:00Z")));
        // One microsecond more of event time closes [18:10, 18:11)? No: only when max_ts reaches 18:21.
        clock.admit(at("2025-12-20T18:20:59.999999Z"), &config);
        assert_eq!(clock.admit(at("2025-12-20T18:10:30Z"), &config), Some(at("2025-12-20T18:10:00Z")));
        clock.admit(at("2025-12-20T18:21:00Z"), &config);
        assert_eq!(clock.admit(at("2025-12-20T18:10:30Z"), &config), None);
    }

    #[test]
    fn zero_lateness_accepts_the_current_window_only() {
        let config = WindowConfig::new(60, 0).unwrap();
        let mut clock = PartitionClock::default();
        clock.admit(at("2025-12-20T18:20:30Z"), &config);
        assert!(clock.admit(at("2025-12-20T18:20:00Z"), &config).is_some());
        assert!(clock.admit(at("2025-12-20T18:19:59Z"), &config).is_none());
    }
}
