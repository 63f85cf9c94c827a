//! Figures, not checks: run by `scripts/bench-kafka.sh` (`--ignored`, release build), they print
//! the sustained Kafka → PostgreSQL throughput with the CPU each process spent, and the
//! freshness — produce to visible in PostgreSQL — at 10,000 events/s.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use rand::{Rng, SeedableRng};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use streamflow_testkit::{cpu_seconds, pids_named, Postgres, Storage, Tansu};

const TOPIC: &str = "stream.events";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = wait(&mut self.0, Duration::from_secs(30));
    }
}

fn run(broker: &Tansu, url: &str, start: &str) -> Running {
    let mut command = streamflow(&["run", "--brokers", &broker.address(), "--topic", TOPIC, "--database-url", url]);
    // Its last lines say the commit latency.
    command
        .args(["--start-offsets", start])
        .env("STREAMFLOW_LOG", "warn,streamflow::cmd::run=info")
        .stdout(Stdio::null());
    Running(command.spawn().unwrap())
}

fn committed(client: &mut postgres::Client) -> i64 {
    client
        .query_one("SELECT coalesce(sum(next_offset), 0)::int8 FROM source_offsets", &[])
        .map(|row| row.get(0))
        .unwrap_or(0)
}

fn postgres_cpu() -> f64 {
    pids_named("postgres").into_iter().map(cpu_seconds).sum()
}

#[test]
#[ignore = "a benchmark: scripts/bench-kafka.sh runs it"]
fn throughput_kafka_to_postgres() {
    let events: u64 = std::env::var("EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let produced = Instant::now();
    succeed(streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]).args([
        "--count",
        &events.to_string(),
        "--partitions",
        "4",
        "--streams",
        "100",
        "--rate",
        "0",
        "--compression",
        "lz4",
    ]));
    let produce_seconds = produced.elapsed().as_secs_f64();
    println!(
        "produce: {events} events into 4 partitions in {produce_seconds:.1} s: {:.0} events/s",
        events as f64 / produce_seconds
    );

    let tansu = broker.pid().unwrap();
    let (tansu_before, pg_before) = (cpu_seconds(tansu), postgres_cpu());
    let started = Instant::now();
    let pipeline = run(&broker, &pg.url(), "earliest");
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    while committed(&mut client) < events as i64 {
        assert!(started.elapsed() < Duration::from_secs(600), "not done in 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let streamflow_cpu = cpu_seconds(pipeline.0.id());
    println!(
        "kafka -> postgres: {events} events in {seconds:.1} s: {:.0} events/s (including start-up)",
        events as f64 / seconds
    );
    println!(
        "cpu seconds meanwhile: tansu {:.1}, streamflow {:.1}, postgres {:.1} (of {:.1} available on 2 cores)",
        cpu_seconds(tansu) - tansu_before,
        streamflow_cpu,
        postgres_cpu() - pg_before,
        2.0 * seconds
    );
    let written = client
        .query_one(
            "SELECT (SELECT count(*) FROM stream_metrics_minute), (SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables \
             WHERE relname = 'stream_metrics_minute'), (SELECT pg_total_relation_size('stream_checkpoints'))",
            &[],
        )
        .unwrap();
    let (rows, writes, checkpoints): (i64, i64, i64) = (written.get(0), written.get(1), written.get(2));
    println!("written: {rows} window rows ({writes} inserts and updates), stream checkpoints {checkpoints} bytes");
}

#[test]
#[ignore = "a benchmark: scripts/bench-kafka.sh runs it"]
fn freshness_at_10000_events_per_second() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let mut generator = streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]);
    generator.args(["--partitions", "4", "--streams", "100", "--rate", "10000"]).stdout(Stdio::null());
    let _generator = Running(generator.spawn().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    let _pipeline = run(&broker, &pg.url(), "latest");
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    // Let it settle into the steady state first.
    let settled = Instant::now();
    while committed(&mut client) == 0 && settled.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(5));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let producer = runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        client.partition_client(TOPIC, 0, UnknownTopicHandling::Retry).await.unwrap()
    });
    let probes = 200;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut latencies = Vec::with_capacity(probes);
    for probe in 0..probes {
        // A donation on a stream of its own: its row appears when the probe is committed.
        let stream = format!("probe_{probe}");
        let payload = format!(
            r#"{{"ts":"{}","event_type":"donation","stream_id":"{stream}","amount_usd":1}}"#,
            streamflow_core::EventTime::now()
        );
        let record = Record {
            key: Some(stream.clone().into_bytes()),
            value: Some(payload.into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        let sent = Instant::now();
        runtime.block_on(producer.produce(vec![record], Compression::NoCompression)).unwrap();
        loop {
            let seen = client
                .query_opt("SELECT updated_at FROM stream_metrics_minute WHERE stream_id = $1", &[&stream])
                .unwrap()
                .map(|row| row.get::<_, SystemTime>(0));
            if seen.is_some() {
                latencies.push(sent.elapsed());
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(30), "probe {probe} never arrived");
            std::thread::sleep(Duration::from_millis(2));
        }
        // A random pause, so that the probes fall anywhere in the commit interval.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..700)));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "freshness at 10,000 events/s, {probes} probes: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    let total = committed(&mut client);
    println!("meanwhile the pipeline committed offsets of {total} records");
}
