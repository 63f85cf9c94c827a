//! Records held in memory, for tests and for programs that bring their own events.

use std::collections::{BTreeMap, VecDeque};

use super::{owns, Offset, PartitionId, Polled, RecordBatch, Source, SourceError};

/// Serves the records of the partitions a worker owns, each partition's offsets counted from 0.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    partitions: BTreeMap<PartitionId, (Offset, VecDeque<Vec<u8>>)>,
}

impl MemorySource {
    /// The records of `records` whose partition `worker` of `peers` owns, in their given order.
    pub fn new(records: impl IntoIterator<Item = (PartitionId, Vec<u8>)>, worker: usize, peers: usize) -> MemorySource {
        let mut partitions: BTreeMap<PartitionId, (Offset, VecDeque<Vec<u8>>)> = BTreeMap::new();
        for (partition, payload) in records {
            if owns(partition, worker, peers) {
                partitions.entry(partition).or_default().1.push_back(payload);
            }
        }
        MemorySource { partitions }
    }
}

impl Source for MemorySource {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().map(|(&partition, (offset, _))| (partition, *offset)).collect()
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        let Some((&partition, (next, queue))) = self.partitions.iter_mut().find(|(_, (_, q))| !q.is_empty()) else {
            return Ok(Polled::Exhausted);
        };
        let mut batch = RecordBatch::new(partition, *next);
        while batch.len() < max_records {
            let Some(payload) = queue.pop_front() else { break };
            batch.push(*next, &payload);
            *next += 1;
        }
        Ok(Polled::Records(batch))
    }
}
