//! Records held in memory, for tests and for programs that bring their own events.

use std::collections::{BTreeMap, VecDeque};

use super::{owns, Offset, PartitionId, Polled, RecordBatch, Source, SourceError};

/// Serves the records of the partitions a worker owns, each partition's offsets counted from 0.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    partitions: BTreeMap<PartitionId, (Offset, VecDeque<Vec<u8>>)>,
    /// The partition whose turn it is.
    turn: PartitionId,
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
        MemorySource { partitions, turn: 0 }
    }

    /// Starts `partition` at `offset`, as a resumed pipeline does.
    pub fn skip_to(mut self, partition: PartitionId, offset: Offset) -> MemorySource {
        if let Some((next, queue)) = self.partitions.get_mut(&partition) {
            let skip = usize::try_from(offset - *next).unwrap_or(0).min(queue.len());
            queue.drain(..skip);
            *next += skip as Offset;
        }
        self
    }
}

impl Source for MemorySource {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().map(|(&partition, (offset, _))| (partition, *offset)).collect()
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        // Take turns, so that the partitions' event times advance together, as in a live log.
        let waiting = |(partition, (_, queue)): (&PartitionId, &(Offset, VecDeque<Vec<u8>>))| {
            (!queue.is_empty()).then_some(*partition)
        };
        let turn = self.turn;
        let Some(partition) = self.partitions.range(turn..).find_map(waiting).or_else(|| self.partitions.iter().find_map(waiting))
        else {
            return Ok(Polled::Exhausted);
        };
        self.turn = partition + 1;
        let (next, queue) = self.partitions.get_mut(&partition).expect("found above");
        let mut batch = RecordBatch::new(partition, *next);
        while batch.len() < max_records {
            let Some(payload) = queue.pop_front() else { break };
            batch.push(*next, &payload);
            *next += 1;
        }
        Ok(Polled::Records(batch))
    }
}
