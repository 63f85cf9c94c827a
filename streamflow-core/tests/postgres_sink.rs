//! The Postgres sink against a real PostgreSQL: the schema applies once, and a pipeline stopped
//! after any number of epochs and run again ends with the table of an uninterrupted run.

use std::collections::BTreeMap;

use streamflow_core::sink::postgres::{migrate, MIGRATIONS};
use streamflow_core::{
    Checkpoint, EpochBatch, GeneratorConfig, GeneratorSource, MemorySink, Pipeline, PipelineConfig, PostgresConfig,
    PostgresSink, ReadPolicy, Settings, Sink, SinkError,
};
use streamflow_testkit::Postgres;

#[test]
fn the_schema_applies_once() {
    let pg = Postgres::start().unwrap();
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let all: Vec<i32> = MIGRATIONS.iter().map(|(version, _, _)| *version).collect();
    assert_eq!(all[..3], [1, 2, 3]);
    assert_eq!(migrate(&mut client).unwrap(), all);
    assert_eq!(migrate(&mut client).unwrap(), Vec::<i32>::new());
    let versions: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).unwrap().get(0);
    assert_eq!(versions, all.len() as i64);
}

/// Fails after a number of batches, as a process stopped between two epochs.
struct StopAfter<S> {
    inner: S,
    batches_left: usize,
}

impl<S: Sink> Sink for StopAfter<S> {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        self.inner.checkpoint(settings)
    }
    fn apply(&mut self, batch: EpochBatch) -> Result<(), SinkError> {
        if self.batches_left == 0 {
            return Err(SinkError::new("stopped on purpose"));
        }
        self.batches_left -= 1;
        self.inner.apply(batch)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        workers: 2,
        reading: ReadPolicy { max_records: 500, records_per_activation: 250, ..ReadPolicy::default() },
        ..PipelineConfig::default()
    }
}

fn generator() -> GeneratorConfig {
    GeneratorConfig {
        events: Some(30_000),
        streams: 4,
        partitions: 4,
        late_ratio: 0.01,
        bad_ratio: 0.01,
        ..Default::default()
    }
}

fn run(sink: impl Sink) -> Result<(), streamflow_core::Error> {
    let generator = generator();
    Pipeline::new(config())
        .run(
            // The generator is deterministic: resuming is reading it again and skipping.
            move |ctx| Ok(Box::new(GeneratorSource::new(&generator, ctx.worker, ctx.peers)?)),
            sink,
        )
        .map(drop)
}

fn table(url: &str) -> BTreeMap<(std::time::SystemTime, String), (i64, i64, i64, String)> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query(
            "SELECT window_start, stream_id, events, unique_viewers, active_viewers, donations_usd::text
             FROM stream_metrics_minute",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4), r.get(5))))
        .collect()
}

#[test]
fn stopped_after_any_epoch_and_resumed_equals_an_uninterrupted_run() {
    let memory = MemorySink::new();
    let expected = memory.table();
    run(memory).unwrap();
    let expected: BTreeMap<_, _> = expected
        .rows()
        .into_iter()
        .map(|r| {
            let start = std::time::UNIX_EPOCH + std::time::Duration::from_micros(r.window_start.micros() as u64);
            let values =
                (r.events as i64, r.unique_viewers as i64, r.active_viewers as i64, r.donations_usd.to_string());
            ((start, r.stream_id.to_string()), values)
        })
        .collect();

    for stop_after in [0, 3, 11, 23] {
        let pg = Postgres::start().unwrap();
        let sink = |batches_left| {
            let mut config = PostgresConfig::new(pg.url(), "test", "generator");
            config.commit_interval = std::time::Duration::from_millis(5);
            StopAfter { inner: PostgresSink::connect(config).unwrap(), batches_left }
        };
        assert!(run(sink(stop_after)).is_err(), "the first run must stop early");
        run(sink(usize::MAX)).unwrap();
        assert_eq!(table(&pg.url()), expected, "stopped after {stop_after} batches");
    }
}
