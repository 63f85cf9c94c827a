//! Records as they travel: a [`RecordBatch`] of one partition, keys and payloads packed in one
//! buffer, each record with its offset; and a [`DecodedBatch`], with what decoding made of each.

use serde::{Deserialize, Serialize};

use crate::dead_letter::{Reason, Refusal};
use crate::position::{Offset, PartitionId, PartitionState};
use crate::schema::Schema;

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
    /// The newest Kafka timestamp of its records (milliseconds since 1970), when the source
    /// has one: how fresh the results are once they are committed.
    pub newest_timestamp_ms: Option<i64>,
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

    /// An empty batch with room for `records` records of `bytes` bytes in all, so that filling
    /// it moves nothing.
    pub fn with_capacity(partition: PartitionId, next_offset: Offset, records: usize, bytes: usize) -> RecordBatch {
        RecordBatch {
            partition,
            next_offset,
            offsets: Vec::with_capacity(records),
            key_lens: Vec::with_capacity(records),
            ends: Vec::with_capacity(records),
            data: Vec::with_capacity(bytes),
            ..RecordBatch::default()
        }
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

/// A batch of records with the outcome of decoding each, in the batch's order. The batch is kept
/// for the payloads of dead letters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedBatch<E> {
    /// The records.
    pub batch: RecordBatch,
    /// One outcome per record.
    pub outcomes: Vec<Result<E, Refusal>>,
}

impl<E> DecodedBatch<E> {
    /// Decodes every record of `batch` by `schema`. An event whose key holds U+0000 is refused
    /// as `bad_<key>` whatever the schema: no PostgreSQL text can store it.
    pub fn new<S: Schema<Event = E>>(schema: &S, batch: RecordBatch) -> DecodedBatch<E> {
        let outcomes = batch
            .iter()
            .map(|record| {
                let event = schema.decode(record.key, record.payload)?;
                if schema.key(&event).contains('\0') {
                    let reason = Reason::named(&format!("bad_{}", schema.columns().key()));
                    return Err(Refusal::new(reason).with_detail("the key holds U+0000"));
                }
                Ok(event)
            })
            .collect();
        DecodedBatch { batch, outcomes }
    }
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
}
