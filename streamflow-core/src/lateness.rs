//! The lateness rule of spec §2, per partition, in offset order:
//!
//! ```text
//!   partition p:  ... e1 e2 e3 ...       (read in offset order)
//!   max_ts(p)   = the largest ts read so far from p
//!   watermark(p)= max_ts(p) - lateness
//!   e is late  <=> window_end(e.ts) <= watermark(p) when e is read
//! ```
//! The decision looks at the event's own partition only, so a replay of the same log decides the
//! same. [`Readers`] puts each partition's decoded batches back in order (they are decoded on
//! any worker), applies the rule, and says what each batch gives: events with their window,
//! dead letters, and the partition's progress. After a restart it starts each partition's clock
//! where the checkpoint says, and drops what a previous run already accounted for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::batch::DecodedBatch;
use crate::checkpoint::Checkpoint;
use crate::dead_letter::{DeadLetter, Reason, Refusal, StoredText};
use crate::position::{Offset, PartitionId, Progress};
use crate::schema::Schema;
use crate::time::{EventTime, WindowConfig};

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

/// An accepted event with its window and its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windowed<E> {
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
    pub event: E,
}

/// What one batch of a partition gives beside its events, read in its turn.
#[derive(Debug)]
pub struct Read {
    /// The refused records.
    pub dead_letters: Vec<DeadLetter>,
    /// Where the partition stands after the batch.
    pub progress: Progress,
    /// Records read, accepted or not (those a source gave twice are skipped and not counted).
    pub records: u64,
    /// The newest Kafka timestamp of the batch's records, when it has one.
    pub newest_timestamp_ms: Option<i64>,
}

/// One partition as it is read.
struct PartitionReader<T, E> {
    clock: PartitionClock,
    /// The `seq` of the batch to read next.
    next_seq: u64,
    /// Batches that arrived before their turn, each with what came with it.
    early: BTreeMap<u64, (T, DecodedBatch<E>)>,
    /// Records before this offset were accounted for by a previous run.
    committed: Offset,
    /// The offset after the last record read: a source must not give one twice.
    next_offset: Offset,
}

/// Every partition's reader. `T` is what comes with each batch (the operator's capabilities),
/// kept with a batch that waits for its turn and handed back when it is read.
pub struct Readers<S: Schema, T> {
    schema: Arc<S>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    partitions: HashMap<PartitionId, PartitionReader<T, S::Event>>,
}

impl<S: Schema, T> Readers<S, T> {
    /// Readers under `config`, resuming from `resume`.
    pub fn new(schema: Arc<S>, config: WindowConfig, resume: Arc<Checkpoint>) -> Readers<S, T> {
        Readers { schema, config, resume, partitions: HashMap::new() }
    }

    /// Takes a decoded batch; calls `read` for it and every batch after it that was waiting,
    /// when it is its partition's next one, with the [`Reading`] that reads it.
    pub fn offer(&mut self, decoded: DecodedBatch<S::Event>, token: T, mut read: impl FnMut(&T, Reading<'_, S, T>)) {
        let partition = decoded.batch.partition;
        let resume = &self.resume;
        let reader = self.partitions.entry(partition).or_insert_with(|| PartitionReader {
            clock: PartitionClock::at(resume.positions.get(&partition).and_then(|p| p.replay_max_ts)),
            next_seq: 0,
            early: BTreeMap::new(),
            committed: resume.committed(partition),
            next_offset: Offset::MIN,
        });
        if decoded.batch.seq != reader.next_seq {
            reader.early.insert(decoded.batch.seq, (token, decoded));
            return;
        }
        let (schema, config) = (&*self.schema, &self.config);
        read(&token, Reading { reader: &mut *reader, decoded, schema, config, resume });
        while let Some((token, decoded)) = reader.early.remove(&reader.next_seq) {
            read(&token, Reading { reader: &mut *reader, decoded, schema, config, resume });
        }
    }
}

/// A batch about to be read in its turn: [`Reading::read`] hands each accepted event to the
/// caller as it goes (into the operator's output, with no buffer between).
pub struct Reading<'r, S: Schema, T> {
    reader: &'r mut PartitionReader<T, S::Event>,
    decoded: DecodedBatch<S::Event>,
    schema: &'r S,
    config: &'r WindowConfig,
    resume: &'r Checkpoint,
}

impl<S: Schema, T> Reading<'_, S, T> {
    /// Reads the batch: each accepted event, with its window, to `accept`; the rest returned.
    pub fn read(self, accept: impl FnMut(Windowed<S::Event>)) -> Read {
        self.reader.read(self.decoded, self.schema, self.config, self.resume, accept)
    }

    /// Reads the batch into a vector of its events, and the rest.
    pub fn collect(self) -> (Vec<Windowed<S::Event>>, Read) {
        let mut events = Vec::new();
        let read = self.read(|event| events.push(event));
        (events, read)
    }
}

impl<T, E> PartitionReader<T, E> {
    fn read<S: Schema<Event = E>>(
        &mut self,
        decoded: DecodedBatch<E>,
        schema: &S,
        config: &WindowConfig,
        resume: &Checkpoint,
        mut accept: impl FnMut(Windowed<E>),
    ) -> Read {
        let DecodedBatch { batch, outcomes } = decoded;
        let mut dead_letters = Vec::new();
        let mut repeated = 0;
        for (record, outcome) in batch.iter().zip(outcomes) {
            let offset = record.offset;
            // Offsets only grow within a partition; a record given again is counted once.
            if offset < self.next_offset {
                repeated += 1;
                continue;
            }
            self.next_offset = offset + 1;
            let refusal = match outcome {
                Ok(event) => {
                    let ts = schema.time(&event);
                    let max_ts_before = self.clock.max_ts();
                    match self.clock.admit(ts, config) {
                        Some(window) => {
                            let already_final = offset < self.committed
                                && resume.closed_through.is_some_and(|closed| config.end_of(window) <= closed);
                            if !already_final {
                                accept(Windowed { window, partition: batch.partition, offset, max_ts_before, event });
                            }
                            continue;
                        }
                        None => Refusal {
                            reason: Reason::Late,
                            detail: Some(StoredText::new(&format!("ts {ts}"))),
                            event_id: schema.event_id(record.payload),
                        },
                    }
                }
                Err(refusal) => refusal,
            };
            // A previous run stored the dead letters before its committed offset.
            if offset >= self.committed {
                dead_letters.push(DeadLetter {
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
        self.next_seq += 1;
        Read {
            dead_letters,
            progress: Progress {
                partition: batch.partition,
                next_offset: batch.next_offset,
                max_ts: self.clock.max_ts(),
                state: batch.state,
                end_offset: batch.end_offset,
            },
            records: (batch.len() - repeated) as u64,
            newest_timestamp_ms: batch.newest_timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RecordBatch;
    use crate::streams::LiveStreams;

    fn at(text: &str) -> EventTime {
        EventTime::parse_rfc3339(text).unwrap()
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

    fn batch(seq: u64, from: Offset, lines: &[&str]) -> DecodedBatch<crate::streams::Event> {
        let mut batch = RecordBatch::new(0, from);
        batch.seq = seq;
        for (i, line) in lines.iter().enumerate() {
            batch.push(from + i as Offset, line.as_bytes());
        }
        DecodedBatch::new(&LiveStreams, batch)
    }

    fn chat(ts: &str) -> String {
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s"}}"#)
    }

    #[test]
    fn batches_are_read_in_their_partitions_order_and_late_events_refused() {
        let mut readers: Readers<LiveStreams, u32> =
            Readers::new(Arc::new(LiveStreams), WindowConfig::default(), Arc::default());
        let mut read = Vec::new();
        let late = chat("2025-12-20T18:00:00Z");
        let (first, second) = (chat("2025-12-20T18:20:00Z"), chat("2025-12-20T18:20:30Z"));
        readers.offer(batch(1, 1, &[&late, "nonsense"]), 7, |token, r| read.push((*token, r.collect())));
        assert!(read.is_empty(), "the second batch waits for the first");
        readers.offer(batch(0, 0, &[&first]), 6, |token, r| read.push((*token, r.collect())));
        readers.offer(batch(2, 3, &[&second]), 8, |token, r| read.push((*token, r.collect())));
        let tokens: Vec<u32> = read.iter().map(|(t, _)| *t).collect();
        assert_eq!(tokens, vec![6, 7, 8]);
        let reasons: Vec<Reason> = read[1].1 .1.dead_letters.iter().map(|l| l.reason).collect();
        assert_eq!(reasons, vec![Reason::Late, Reason::NotJson]);
        assert_eq!((read[2].1 .0.len(), read[2].1 .1.progress.next_offset), (1, 4));
    }

    #[test]
    fn a_resumed_partition_drops_what_was_accounted_for() {
        let mut resume = Checkpoint { closed_through: Some(at("2025-12-20T18:01:00Z")), ..Checkpoint::default() };
        resume.positions.insert(
            0,
            crate::checkpoint::PartitionPosition {
                replay_from: 0,
                ..crate::checkpoint::PartitionPosition::start(0, 3)
            },
        );
        let mut readers: Readers<LiveStreams, ()> =
            Readers::new(Arc::new(LiveStreams), WindowConfig::default(), Arc::new(resume));
        let mut read = Vec::new();
        let lines = [chat("2025-12-20T18:00:10Z"), "bad".to_owned(), chat("2025-12-20T18:01:10Z"), "worse".to_owned()];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        readers.offer(batch(0, 0, &lines), (), |_, r| read.push(r.collect()));
        // The closed window's event and the stored dead letter are not sent again.
        let (events, rest) = &read[0];
        assert_eq!(events.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![2]);
        assert_eq!(rest.dead_letters.iter().map(|l| l.offset).collect::<Vec<_>>(), vec![3]);
        assert_eq!(rest.records, 4);
    }
}
