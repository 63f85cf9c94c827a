//! Where records come from: the [`Source`] trait and its implementations — [`MemorySource`],
//! [`FileSource`] (JSON lines), and with the `kafka` feature [`KafkaSource`].
//!
//! A pipeline builds one source per worker; each reads the partitions that worker owns, in
//! offset order, every record with its `(partition, offset)`. The sink stores the next offset of
//! every partition with the rows, which is what makes exactly-once delivery possible: the source
//! operator tells a source where to resume ([`Source::resume`]) before anything is read.

mod epochs;
mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
mod memory;

use std::collections::BTreeMap;

pub use epochs::{EpochCutter, ReadPolicy};
pub use file::FileSource;
#[cfg(feature = "kafka")]
pub use kafka::{Kafka, KafkaConfig, KafkaSource, StartOffsets};
pub use memory::MemorySource;

use crate::batch::RecordBatch;
use crate::error::SourceError;
use crate::position::{owns, Offset, PartitionId};

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

/// A reader of the partitions one worker owns.
///
/// A pipeline builds one source per worker (see [`crate::Pipeline::run`]); each reads its own
/// partitions in offset order. Implement it to feed the pipeline from anywhere.
pub trait Source: Send + 'static {
    /// Called once by the source operator, before anything is read, with where each partition
    /// the checkpoint knows resumes — the pipeline's partitions, not only this reader's (empty
    /// on a first run). A partition not named starts where the source starts a partition new to
    /// the pipeline. A source that cannot seek reads and drops what lies before.
    fn resume(&mut self, _from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        Ok(())
    }

    /// The partitions this reader owns, each with the offset it reads next.
    fn positions(&self) -> Vec<(PartitionId, Offset)>;

    /// Returns records that are available now, at most about `max_records` of them.
    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError>;

    /// Stops reading `partition` for now (`paused`), or reads it again. The pipeline pauses a
    /// partition that runs too far ahead of the others in event time, so that the windows the
    /// others keep open do not pile up. A source that cannot pause one partition may ignore it.
    fn pause(&mut self, _partition: PartitionId, _paused: bool) {}
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        (**self).resume(from)
    }
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        (**self).positions()
    }
    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        (**self).poll(max_records)
    }
    fn pause(&mut self, partition: PartitionId, paused: bool) {
        (**self).pause(partition, paused)
    }
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

/// What a source factory knows when it builds the reader of one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceContext {
    /// This worker's index.
    pub worker: usize,
    /// The number of workers.
    pub peers: usize,
}

impl SourceContext {
    /// Whether this worker reads `partition`.
    pub fn owns(&self, partition: PartitionId) -> bool {
        owns(partition, self.worker, self.peers)
    }
}
