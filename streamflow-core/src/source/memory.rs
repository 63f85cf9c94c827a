//! Records held in memory, for tests and for programs that bring their own events.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{Polled, Source};
use crate::batch::RecordBatch;
use crate::error::SourceError;
use crate::position::{owns, Offset, PartitionId, PartitionState};

/// Serves the records of the partitions a worker owns, each partition's offsets counted from 0.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    partitions: BTreeMap<PartitionId, MemoryPartition>,
    /// The partition whose turn it is.
    turn: PartitionId,
    paused: BTreeSet<PartitionId>,
}

#[derive(Clone, Debug, Default)]
struct MemoryPartition {
    next: Offset,
    queue: VecDeque<Vec<u8>>,
    /// Whether the batch saying the partition ended was returned.
    finished: bool,
}

impl MemorySource {
    /// The records of `records` whose partition `worker` of `peers` owns, in their given order.
    pub fn new(records: impl IntoIterator<Item = (PartitionId, Vec<u8>)>, worker: usize, peers: usize) -> MemorySource {
        let mut partitions: BTreeMap<PartitionId, MemoryPartition> = BTreeMap::new();
        for (partition, payload) in records {
            if owns(partition, worker, peers) {
                partitions.entry(partition).or_default().queue.push_back(payload);
            }
        }
        MemorySource { partitions, turn: 0, paused: BTreeSet::new() }
    }
}

impl Source for MemorySource {
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        for (partition, part) in &mut self.partitions {
            let offset = from.get(partition).copied().unwrap_or(0);
            let skip = usize::try_from(offset - part.next).unwrap_or(0).min(part.queue.len());
            part.queue.drain(..skip);
            part.next += skip as Offset;
        }
        Ok(())
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().map(|(&partition, part)| (partition, part.next)).collect()
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        // Take turns, so that the partitions' event times advance together, as in a live log.
        let paused = &self.paused;
        let ready = |(partition, part): (&PartitionId, &MemoryPartition)| {
            (!part.finished && !paused.contains(partition)).then_some(*partition)
        };
        let turn = self.turn;
        let Some(partition) =
            self.partitions.range(turn..).find_map(ready).or_else(|| self.partitions.iter().find_map(ready))
        else {
            let waiting = self.partitions.values().any(|part| !part.finished);
            return Ok(if waiting { Polled::Pending } else { Polled::Exhausted });
        };
        self.turn = partition + 1;
        let part = self.partitions.get_mut(&partition).expect("found above");
        let mut batch = RecordBatch::new(partition, part.next);
        while batch.len() < max_records {
            let Some(payload) = part.queue.pop_front() else { break };
            batch.push(part.next, &payload);
            part.next += 1;
        }
        part.finished = part.queue.is_empty();
        if part.finished {
            batch.state = PartitionState::Finished;
        }
        Ok(Polled::Records(batch))
    }

    fn pause(&mut self, partition: PartitionId, paused: bool) {
        if paused {
            self.paused.insert(partition);
        } else {
            self.paused.remove(&partition);
        }
    }
}
