//! Reading Kafka record batches: records per second out of a fetch answer of generated events,
//! uncompressed and compressed as `streamflow generate` writes them, and LZ4 decompression alone,
//! in place ([`lz4::decode_frames`]) beside lz4_flex's `FrameDecoder`, which the reader used before.
//!
//! `cargo bench --bench kafka_records` prints each as `thrpt: … Melem/s` (records/s).

use std::io::Read as _;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use streamflow_core::kafka::lz4;
use streamflow_core::kafka::records::{read_batches, write_batch, BatchKind};
use streamflow_core::kafka::{Compression, Produced};
use streamflow_core::{Generator, GeneratorConfig, RecordBatch};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As `streamflow generate` cuts them.
const BATCH_RECORDS: usize = 2_000;
const BATCHES: usize = 50;
const RECORDS: usize = BATCH_RECORDS * BATCHES;
/// Where a batch's records start (its header's length).
const RECORDS_FROM: usize = 61;

fn events() -> Vec<Produced> {
    let config = GeneratorConfig { events: Some(RECORDS as u64), streams: 100, ..GeneratorConfig::default() };
    let mut generator = Generator::new(&config, 0);
    let mut payload = Vec::new();
    let mut events = Vec::with_capacity(RECORDS);
    while generator.next_into(&mut payload).is_some() {
        events.push(Produced { key: None, value: payload.clone(), timestamp_ms: 1_766_255_678_000 });
    }
    events
}

/// The batches, each at its base offset as a broker serves them.
fn batches(events: &[Produced], compression: Compression) -> Vec<Vec<u8>> {
    events
        .chunks(BATCH_RECORDS)
        .enumerate()
        .map(|(i, chunk)| {
            let mut batch = write_batch(chunk, compression, BatchKind::default()).unwrap();
            batch[..8].copy_from_slice(&((i * BATCH_RECORDS) as i64).to_be_bytes());
            batch
        })
        .collect()
}

fn reading(c: &mut Criterion) {
    let events = events();
    let bytes: usize = events.iter().map(|e| e.value.len()).sum();
    let mut group = c.benchmark_group("kafka_records");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let fetched = batches(&events, compression).concat();
        let mut scratch = Vec::new();
        group.bench_function(BenchmarkId::new("read_batches", format!("{compression:?}")), |b| {
            b.iter_batched_ref(
                || RecordBatch::with_capacity(0, 0, RECORDS, bytes),
                |out| read_batches(&fetched, 0, &[], out, &mut scratch).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }

    let frames: Vec<Vec<u8>> =
        batches(&events, Compression::Lz4).into_iter().map(|batch| batch[RECORDS_FROM..].to_vec()).collect();
    let mut kept = Vec::new();
    group.bench_function(BenchmarkId::new("lz4", "in_place"), |b| {
        b.iter(|| frames.iter().map(|frame| lz4::decode_frames(frame, &mut kept).unwrap()).sum::<usize>())
    });
    let mut out = Vec::new();
    group.bench_function(BenchmarkId::new("lz4", "frame_decoder"), |b| {
        b.iter(|| {
            frames
                .iter()
                .map(|frame| {
                    out.clear();
                    lz4_flex::frame::FrameDecoder::new(frame.as_slice()).read_to_end(&mut out).unwrap()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = reading
}
criterion_main!(benches);
