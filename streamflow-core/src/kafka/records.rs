//! Kafka's record batch format (magic 2), read and written here: reading straight into a
//! [`RecordBatch`], decompressing into a buffer the caller keeps, skipping what a read-committed
//! consumer must not see.
//!
//! ```text
//!  batch: base offset i64 | length i32 | leader epoch i32 | magic i8 = 2 | crc u32 (CRC-32C of the rest)
//!         attributes i16 (compression 0..=2, transactional 4, control 5) | last offset delta i32
//!         first and max timestamp i64 i64 | producer id i64 | producer epoch i16 | base sequence i32
//!         record count i32 | records (compressed as a whole)
//!  record: length, attributes, timestamp delta, offset delta, key, value, headers (varints)
//! ```
//! A control batch (a transaction's commit or abort marker) holds no data but takes an offset;
//! a transactional batch whose transaction the fetch answer lists as aborted is skipped whole.
//! Either way the offsets are passed, so a reader never stops at a marker.

use std::io::{Read as _, Write as _};

use crate::batch::RecordBatch;
use crate::position::Offset;

/// The bytes of a batch's header, up to its records.
const HEADER_LEN: usize = 61;
/// Where the part the CRC covers starts.
const CRC_FROM: usize = 21;

const TRANSACTIONAL: i16 = 1 << 4;
const CONTROL: i16 = 1 << 5;

/// How the records of a batch are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy (read only: some Kafka-compatible brokers cannot serve it back).
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    fn from_attributes(attributes: i16) -> Result<Compression, RecordsError> {
        Ok(match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(RecordsError(format!("unknown compression {other}"))),
        })
    }

    fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// Why record batches could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record batch: {0}")]
pub struct RecordsError(pub String);

fn corrupt(what: &str) -> RecordsError {
    RecordsError(what.to_owned())
}

/// A transaction the broker says was aborted: its producer, and its first offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aborted {
    /// The producer whose transaction it was.
    pub producer_id: i64,
    /// The transaction's first offset.
    pub first_offset: Offset,
}

/// What [`read_batches`] found and passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// One past the last offset of the last whole batch read (of any kind), if any.
    pub next_offset: Option<Offset>,
    /// The base offset of the first batch that reaches `from`, if any.
    pub first_base: Option<Offset>,
    /// Control batches passed (transaction markers).
    pub markers: u64,
    /// Records of aborted transactions passed.
    pub aborted: u64,
}

/// Reads the record batches of a fetch answer into `out`: every data record at offset `from` or
/// later, in offset order, each once. Control batches, and batches of the `aborted`
/// transactions, are passed over. A batch cut short at the end (a fetch answer may end inside
/// one) is left for the next fetch. `scratch` holds decompressed records; keep it between calls.
pub fn read_batches(
    data: &[u8],
    from: Offset,
    aborted: &[Aborted],
    out: &mut RecordBatch,
    scratch: &mut Vec<u8>,
) -> Result<Passed, RecordsError> {
    let mut batches = Vec::new();
    let mut rest = data;
    while rest.len() >= 17 {
        let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let magic = rest[16] as i8;
        let Ok(total) = usize::try_from(length).map(|l| l + 12) else { return Err(corrupt("negative batch length")) };
        if magic != 2 {
            return Err(RecordsError(format!(
                "message format v{magic} (Kafka before 0.11) is not supported; upgrade the topic's message format"
            )));
        }
        if total < HEADER_LEN {
            return Err(corrupt("batch shorter than its header"));
        }
        if rest.len() < total {
            break; // cut short: the rest comes with the next fetch
        }
        let (batch, after) = rest.split_at(total);
        batches.push(Header::parse(batch)?);
        rest = after;
    }
    // Some brokers answer with a batch twice, or out of order: read each once, in order.
    batches.sort_by_key(|batch| batch.base_offset);
    batches.dedup_by_key(|batch| batch.base_offset);

    let mut aborted: Vec<Aborted> = aborted.to_vec();
    aborted.sort_by_key(|a| a.first_offset);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborting: Vec<i64> = Vec::new();
    let mut read = Passed::default();
    let mut next = from;
    for batch in &batches {
        let last = batch.base_offset + i64::from(batch.last_offset_delta);
        if last < next {
            continue; // before `from`, or given already
        }
        read.first_base.get_or_insert(batch.base_offset);
        read.next_offset = Some(last + 1);
        while let Some(txn) = aborted.next_if(|txn| txn.first_offset <= last) {
            aborting.push(txn.producer_id);
        }
        if batch.attributes & CONTROL != 0 {
            // An abort marker ends its producer's aborted transaction.
            if batch.is_abort_marker() {
                aborting.retain(|&producer| producer != batch.producer_id);
            }
            read.markers += 1;
        } else if batch.attributes & TRANSACTIONAL != 0 && aborting.contains(&batch.producer_id) {
            read.aborted += u64::from(batch.record_count);
        } else {
            batch.read_records(next, out, scratch)?;
        }
        next = last + 1;
    }
    if let Some(next_offset) = read.next_offset {
        out.next_offset = out.next_offset.max(next_offset);
    }
    Ok(read)
}

/// One batch, its header parsed.
struct Header<'a> {
    base_offset: Offset,
    attributes: i16,
    last_offset_delta: i32,
    producer_id: i64,
    /// The newest timestamp of its records (create or log-append time, as the topic keeps).
    max_timestamp_ms: i64,
    record_count: u32,
    /// The records, as stored (compressed or not).
    records: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(batch: &'a [u8]) -> Result<Header<'a>, RecordsError> {
        let i64_at = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().expect("8 bytes"));
        let i32_at = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().expect("4 bytes"));
        let crc = u32::from_be_bytes(batch[17..21].try_into().expect("4 bytes"));
        if crc32c::crc32c(&batch[CRC_FROM..]) != crc {
            return Err(corrupt("CRC mismatch: the batch is corrupt"));
        }
        Ok(Header {
            base_offset: i64_at(0),
            attributes: i16::from_be_bytes([batch[21], batch[22]]),
            last_offset_delta: i32_at(23),
            producer_id: i64_at(43),
            max_timestamp_ms: i64_at(35),
            record_count: u32::try_from(i32_at(57)).map_err(|_| corrupt("negative record count"))?,
            records: &batch[HEADER_LEN..],
        })
    }

    /// Whether this control batch is an abort marker (its record's key: version, type 0).
    fn is_abort_marker(&self) -> bool {
        let mut records = Records { data: self.records };
        matches!(records.next(), Some(Ok(record)) if record.key.is_some_and(|key| key.len() >= 4 && key[2..4] == [0, 0]))
    }

    /// Appends the records at offset `from` or later to `out`.
    fn read_records(&self, from: Offset, out: &mut RecordBatch, scratch: &mut Vec<u8>) -> Result<(), RecordsError> {
        let data = match Compression::from_attributes(self.attributes)? {
            Compression::None => self.records,
            compression => decompress(compression, self.records, scratch)?,
        };
        let mut records = Records { data };
        if self.record_count > 0 {
            out.newest_timestamp_ms = out.newest_timestamp_ms.max(Some(self.max_timestamp_ms));
        }
        for _ in 0..self.record_count {
            let record = records.next().ok_or_else(|| corrupt("fewer records than counted"))??;
            let offset = self.base_offset + i64::from(record.offset_delta);
            if offset >= from {
                out.push_keyed(offset, record.key, record.value.unwrap_or_default());
            }
        }
        Ok(())
    }
}

/// One record, borrowed from its batch.
struct Record<'a> {
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// The records of a batch, one after the other.
struct Records<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        Some(self.read())
    }
}

impl<'a> Records<'a> {
    fn read(&mut self) -> Result<Record<'a>, RecordsError> {
        let length = usize::try_from(varint(&mut self.data)?).map_err(|_| corrupt("negative record length"))?;
        if self.data.len() < length {
            return Err(corrupt("record longer than its batch"));
        }
        let (mut record, rest) = self.data.split_at(length);
        self.data = rest;
        let _attributes = take(&mut record, 1)?;
        let _timestamp_delta = varint(&mut record)?;
        let offset_delta = i32::try_from(varint(&mut record)?).map_err(|_| corrupt("offset delta"))?;
        let key = bytes(&mut record)?;
        let value = bytes(&mut record)?;
        // Headers are not used; the record's length already bounds them.
        Ok(Record { offset_delta, key, value })
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], RecordsError> {
    if data.len() < n {
        return Err(corrupt("record cut short"));
    }
    let (taken, rest) = data.split_at(n);
    *data = rest;
    Ok(taken)
}

/// A zig-zag varint (Kafka's varint and varlong).
fn varint(data: &mut &[u8]) -> Result<i64, RecordsError> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = data.split_first().ok_or_else(|| corrupt("varint cut short"))?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(corrupt("varint too long"))
}

/// Bytes preceded by their varint length, -1 for none.
fn bytes<'a>(data: &mut &'a [u8]) -> Result<Option<&'a [u8]>, RecordsError> {
    match varint(data)? {
        -1 => Ok(None),
        n => usize::try_from(n).map_err(|_| corrupt("negative length")).and_then(|n| take(data, n)).map(Some),
    }
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
        None => put_varint(out, -1),
    }
}

/// The framing of Snappy that the Java client writes (snappy-java's stream format).
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// Decompresses `data` into `out`, which is kept between batches, and returns the records.
fn decompress<'o>(compression: Compression, data: &[u8], out: &'o mut Vec<u8>) -> Result<&'o [u8], RecordsError> {
    let failed = |e: &dyn std::fmt::Display| RecordsError(format!("cannot decompress {compression:?}: {e}"));
    if compression != Compression::Lz4 {
        out.clear();
    }
    match compression {
        Compression::None => out.extend_from_slice(data),
        Compression::Lz4 => {
            // Decoded in place, over what an earlier batch left: no zeroing, no copy.
            let len = super::lz4::decode_frames(data, out).map_err(|e| failed(&e))?;
            return Ok(&out[..len]);
        }
        Compression::Gzip => {
            flate2::read::GzDecoder::new(data).read_to_end(out).map_err(|e| failed(&e))?;
        }
        Compression::Zstd => {
            zstd::stream::copy_decode(data, &mut *out).map_err(|e| failed(&e))?;
        }
        Compression::Snappy => {
            let mut decoder = snap::raw::Decoder::new();
            let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), RecordsError> {
                let start = out.len();
                out.resize(start + snap::raw::decompress_len(block).map_err(|e| failed(&e))?, 0);
                let n = decoder.decompress(block, &mut out[start..]).map_err(|e| failed(&e))?;
                out.truncate(start + n);
                Ok(())
            };
            match data.strip_prefix(XERIAL_MAGIC) {
                // Then a version and a compatible version (i32 each), then blocks: length, bytes.
                Some(framed) => {
                    let mut rest = framed.get(8..).ok_or_else(|| corrupt("snappy framing cut short"))?;
                    while !rest.is_empty() {
                        let length = u32::from_be_bytes(take(&mut rest, 4)?.try_into().expect("4 bytes")) as usize;
                        block(take(&mut rest, length)?, out)?;
                    }
                }
                None => block(data, out)?,
            }
        }
    }
    Ok(out)
}

fn compress(compression: Compression, data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let failed = |e: std::io::Error| RecordsError(format!("cannot compress {compression:?}: {e}"));
    Ok(match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(data).map_err(failed)?;
            encoder.finish().map_err(failed)?
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(data).map_err(failed)?;
            encoder.finish().map_err(|e| RecordsError(format!("cannot compress Lz4: {e}")))?
        }
        Compression::Zstd => zstd::bulk::compress(data, 1).map_err(failed)?,
        Compression::Snappy => {
            return Err(RecordsError("producing with Snappy is not supported: use gzip, lz4 or zstd".into()))
        }
    })
}

/// A record to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Produced {
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its timestamp, in milliseconds since 1970.
    pub timestamp_ms: i64,
}

/// What a batch is, beyond its records: for producers of transactions, and for tests of readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchKind {
    /// The producer (-1: none).
    pub producer_id: i64,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// A transaction marker instead of records: commit (`true`) or abort (`false`).
    pub marker: Option<bool>,
}

impl Default for BatchKind {
    fn default() -> BatchKind {
        BatchKind { producer_id: -1, transactional: false, marker: None }
    }
}

/// Writes `records` as one batch (base offset 0: the broker assigns offsets).
pub fn write_batch(records: &[Produced], compression: Compression, kind: BatchKind) -> Result<Vec<u8>, RecordsError> {
    let mut body = Vec::with_capacity(records.iter().map(|r| r.value.len() + 16).sum());
    let first_timestamp = records.first().map_or(0, |r| r.timestamp_ms);
    let mut record = Vec::new();
    let markers;
    let records: &[Produced] = match kind.marker {
        Some(commit) => {
            // A control record: key = version 0, type (0 abort, 1 commit); value = version, epoch.
            markers = [Produced { key: Some(vec![0, 0, 0, u8::from(commit)]), value: vec![0; 6], timestamp_ms: 0 }];
            &markers
        }
        None => records,
    };
    for (delta, produced) in records.iter().enumerate() {
        record.clear();
        record.push(0);
        put_varint(&mut record, produced.timestamp_ms - first_timestamp);
        put_varint(&mut record, delta as i64);
        put_bytes(&mut record, produced.key.as_deref());
        put_bytes(&mut record, Some(&produced.value));
        put_varint(&mut record, 0); // no headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let body = compress(compression, &body)?;
    let mut attributes = compression.attribute();
    if kind.transactional || kind.marker.is_some() {
        attributes |= TRANSACTIONAL;
    }
    if kind.marker.is_some() {
        attributes |= CONTROL;
    }
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    let count = i32::try_from(records.len()).map_err(|_| corrupt("too many records for one batch"))?;
    let mut batch = Vec::with_capacity(HEADER_LEN + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&((HEADER_LEN + body.len() - 12) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // crc, below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(count - 1).max(0).to_be_bytes()); // last offset delta
    batch.extend_from_slice(&first_timestamp.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&kind.producer_id.to_be_bytes());
    batch.extend_from_slice(&(if kind.producer_id < 0 { -1i16 } else { 0 }).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(if kind.producer_id < 0 { -1i32 } else { 0 }).to_be_bytes()); // base sequence
    batch.extend_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(&body);
    let crc = crc32c::crc32c(&batch[CRC_FROM..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(values: &[&str]) -> Vec<Produced> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Produced {
                key: (i % 2 == 0).then(|| format!("k{i}").into_bytes()),
                value: v.as_bytes().to_vec(),
                timestamp_ms: 1_766_255_678_000 + i as i64,
            })
            .collect()
    }

    /// Batches as a broker stores them: each at its base offset.
    fn log(batches: &[(Offset, Vec<u8>)]) -> Vec<u8> {
        let mut log = Vec::new();
        for (base, batch) in batches {
            let mut batch = batch.clone();
            batch[..8].copy_from_slice(&base.to_be_bytes());
            log.extend_from_slice(&batch);
        }
        log
    }

    /// A record read back: offset, key, value.
    type Read = (Offset, Option<Vec<u8>>, Vec<u8>);

    fn read_all(data: &[u8], from: Offset, aborted: &[Aborted]) -> (Vec<Read>, Passed) {
        let mut out = RecordBatch::new(0, from);
        let read = read_batches(data, from, aborted, &mut out, &mut Vec::new()).unwrap();
        let records = out.iter().map(|r| (r.offset, r.key.map(<[u8]>::to_vec), r.payload.to_vec())).collect();
        (records, read)
    }

    #[test]
    fn every_compression_reads_back_what_was_written() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let batch = write_batch(&records(&["a", "", "ccc"]), compression, BatchKind::default()).unwrap();
            let (read, summary) = read_all(&log(&[(10, batch)]), 0, &[]);
            assert_eq!(
                read,
                vec![
                    (10, Some(b"k0".to_vec()), b"a".to_vec()),
                    (11, None, vec![]),
                    (12, Some(b"k2".to_vec()), b"ccc".to_vec())
                ],
                "{compression:?}"
            );
            assert_eq!(summary.next_offset, Some(13));
        }
    }

    #[test]
    fn snappy_in_both_framings_is_read() {
        let mut body = Vec::new();
        for (delta, value) in ["x", "yy"].iter().enumerate() {
            let mut record = vec![0];
            put_varint(&mut record, 0);
            put_varint(&mut record, delta as i64);
            put_bytes(&mut record, None);
            put_bytes(&mut record, Some(value.as_bytes()));
            put_varint(&mut record, 0);
            put_varint(&mut body, record.len() as i64);
            body.extend_from_slice(&record);
        }
        let raw = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        xerial.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        xerial.extend_from_slice(&raw);
        for compressed in [raw, xerial] {
            let mut out = Vec::new();
            decompress(Compression::Snappy, &compressed, &mut out).unwrap();
            assert_eq!(out, body);
        }
    }

    #[test]
    fn markers_and_aborted_transactions_are_passed_over() {
        let committed = BatchKind { producer_id: 7, transactional: true, marker: None };
        let aborted = BatchKind { producer_id: 8, transactional: true, marker: None };
        let data = log(&[
            (0, write_batch(&records(&["plain"]), Compression::None, BatchKind::default()).unwrap()),
            (1, write_batch(&records(&["t7a", "t7b"]), Compression::None, committed).unwrap()),
            (3, write_batch(&records(&["t8"]), Compression::Lz4, aborted).unwrap()),
            (4, write_batch(&[], Compression::None, BatchKind { marker: Some(true), ..committed }).unwrap()),
            (5, write_batch(&[], Compression::None, BatchKind { marker: Some(false), ..aborted }).unwrap()),
            (6, write_batch(&records(&["after"]), Compression::None, aborted).unwrap()),
        ]);
        let (read, summary) = read_all(&data, 0, &[Aborted { producer_id: 8, first_offset: 3 }]);
        let offsets: Vec<Offset> = read.iter().map(|r| r.0).collect();
        // The aborted transaction's record is passed; after its abort marker, producer 8's next
        // transaction counts again.
        assert_eq!(offsets, vec![0, 1, 2, 6]);
        assert_eq!((summary.markers, summary.aborted, summary.next_offset), (2, 1, Some(7)));

        // A log that ends with a marker is read to its end: nothing stops at it.
        let marker_only =
            log(&[(4, write_batch(&[], Compression::None, BatchKind { marker: Some(true), ..committed }).unwrap())]);
        let (read, summary) = read_all(&marker_only, 4, &[]);
        assert!(read.is_empty());
        assert_eq!(summary.next_offset, Some(5));
    }

    #[test]
    fn a_fetch_inside_a_batch_repeated_batches_and_a_cut_short_end() {
        let first = write_batch(&records(&["a", "b", "c"]), Compression::None, BatchKind::default()).unwrap();
        let second = write_batch(&records(&["d"]), Compression::Gzip, BatchKind::default()).unwrap();
        let mut data = log(&[(3, second.clone()), (0, first.clone()), (0, first.clone()), (3, second.clone())]);
        data.extend_from_slice(&first[..30]);
        let (read, summary) = read_all(&data, 1, &[]);
        let offsets: Vec<Offset> = read.iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![1, 2, 3]);
        assert_eq!((summary.first_base, summary.next_offset), (Some(0), Some(4)));
    }

    #[test]
    fn corruption_is_an_error() {
        let mut batch = write_batch(&records(&["a"]), Compression::None, BatchKind::default()).unwrap();
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(read_batches(&batch, 0, &[], &mut RecordBatch::new(0, 0), &mut Vec::new()).is_err());
        let mut old = write_batch(&records(&["a"]), Compression::None, BatchKind::default()).unwrap();
        old[16] = 1;
        let error = read_batches(&old, 0, &[], &mut RecordBatch::new(0, 0), &mut Vec::new()).unwrap_err();
        assert!(error.0.contains("not supported"), "{error}");
    }

    #[test]
    fn varints_round_trip() {
        for value in [0i64, 1, -1, 63, -64, 64, 300, -300, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint(&mut out.as_slice()).unwrap(), value);
        }
    }
}
