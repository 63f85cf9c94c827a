//! Where records come from: the [`Source`] trait, the [`RecordBatch`]es it yields, and the timely
//! operator that drives a source and cuts its records into epochs.
//!
//! Every record carries its `(partition, offset)`, and every partition is read by exactly one
//! worker, in offset order. The Postgres sink stores the next offset of every partition with the
//! rows it writes, which is what makes exactly-once delivery possible.

mod file;
mod generator;
mod memory;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

pub use file::FileSource;
pub use generator::{Generator, GeneratorConfig, GeneratorSource};
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
    offsets: Vec<Offset>,
    ends: Vec<usize>,
    data: Vec<u8>,
}

impl RecordBatch {
    /// An empty batch that says `partition` is read from `next_offset` on.
    pub fn new(partition: PartitionId, next_offset: Offset) -> RecordBatch {
        RecordBatch { partition, next_offset, ..RecordBatch::default() }
    }

    /// Appends a record; the next offset moves past it.
    pub fn push(&mut self, offset: Offset, payload: &[u8]) {
        self.data.extend_from_slice(payload);
        self.offsets.push(offset);
        self.ends.push(self.data.len());
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The payload bytes of all records.
    pub fn payload_bytes(&self) -> usize {
        self.data.len()
    }

    /// The records in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (Offset, &[u8])> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.offsets
            .iter()
            .zip(starts.zip(self.ends.iter()))
            .map(|(&offset, (start, &end))| (offset, &self.data[start..end]))
    }
}

/// What a [`Source`] has for the pipeline right now.
#[derive(Debug)]
pub enum Polled {
    /// Records, all of one partition.
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

/// How a source's records are cut into epochs, the unit of consistency downstream: every sink
/// batch holds whole epochs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPolicy {
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
}

impl Default for EpochPolicy {
    fn default() -> Self {
        EpochPolicy {
            max_records: 262_144,
            max_duration: Duration::from_millis(100),
            records_per_activation: 8_192,
            poll_interval: Duration::from_millis(5),
            max_epochs_in_flight: 4,
        }
    }
}

/// The source operator: reads `reader` and emits its batches, at epoch 0 first an empty batch per
/// partition to announce where each starts. It numbers each partition's batches, stops at the end
/// of a bounded source or when `control` asks the pipeline to stop, and does not run more than
/// `policy.max_epochs_in_flight` epochs ahead of `sink_progress`.
pub fn read<'scope>(
    scope: Scope<'scope, u64>,
    mut reader: Box<dyn Source>,
    policy: EpochPolicy,
    control: Control,
    sink_progress: ProbeHandle<u64>,
) -> StreamVec<'scope, u64, RecordBatch> {
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut capability = Some(capability);
        let mut announced = false;
        let mut seqs: HashMap<PartitionId, u64> = HashMap::new();
        let mut number = move |batch: &mut RecordBatch| {
            let seq = seqs.entry(batch.partition).or_default();
            batch.seq = *seq;
            *seq += 1;
        };
        let mut epoch_records = 0usize;
        let mut epoch_opened = Instant::now();

        move |output| {
            let Some(cap) = capability.as_mut() else { return };
            if control.is_stopping() {
                capability = None;
                return;
            }
            if !announced {
                announced = true;
                let mut session = output.session(&*cap);
                for (partition, offset) in reader.positions() {
                    let mut batch = RecordBatch::new(partition, offset);
                    number(&mut batch);
                    session.give(batch);
                }
            }
            let epoch = *cap.time();
            if sink_progress.less_than(&epoch.saturating_sub(policy.max_epochs_in_flight)) {
                activator.activate_after(policy.poll_interval);
                return;
            }

            let mut budget = policy.records_per_activation;
            let mut pending = false;
            while budget > 0 {
                match reader.poll(budget) {
                    Ok(Polled::Records(mut batch)) => {
                        number(&mut batch);
                        budget = budget.saturating_sub(batch.len().max(1));
                        epoch_records += batch.len();
                        output.session(&*cap).give(batch);
                    }
                    Ok(Polled::Pending) => {
                        pending = true;
                        break;
                    }
                    Ok(Polled::Exhausted) => {
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
            let old = epoch_records > 0 && epoch_opened.elapsed() >= policy.max_duration;
            if full || old {
                cap.downgrade(&(epoch + 1));
                epoch_records = 0;
                epoch_opened = Instant::now();
            }
            if pending {
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
        batch.push(11, b"");
        batch.push(14, b"ccc");
        let records: Vec<_> = batch.iter().collect();
        assert_eq!(records, vec![(10, &b"a"[..]), (11, &b""[..]), (14, &b"ccc"[..])]);
        assert_eq!(batch.next_offset, 15);
        assert_eq!(batch.payload_bytes(), 4);
    }

    #[test]
    fn partitions_are_dealt_round_robin() {
        let owners: Vec<_> = (0..5).map(|p| (0..2).find(|&w| owns(p, w, 2)).unwrap()).collect();
        assert_eq!(owners, vec![0, 1, 0, 1, 0]);
    }
}
