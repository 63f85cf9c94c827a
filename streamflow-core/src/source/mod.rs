//! Where records come from: the [`Source`] trait, the [`RecordBatch`]es it yields, and the timely
//! operator that drives a source and cuts its records into epochs.
//!
//! Every record carries its `(partition, offset)`, and every partition is read by exactly one
//! worker, in offset order. The Postgres sink stores the next offset of every partition with the
//! rows it writes, which is what makes exactly-once delivery possible.

mod file;
mod generator;
pub mod kafka;
mod memory;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

pub use file::FileSource;
pub use generator::{Generator, GeneratorConfig, GeneratorSource};
pub use kafka::{Kafka, KafkaConfig, KafkaSource, StartOffsets};
pub use memory::MemorySource;

use crate::dataflow::Control;

/// A partition of a source (a Kafka partition; a file is partition 0).
pub type PartitionId = u32;
/// A record's position in its partition.
pub type Offset = i64;

/// Whether `worker` of `peers` reads `partition`: partitions are dealt out round-robin.
pub fn owns(partition: PartitionId, worker: usize, peers: usize) -> bool {
    partition as usize % peers == worker
}

/// Consecutive records of one partition, their payloads packed in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// The partition all records belong to.
    pub partition: PartitionId,
    /// The batch's place among its partition's batches, counted from 0 by the source operator,
    /// so that batches decoded on other workers can be put back in order.
    pub seq: u64,
    /// The offset to read after this batch (one past the last record, or further for sources
    /// that skip offsets).
    pub next_offset: Offset,
    /// What the source says of the partition beyond these records.
    pub state: PartitionState,
    /// The end of the partition's log when the batch was read (a Kafka high watermark), if
    /// known: how far behind the reader is.
    pub end_offset: Option<Offset>,
    offsets: Vec<Offset>,
    /// Per record, the length of its key, which `data` holds just before its payload, or
    /// [`NO_KEY`].
    key_lens: Vec<u32>,
    ends: Vec<usize>,
    data: Vec<u8>,
}

const NO_KEY: u32 = u32::MAX;

/// One record of a [`RecordBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its offset in its partition.
    pub offset: Offset,
    /// Its key, if it has one (a Kafka record key).
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub payload: &'a [u8],
}

impl RecordBatch {
    /// An empty batch that says `partition` is read from `next_offset` on.
    pub fn new(partition: PartitionId, next_offset: Offset) -> RecordBatch {
        RecordBatch { partition, next_offset, ..RecordBatch::default() }
    }

    /// Appends a record without a key; the next offset moves past it.
    pub fn push(&mut self, offset: Offset, payload: &[u8]) {
        self.push_keyed(offset, None, payload);
    }

    /// Appends a record with its key; the next offset moves past it.
    pub fn push_keyed(&mut self, offset: Offset, key: Option<&[u8]>, payload: &[u8]) {
        let key_len = match key {
            // A key of 4 GiB cannot come from Kafka; keep what fits.
            Some(key) => {
                let key = &key[..key.len().min(NO_KEY as usize - 1)];
                self.data.extend_from_slice(key);
                key.len() as u32
            }
            None => NO_KEY,
        };
        self.data.extend_from_slice(payload);
        self.offsets.push(offset);
        self.key_lens.push(key_len);
        self.ends.push(self.data.len());
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Drops the records at `end` and after; the next offset is at most `end`.
    pub fn keep_below(&mut self, end: Offset) {
        let keep = self.offsets.partition_point(|&offset| offset < end);
        self.offsets.truncate(keep);
        self.key_lens.truncate(keep);
        self.ends.truncate(keep);
        self.data.truncate(self.ends.last().copied().unwrap_or(0));
        self.next_offset = self.next_offset.min(end);
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The bytes of all records, keys and payloads.
    pub fn payload_bytes(&self) -> usize {
        self.data.len()
    }

    /// The records in offset order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.offsets.iter().zip(&self.key_lens).zip(starts.zip(self.ends.iter())).map(
            |((&offset, &key_len), (start, &end))| {
                let (key, payload) = match key_len {
                    NO_KEY => (None, &self.data[start..end]),
                    len => {
                        let (key, payload) = self.data[start..end].split_at(len as usize);
                        (Some(key), payload)
                    }
                };
                Record { offset, key, payload }
            },
        )
    }
}

/// What a source says of a partition: whether it holds the pipeline watermark back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PartitionState {
    /// Records may come: the partition's watermark counts.
    #[default]
    Active,
    /// Caught up and quiet for longer than the idle timeout: the partition does not hold the
    /// pipeline watermark back until records come again.
    Idle,
    /// A bounded source's partition ended: nothing more will come.
    Finished,
}

impl PartitionState {
    /// Whether the partition's watermark holds the pipeline watermark back.
    pub fn holds_watermark(self) -> bool {
        self == PartitionState::Active
    }
}

/// What a [`Source`] has for the pipeline right now.
#[derive(Debug)]
pub enum Polled {
    /// Records, all of one partition; the last batch of a partition of a bounded source says it
    /// is finished (it may hold no records).
    Records(RecordBatch),
    /// Nothing now; ask again later.
    Pending,
    /// Nothing ever again: a bounded source reached its end.
    Exhausted,
}

/// Why a source cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading a file or stream failed.
    #[error("cannot read {what}")]
    Io {
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A source-specific failure that retrying will not fix.
    #[error("{0}")]
    Fatal(String),
}

/// A reader of the partitions one worker owns.
///
/// A pipeline builds one source per worker (see [`crate::Pipeline::run`]); each reads its own
/// partitions in offset order. Implement it to feed the pipeline from anywhere.
pub trait Source: Send + 'static {
    /// The partitions this reader owns, each with the offset it reads next.
    fn positions(&self) -> Vec<(PartitionId, Offset)>;

    /// Returns records that are available now, at most about `max_records` of them.
    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError>;

    /// Stops reading `partition` for now (`paused`), or reads it again. The pipeline pauses a
    /// partition that runs too far ahead of the others in event time, so that the windows the
    /// others keep open do not pile up. A source that cannot pause one partition may ignore it.
    fn pause(&mut self, _partition: PartitionId, _paused: bool) {}
}

/// A source that owns no partitions: the readers of workers that have nothing to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSource;

impl Source for NoSource {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        Vec::new()
    }
    fn poll(&mut self, _max_records: usize) -> Result<Polled, SourceError> {
        Ok(Polled::Exhausted)
    }
}

/// How the source operator reads: how records are cut into epochs (the unit of consistency
/// downstream: every sink batch holds whole epochs), and how far it may run ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPolicy {
    /// An epoch closes after this many records...
    pub max_records: usize,
    /// ...or when it has been open this long, whichever comes first.
    pub max_duration: Duration,
    /// Records read in one activation of the source operator, before other operators run.
    pub records_per_activation: usize,
    /// How long to wait before polling a source that had nothing.
    pub poll_interval: Duration,
    /// A source does not run further ahead of the sink than this many epochs (backpressure).
    pub max_epochs_in_flight: u64,
    /// A partition whose event time runs further ahead of the slowest partition than this is
    /// paused until the others catch up (watermark alignment), so that the state held for open
    /// windows stays bounded when partitions are read at different speeds, as in a backfill.
    pub max_drift: Duration,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy {
            max_records: 262_144,
            max_duration: Duration::from_millis(100),
            records_per_activation: 8_192,
            poll_interval: Duration::from_millis(5),
            max_epochs_in_flight: 4,
            max_drift: Duration::from_secs(300),
        }
    }
}

/// The source operator: reads `reader` and emits its batches, first an empty batch per partition
/// to announce where each starts, and at the end of a bounded source an empty batch per
/// partition that says it is finished. It numbers each partition's batches, and stops at the end
/// or when `control` asks the pipeline to stop.
///
/// An epoch closes when it holds `policy.max_records` records or has been open for
/// `policy.max_duration`, even empty, so that an idle worker never holds back the epochs of
/// busy ones; an idle worker also jumps to the newest epoch any worker has opened. The operator
/// does not run more than `policy.max_epochs_in_flight` epochs ahead of `sink_progress`, and
/// pauses partitions that run more than `policy.max_drift` of event time ahead of the slowest.
pub fn read<'scope>(
    scope: Scope<'scope, u64>,
    mut reader: Box<dyn Source>,
    policy: ReadPolicy,
    control: Control,
    sink_progress: ProbeHandle<u64>,
) -> StreamVec<'scope, u64, RecordBatch> {
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut capability = Some(capability);
        let mut announced: HashSet<PartitionId> = HashSet::new();
        let mut seqs: HashMap<PartitionId, u64> = HashMap::new();
        let mut number = move |batch: &mut RecordBatch| {
            let seq = seqs.entry(batch.partition).or_default();
            batch.seq = *seq;
            *seq += 1;
        };
        let mut finished: HashSet<PartitionId> = HashSet::new();
        let mut epoch_records = 0usize;
        let mut epoch_opened = Instant::now();
        let max_drift = i64::try_from(policy.max_drift.as_micros()).unwrap_or(i64::MAX);

        move |output| {
            let Some(cap) = capability.as_mut() else { return };
            if control.is_stopping() {
                capability = None;
                return;
            }
            let positions = reader.positions();
            let partitions: Vec<PartitionId> = positions.iter().map(|&(p, _)| p).collect();
            // Each partition is announced once, where it starts, so that it holds the watermark
            // back from the start (partitions added to a Kafka topic come later).
            let mut session = output.session(&*cap);
            for (partition, offset) in positions {
                if announced.insert(partition) {
                    let mut batch = RecordBatch::new(partition, offset);
                    number(&mut batch);
                    session.give(batch);
                }
            }
            drop(session);
            let epoch = *cap.time();
            if sink_progress.less_than(&epoch.saturating_sub(policy.max_epochs_in_flight)) {
                activator.activate_after(policy.poll_interval);
                return;
            }
            let (event_times, slowest) = control.metrics().event_times(&partitions);
            for (partition, event_time) in partitions.iter().zip(event_times) {
                let ahead =
                    event_time.zip(slowest).is_some_and(|(own, slowest)| own.micros() - slowest.micros() > max_drift);
                reader.pause(*partition, ahead);
            }

            let mut budget = policy.records_per_activation;
            let mut idle = false;
            while budget > 0 {
                match reader.poll(budget) {
                    Ok(Polled::Records(mut batch)) => {
                        number(&mut batch);
                        if batch.state == PartitionState::Finished {
                            finished.insert(batch.partition);
                        }
                        budget = budget.saturating_sub(batch.len().max(1));
                        epoch_records += batch.len();
                        output.session(&*cap).give(batch);
                    }
                    Ok(Polled::Pending) => {
                        idle = true;
                        break;
                    }
                    Ok(Polled::Exhausted) => {
                        // Partitions the source did not say were finished are, now.
                        let unfinished = reader.positions().into_iter().filter(|(p, _)| !finished.contains(p));
                        output.session(&*cap).give_iterator(unfinished.map(|(partition, offset)| {
                            let mut batch =
                                RecordBatch { state: PartitionState::Finished, ..RecordBatch::new(partition, offset) };
                            number(&mut batch);
                            batch
                        }));
                        capability = None;
                        return;
                    }
                    Err(error) => {
                        control.fail(error.into());
                        capability = None;
                        return;
                    }
                }
            }

            let full = epoch_records >= policy.max_records;
            let old = epoch_opened.elapsed() >= policy.max_duration;
            let newest = control.newest_epoch();
            if full || old || (idle && newest > epoch) {
                let next = if idle { newest.max(epoch + 1) } else { epoch + 1 };
                cap.downgrade(&next);
                control.note_epoch(next);
                epoch_records = 0;
                epoch_opened = Instant::now();
            }
            if idle {
                activator.activate_after(policy.poll_interval);
            } else {
                activator.activate();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_iterates_records_in_order() {
        let mut batch = RecordBatch::new(3, 10);
        batch.push(10, b"a");
        batch.push_keyed(11, Some(b"k"), b"");
        batch.push_keyed(12, Some(b""), b"bb");
        batch.push(14, b"ccc");
        let records: Vec<Record<'_>> = batch.iter().collect();
        let record = |offset, key, payload| Record { offset, key, payload };
        let expected = vec![
            record(10, None, b"a"),
            record(11, Some(b"k"), b""),
            record(12, Some(b""), b"bb"),
            record(14, None, b"ccc"),
        ];
        assert_eq!(records, expected);
        assert_eq!(batch.next_offset, 15);
        assert_eq!(batch.payload_bytes(), 7);
        batch.keep_below(12);
        assert_eq!(batch.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!((batch.next_offset, batch.payload_bytes()), (12, 2));
    }

    #[test]
    fn partitions_are_dealt_round_robin() {
        let owners: Vec<_> = (0..5).map(|p| (0..2).find(|&w| owns(p, w, 2)).unwrap()).collect();
        assert_eq!(owners, vec![0, 1, 0, 1, 0]);
    }
}
