//! Where a record is — its partition and offset — and how far a partition has been read: the
//! one [`Progress::merge`] that the window operator, the aggregate, the sink and the figures all
//! use. Also where a keyed record goes: Kafka's default partitioner, murmur2 of the key, so that
//! every producer — this one, the Java client, librdkafka's `murmur2_random` — agrees.

use serde::{Deserialize, Serialize};

use crate::time::EventTime;

/// A partition of a source (a Kafka partition; a file is partition 0).
pub type PartitionId = u32;
/// A record's position in its partition.
pub type Offset = i64;

/// Whether `worker` of `peers` reads `partition`: partitions are dealt out round-robin.
pub fn owns(partition: PartitionId, worker: usize, peers: usize) -> bool {
    partition as usize % peers == worker
}

/// The partition of `key` among `partitions` (at least 1).
pub fn partition_of(key: &[u8], partitions: u32) -> PartitionId {
    (murmur2(key) as u32 & 0x7fff_ffff) % partitions.max(1)
}

/// MurmurHash2 as the Java client computes it (seed `0x9747b28c`).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
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

/// How far a partition has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Progress {
    /// The partition.
    pub partition: PartitionId,
    /// The next offset to read.
    pub next_offset: Offset,
    /// The largest `ts` read so far, if any.
    pub max_ts: Option<EventTime>,
    /// Whether the partition holds the pipeline watermark back.
    pub state: PartitionState,
    /// The end of the partition's log when it was read, when the source knows it.
    pub end_offset: Option<Offset>,
}

impl Progress {
    /// A partition read from `next_offset` on, nothing of it read yet.
    pub fn start(partition: PartitionId, next_offset: Offset) -> Progress {
        Progress { partition, next_offset, max_ts: None, state: PartitionState::Active, end_offset: None }
    }

    /// Folds a later report of the same partition in: offsets and event time only grow (a
    /// report may arrive late from another worker), the state and the end of log are the
    /// newest said.
    pub fn merge(&mut self, later: &Progress) {
        debug_assert_eq!(self.partition, later.partition);
        self.next_offset = self.next_offset.max(later.next_offset);
        self.max_ts = self.max_ts.max(later.max_ts);
        self.state = later.state;
        if later.end_offset.is_some() {
            self.end_offset = later.end_offset;
        }
    }

    /// Whether the partition is read to the end of its log, as far as is known.
    pub fn caught_up(&self) -> bool {
        self.end_offset.is_some_and(|end| end <= self.next_offset)
    }

    /// Records in the log beyond the next offset, when the end is known.
    pub fn lag(&self) -> Option<i64> {
        self.end_offset.map(|end| (end - self.next_offset).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_round_robin() {
        let owners: Vec<_> = (0..5).map(|p| (0..2).find(|&w| owns(p, w, 2)).unwrap()).collect();
        assert_eq!(owners, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn progress_only_grows_and_keeps_the_newest_state() {
        let mut known = Progress::start(3, 10);
        let later = Progress {
            next_offset: 20,
            max_ts: Some(EventTime(5)),
            state: PartitionState::Idle,
            end_offset: Some(20),
            ..Progress::start(3, 0)
        };
        known.merge(&later);
        // A report that arrives after a newer one moves nothing back.
        known.merge(&Progress { state: PartitionState::Active, ..Progress::start(3, 15) });
        assert_eq!((known.next_offset, known.max_ts, known.state), (20, Some(EventTime(5)), PartitionState::Active));
        assert_eq!((known.end_offset, known.caught_up(), known.lag()), (Some(20), true, Some(0)));
    }

    #[test]
    fn murmur2_agrees_with_the_java_client() {
        // The cases of Kafka's own UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keys_spread_over_every_partition() {
        let hit: std::collections::BTreeSet<PartitionId> =
            (0..100).map(|i| partition_of(format!("stream_{i}").as_bytes(), 4)).collect();
        assert_eq!(hit.len(), 4);
        assert_eq!(partition_of(b"anything", 1), 0);
    }
}
