//! The PostgreSQL sink's bulk path, on its own: rows per second of one-transaction commits
//! into a throwaway local PostgreSQL (the test harness's: fsync off, so that the figure is the
//! statements' cost and not the disk's). First every row is new (inserts), then the same keys
//! again (updates of open windows, the common case of a running pipeline).
//!
//!   cargo bench --bench sink_upsert [-- ROWS_PER_COMMIT COMMITS]   (default 50,000 × 10)

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use streamflow_core::schema::Schema;
use streamflow_core::sink::postgres::PostgresStats;
use streamflow_core::{
    Cents, CheckpointUpdate, EpochBatch, EventTime, LiveStreams, PostgresConfig, PostgresSink, Row, RowChange,
    Settings, Sink, WindowConfig,
};
use streamflow_testkit::Postgres;

const MINUTE: i64 = 60_000_000;

/// `rows` rows of commit `commit`: 1,000 streams over consecutive minutes, `round` in every value.
fn batch(commit: usize, rows: usize, round: u64) -> EpochBatch {
    let start = EventTime::parse_rfc3339("2025-12-20T00:00:00Z").unwrap();
    let rows = (0..rows)
        .map(|i| {
            let n = commit * rows + i;
            let window_start = EventTime(start.micros() + (n / 1000) as i64 * MINUTE);
            RowChange::Update(Row {
                window_start,
                window_end: EventTime(window_start.micros() + MINUTE),
                stream_id: format!("stream_{}", 1000 + n % 1000).into(),
                events: 40 + round,
                chat_messages: 17 + round,
                donations_count: 3,
                donations_usd: Cents(12_345 + round as i64),
                viewer_joins: 12,
                viewer_leaves: 9,
                net_viewer_delta: 3,
                unique_viewers: 21,
                active_viewers: 140 + round,
            })
        })
        .collect();
    EpochBatch { epoch: commit as u64, rows, dead_letters: Vec::new(), checkpoint: CheckpointUpdate::default() }
}

/// Applies `commits` batches, each its own transaction; rows per second.
fn phase(url: &str, rows: usize, commits: usize, round: u64) -> (f64, Duration) {
    let mut config = PostgresConfig::new(url, "bench", "bench");
    config.commit_interval = Duration::ZERO;
    let mut sink = PostgresSink::connect(config).unwrap();
    let settings = Settings { window: WindowConfig::default(), columns: LiveStreams.columns().fingerprint() };
    Sink::<Row>::checkpoint(&mut sink, &settings).unwrap();
    let stats: std::sync::Arc<PostgresStats> = sink.stats();
    let batches: Vec<EpochBatch> = (0..commits).map(|c| batch(c, rows, round)).collect();
    let started = Instant::now();
    let commits_before = stats.commits.load(Relaxed);
    for (done, batch) in batches.into_iter().enumerate() {
        sink.apply(batch).unwrap();
        // One batch a transaction: wait for it before the next.
        while stats.commits.load(Relaxed) < commits_before + done as u64 + 1 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    Sink::<Row>::finish(&mut sink).unwrap();
    let took = started.elapsed();
    let written = stats.rows_written.load(Relaxed);
    assert_eq!(written, (rows * commits) as u64);
    (written as f64 / took.as_secs_f64(), stats.commit_latency(0.5).unwrap_or_default())
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rows = args.first().copied().unwrap_or(50_000);
    let commits = args.get(1).copied().unwrap_or(10);
    let pg = match Postgres::start() {
        Ok(pg) => pg,
        Err(error) => {
            eprintln!(
                "sink_upsert: no PostgreSQL to measure against ({error}); scripts/install-test-deps.sh installs it"
            );
            return;
        }
    };
    for (name, round) in [("insert (new windows)", 0), ("update (the same windows again)", 1)] {
        let (rate, median) = phase(&pg.url(), rows, commits, round);
        println!(
            "sink_upsert/{name}: {rows} rows × {commits} commits: {:.0} rows/s, commit p50 {:.1} ms",
            rate,
            median.as_secs_f64() * 1e3
        );
    }
}
