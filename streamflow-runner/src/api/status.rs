//! `GET /status`: what the dashboard page shows beside the rankings, as JSON — the columns it
//! may rank and chart, how fresh the answers are, and, when the pipeline runs in this process,
//! its figures: records read, lag and watermark per partition, dead letters by reason, commit
//! latency. `streamflow serve` has no pipeline of its own: `pipeline` is null and the dead
//! letters come from the database.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use serde::Serialize;
use streamflow_core::schema::{Kind, Number};
use streamflow_core::{EventTime, PartitionState};

use super::handlers::{Answer, Failure};
use super::store::{Freshness, Store};
use super::telemetry::Telemetry;

#[derive(Serialize)]
struct ColumnJson<'a> {
    name: &'a str,
    kind: &'static str,
    /// Digits after the point of a decimal column, 0 for an integer one.
    scale: u8,
    ranked: bool,
    doc: &'a str,
}

/// How fresh the answers are, as JSON.
#[derive(Serialize)]
pub struct FreshnessJson {
    /// The pipeline watermark at the last commit: windows ending at or before it are final.
    pub watermark: Option<String>,
    /// How far the watermark is behind the clock, in seconds.
    pub watermark_delay_seconds: Option<f64>,
    /// When the last commit was.
    pub last_commit: Option<String>,
    /// How long ago, in seconds.
    pub seconds_since_commit: Option<f64>,
}

impl FreshnessJson {
    /// `freshness` as of now.
    pub fn of(freshness: Freshness) -> FreshnessJson {
        let now = EventTime::now();
        let seconds = |micros: i64| micros as f64 / 1e6;
        let last_commit = freshness.last_commit.map(EventTime::from);
        FreshnessJson {
            watermark: freshness.watermark.map(|w| w.to_string()),
            watermark_delay_seconds: freshness.watermark.map(|w| seconds(now.micros() - w.micros())),
            last_commit: last_commit.map(|t| t.to_string()),
            seconds_since_commit: last_commit.map(|t| seconds(now.micros() - t.micros()).max(0.0)),
        }
    }
}

#[derive(Serialize)]
struct PartitionJson {
    partition: u32,
    records: u64,
    next_offset: i64,
    lag: Option<i64>,
    watermark: Option<String>,
    state: &'static str,
}

#[derive(Serialize)]
struct PipelineJson {
    records: u64,
    accepted: u64,
    open_windows: i64,
    partitions: Vec<PartitionJson>,
    commits: Option<u64>,
    commit_latency_ms: Option<BTreeMap<&'static str, f64>>,
    database_up: Option<bool>,
}

#[derive(Serialize)]
struct Status<'a> {
    now: String,
    table: &'a str,
    keys: &'a str,
    key: &'a str,
    default_by: Option<&'a str>,
    columns: Vec<ColumnJson<'a>>,
    freshness: FreshnessJson,
    dead_letters: BTreeMap<String, u64>,
    pipeline: Option<PipelineJson>,
}

/// `GET /status`.
pub async fn status(store: Store, telemetry: &Telemetry) -> Answer {
    let columns = store.columns();
    let freshness = FreshnessJson::of(store.freshness().await);
    let pipeline = telemetry.pipeline().map(|metrics| metrics.snapshot());
    let dead_letters = match &pipeline {
        Some(snapshot) => snapshot.dead_letters.iter().map(|(r, n)| (r.as_str().to_owned(), *n)).collect(),
        None => store.dead_letters().await.map_err(Failure::Unavailable)?,
    };
    let pipeline = pipeline.map(|snapshot| {
        let postgres = telemetry.postgres();
        let ms = |q: f64| postgres.and_then(|s| s.commit_latency(q)).map(|d| d.as_secs_f64() * 1e3);
        PipelineJson {
            records: snapshot.records,
            accepted: snapshot.accepted,
            open_windows: snapshot.open_windows,
            partitions: snapshot
                .per_partition
                .iter()
                .map(|(&partition, p)| PartitionJson {
                    partition,
                    records: p.records,
                    next_offset: p.next_offset,
                    lag: p.lag,
                    watermark: p.max_ts.map(|t| t.to_string()),
                    state: match p.state {
                        PartitionState::Active => "active",
                        PartitionState::Idle => "idle",
                        PartitionState::Finished => "finished",
                    },
                })
                .collect(),
            commits: postgres.map(|s| s.commits.load(Relaxed)),
            commit_latency_ms: ms(0.5).zip(ms(0.99)).map(|(p50, p99)| [("p50", p50), ("p99", p99)].into()),
            database_up: postgres.map(|s| s.database_up.load(Relaxed)),
        }
    });
    let status = Status {
        now: EventTime::from(SystemTime::now()).to_string(),
        table: columns.table(),
        keys: columns.keys(),
        key: columns.key(),
        default_by: columns.default_ranking().and_then(|i| columns.get(i)).map(|c| c.name.as_str()),
        columns: columns
            .iter()
            .map(|column| ColumnJson {
                name: &column.name,
                kind: match column.kind {
                    Kind::Sum => "sum",
                    Kind::Distinct => "distinct",
                    Kind::Min => "min",
                    Kind::Max => "max",
                    Kind::Running { .. } => "running",
                },
                scale: match column.number {
                    Number::Integer => 0,
                    Number::Decimal { scale } => scale,
                },
                ranked: column.ranked,
                doc: &column.doc,
            })
            .collect(),
        freshness,
        dead_letters,
        pipeline,
    };
    Ok(bytes::Bytes::from(serde_json::to_vec(&status).unwrap_or_default()))
}
