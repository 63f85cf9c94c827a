//! Window throughput: events per second through decoding alone, through window + aggregate on
//! pre-decoded events, and through the whole pipeline (decode + window + aggregate + sink), for 3
//! and 1,000 streams, with 1 and 2 workers — beside a naive single-threaded `HashMap` loop that
//! computes the same rows from the same decoded events.
//!
//! `cargo bench --bench window_throughput` prints each as `thrpt: … Melem/s` (events/s).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use streamflow_core::batch::DecodedBatch;
use streamflow_core::dataflow::aggregate::aggregate;
use streamflow_core::dataflow::window::window;
use streamflow_core::streams::decode::decode;
use streamflow_core::streams::generator::Audience;
use streamflow_core::{
    Cents, Checkpoint, Control, Event, EventTime, EventType, Generator, GeneratorConfig, LiveStreams, MemorySink,
    MemorySource, PartitionId, Pipeline, PipelineConfig, RecordBatch, Row, WindowConfig,
};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

// As in the `streamflow` binary: see its main.rs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: u64 = 400_000;
/// Records per batch and batches per epoch, as the source operator cuts them by default.
const BATCH: usize = 8_192;
const BATCHES_PER_EPOCH: usize = 32;

/// The workload: the seed's event mix at 2,000 events a second of event time over `streams`
/// streams (3,000 s, so windows open and close during the run), as payloads per partition.
/// Stream `i` goes to partition `i mod 4`, so that every worker has partitions to read: Kafka's
/// partitioner puts the three streams of the 3-stream case on one partition of three.
fn workload(streams: u32) -> Vec<(PartitionId, Vec<u8>)> {
    let partitions = streams.min(4);
    let config = GeneratorConfig {
        events: Some(EVENTS),
        streams,
        partitions: 1,
        event_rate: 2_000.0,
        // The original's draws, as in the figures before the realistic audience.
        audience: Audience::Independent,
        ..GeneratorConfig::default()
    };
    let mut generator = Generator::new(&config, 0);
    let mut payloads = Vec::with_capacity(EVENTS as usize);
    let mut payload = Vec::new();
    while generator.next_into(&mut payload).is_some() {
        let stream = decode(&payload).map_or(0, |event| event.stream_id[7..].parse::<u32>().map_or(0, |id| id - 1001));
        payloads.push((stream % partitions, payload.clone()));
    }
    payloads
}

/// Decoded batches per partition, numbered as the source operator numbers them.
fn decoded_batches(payloads: &[(PartitionId, Vec<u8>)]) -> Vec<DecodedBatch<Event>> {
    let mut per_partition: BTreeMap<PartitionId, Vec<RecordBatch>> = BTreeMap::new();
    for (offset, (partition, payload)) in payloads.iter().enumerate() {
        let batches = per_partition.entry(*partition).or_insert_with(|| vec![RecordBatch::new(*partition, 0)]);
        if batches.last().unwrap().len() == BATCH {
            let mut next = RecordBatch::new(*partition, offset as i64);
            next.seq = batches.len() as u64;
            batches.push(next);
        }
        batches.last_mut().unwrap().push(offset as i64, payload);
    }
    per_partition.into_values().flatten().map(|batch| DecodedBatch::new(&LiveStreams, batch)).collect()
}

/// The batches each of `workers` workers reads: the partitions it owns.
fn per_worker<T: Clone>(items: &[T], partition: impl Fn(&T) -> PartitionId, workers: usize) -> Vec<Vec<T>> {
    (0..workers).map(|w| items.iter().filter(|i| partition(i) as usize % workers == w).cloned().collect()).collect()
}

/// Hands each worker its own input, taken (not cloned) inside the timed run.
struct Inputs<T>(Mutex<Vec<Option<T>>>);

impl<T> Inputs<T> {
    fn new(per_worker: Vec<T>) -> Arc<Inputs<T>> {
        Arc::new(Inputs(Mutex::new(per_worker.into_iter().map(Some).collect())))
    }
    fn take(&self, worker: usize) -> T {
        self.0.lock().unwrap()[worker].take().expect("each worker takes its input once")
    }
}

/// Window + aggregate over pre-decoded batches; returns the number of row updates, so that the
/// work cannot be skipped.
fn aggregate_only(inputs: Arc<Inputs<Vec<DecodedBatch<Event>>>>, workers: usize) -> usize {
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mine = inputs.take(worker.index());
        let probe = ProbeHandle::new();
        let updates = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&updates);
        worker.dataflow::<u64, _, _>(|scope| {
            let decoded = source(scope, "PreDecoded", move |capability, info| {
                let activator = scope.activator_for(info.address);
                let mut capability = Some(capability);
                let mut pending = mine.into_iter();
                move |output| {
                    let Some(cap) = capability.as_mut() else { return };
                    let chunk: Vec<DecodedBatch<Event>> = pending.by_ref().take(BATCHES_PER_EPOCH).collect();
                    if chunk.is_empty() {
                        capability = None;
                        return;
                    }
                    output.session(&*cap).give_iterator(chunk.into_iter());
                    let next = *cap.time() + 1;
                    cap.downgrade(&next);
                    activator.activate();
                }
            });
            let config = WindowConfig::default();
            let resume = Arc::new(Checkpoint::default());
            let (schema, control) = (Arc::new(LiveStreams), Control::new());
            let (events, _dead, progress) =
                window(decoded, Arc::clone(&schema), config, Arc::clone(&resume), control.clone());
            let aggregated = aggregate(events, progress.broadcast(), schema, config, resume, control);
            aggregated
                .rows
                .inspect(move |_| {
                    counted.fetch_add(1, Relaxed);
                })
                .inner
                .probe_with(&probe);
        });
        while !probe.done() {
            worker.step();
        }
        updates.load(Relaxed)
    })
    .unwrap();
    guards.join().into_iter().map(Result::unwrap).sum()
}

/// The whole pipeline, from each worker's memory source to a memory sink.
fn pipeline(inputs: Arc<Inputs<MemorySource>>, workers: usize) -> Vec<Row> {
    let sink = MemorySink::new();
    let table = sink.table();
    let config = PipelineConfig { workers, ..PipelineConfig::default() };
    Pipeline::new(config).run(move |ctx| Ok(Box::new(inputs.take(ctx.worker))), sink).unwrap();
    table.rows()
}

fn sources(payloads: &[(PartitionId, Vec<u8>)], workers: usize) -> Arc<Inputs<MemorySource>> {
    Inputs::new((0..workers).map(|w| MemorySource::new(payloads.iter().cloned(), w, workers)).collect())
}

/// The same rows, computed plainly: one `HashMap` entry per (window, stream), one pass.
fn naive(events: &[(PartitionId, Event)]) -> Vec<Row> {
    #[derive(Default)]
    struct Acc {
        counts: [u64; 6],
        cents: i64,
        users: HashSet<streamflow_core::UserId>,
    }
    let config = WindowConfig::default();
    let mut clocks: HashMap<PartitionId, EventTime> = HashMap::new();
    let mut windows: HashMap<(EventTime, streamflow_core::StreamId), Acc> = HashMap::new();
    for (partition, event) in events {
        let window = config.start_of(event.ts);
        let clock = clocks.entry(*partition).or_insert(EventTime::MIN);
        if *clock != EventTime::MIN && config.end_of(window) <= config.watermark(*clock) {
            continue;
        }
        *clock = (*clock).max(event.ts);
        let acc = windows.entry((window, event.stream_id.clone())).or_default();
        acc.counts[EventType::ALL.iter().position(|k| *k == event.kind).unwrap()] += 1;
        acc.cents += event.amount.map_or(0, |c| c.0);
        if let Some(user) = &event.user_id {
            acc.users.insert(user.clone());
        }
    }
    let mut keys: Vec<_> = windows.into_iter().collect();
    keys.sort_by(|a, b| (&a.0 .1, a.0 .0).cmp(&(&b.0 .1, b.0 .0)));
    let mut running: HashMap<streamflow_core::StreamId, i64> = HashMap::new();
    let mut rows: Vec<Row> = keys
        .into_iter()
        .map(|((window, stream), acc)| {
            let net = acc.counts[2] as i64 - acc.counts[3] as i64;
            let audience = running.entry(stream.clone()).or_default();
            *audience += net;
            Row {
                window_start: window,
                window_end: config.end_of(window),
                stream_id: stream,
                events: acc.counts.iter().sum(),
                chat_messages: acc.counts[4],
                donations_count: acc.counts[5],
                donations_usd: Cents(acc.cents),
                viewer_joins: acc.counts[2],
                viewer_leaves: acc.counts[3],
                net_viewer_delta: net,
                unique_viewers: acc.users.len() as u64,
                active_viewers: u64::try_from(*audience).unwrap_or(0),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.key().cmp(&b.key()));
    rows
}

fn window_throughput(c: &mut Criterion) {
    for streams in [3, 1_000] {
        let payloads = workload(streams);
        let batches = decoded_batches(&payloads);
        let events: Vec<(PartitionId, Event)> =
            payloads.iter().map(|(p, bytes)| (*p, decode(bytes).unwrap())).collect();
        // The naive loop and the dataflow compute the same rows.
        assert_eq!(naive(&events), pipeline(sources(&payloads, 2), 2), "the naive loop and the dataflow differ");

        let mut group = c.benchmark_group(format!("{streams}_streams"));
        group.throughput(Throughput::Elements(EVENTS));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        group.bench_function("decode", |b| {
            b.iter(|| payloads.iter().filter(|(_, bytes)| decode(bytes).is_ok()).count());
        });
        group.bench_function("naive_hashmap_loop", |b| b.iter(|| naive(&events).len()));
        for workers in [1, 2] {
            group.bench_with_input(BenchmarkId::new("aggregate", format!("{workers}_workers")), &workers, |b, &w| {
                b.iter_batched(
                    || Inputs::new(per_worker(&batches, |b| b.batch.partition, w)),
                    |inputs| aggregate_only(inputs, w),
                    BatchSize::PerIteration,
                );
            });
            group.bench_with_input(BenchmarkId::new("pipeline", format!("{workers}_workers")), &workers, |b, &w| {
                b.iter_batched(|| sources(&payloads, w), |inputs| pipeline(inputs, w).len(), BatchSize::PerIteration);
            });
        }
        group.finish();
    }
}

criterion_group!(benches, window_throughput);
criterion_main!(benches);
