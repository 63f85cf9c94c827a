//! Kafka's default partitioner: the partition of a keyed record is murmur2 of its key, so that
//! every producer — this one, the Java client, librdkafka's `murmur2_random` — agrees.

use crate::source::PartitionId;

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

#[cfg(test)]
mod tests {
    use super::*;

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
