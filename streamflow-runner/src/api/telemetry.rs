//! The API's own figures, and `/prometheus`: requests and their latency per route, whether the
//! database answers, the process's CPU and memory, and — when the pipeline runs in the same
//! process — its figures (spec §7). Every series is described in `docs/metrics.md`.
//!
//! Names follow Prometheus' conventions: base units (`_seconds`, `_bytes`), `_total` for
//! counters, `_timestamp_seconds` for points in time. Labels stay few: a route is named by its
//! template (`/streams/{stream_id}/metrics`), never by the path a client sent; a partition by
//! its `topic` and `partition`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use streamflow_core::metrics::Histogram;
use streamflow_core::metrics::PartitionMetrics;
use streamflow_core::sink::postgres::PostgresStats;
use streamflow_core::Metrics;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::cache::AnswerCache;
use super::store::Store;

/// The routes, by template, the last for every path that is none of them.
const ROUTES: [&str; 14] = [
    "/",
    "/assets/{file}",
    "/health",
    "/health/live",
    "/health/ready",
    "/status",
    "/metrics",
    "/metrics/latest",
    "/{keys}/top",
    "/{keys}/top/live",
    "/{keys}/{key}/metrics",
    "/prometheus",
    "/openapi.json",
    "other",
];

/// The template a request's path was served by: the key's segments are not told apart.
fn route_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["assets", _] => "/assets/{file}",
        ["health"] => "/health",
        ["health", "live"] => "/health/live",
        ["health", "ready"] => "/health/ready",
        ["status"] => "/status",
        ["metrics"] => "/metrics",
        ["metrics", "latest"] => "/metrics/latest",
        ["openapi.json"] => "/openapi.json",
        ["prometheus"] => "/prometheus",
        [_, "top"] => "/{keys}/top",
        [_, "top", "live"] => "/{keys}/top/live",
        [_, _, "metrics"] => "/{keys}/{key}/metrics",
        _ => "other",
    }
}

/// Counters and histograms of the API, and handles on the pipeline's figures.
pub struct Telemetry {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: BTreeMap<&'static str, Histogram>,
    pipeline: OnceLock<(Arc<Metrics>, String)>,
    postgres: OnceLock<Arc<PostgresStats>>,
    cache: OnceLock<AnswerCache>,
    /// What the route templates' `{keys}` and `{key}` are: `streams`, `stream_id`.
    templates: OnceLock<(String, String)>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            requests: Mutex::default(),
            latency: ROUTES.iter().map(|&route| (route, Histogram::seconds())).collect(),
            pipeline: OnceLock::new(),
            postgres: OnceLock::new(),
            cache: OnceLock::new(),
            templates: OnceLock::new(),
        }
    }
}

impl Telemetry {
    /// Adds the figures of a pipeline running in this process, which reads `topic` (the label
    /// of its per-partition series).
    pub fn with_pipeline(&self, metrics: Arc<Metrics>, topic: &str) {
        let _ = self.pipeline.set((metrics, topic.to_owned()));
    }

    /// Adds the figures of the Postgres sink of a pipeline running in this process.
    pub fn with_postgres(&self, stats: Arc<PostgresStats>) {
        let _ = self.postgres.set(stats);
    }

    /// Names the routes by the table served: `/streams/{stream_id}/metrics`.
    pub fn with_routes(&self, keys: &str, key: &str) {
        let _ = self.templates.set((keys.to_owned(), format!("{{{key}}}")));
    }

    /// Adds the figures of the API's answer cache.
    pub fn with_cache(&self, cache: AnswerCache) {
        let _ = self.cache.set(cache);
    }

    /// The figures of a pipeline running in this process, if one does.
    pub fn pipeline(&self) -> Option<&Arc<Metrics>> {
        self.pipeline.get().map(|(metrics, _)| metrics)
    }

    /// The figures of its Postgres sink, if it has one.
    pub fn postgres(&self) -> Option<&Arc<PostgresStats>> {
        self.postgres.get()
    }

    /// Counts one answered request; `keys` and `key` name the routes of the served table.
    pub fn observe(&self, path: &str, status: StatusCode, took: Duration) {
        let route = route_of(path);
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route, status.as_u16())).or_default() += 1;
        if let Some(histogram) = self.latency.get(route) {
            histogram.observe(took);
        }
    }

    /// The Prometheus text exposition of everything.
    pub async fn render(&self, store: &Store) -> Response {
        let db_up = tokio::time::timeout(Duration::from_secs(1), store.health()).await.is_ok_and(|r| r.is_ok());
        let mut out = String::with_capacity(8 << 10);
        render_build(&mut out);
        render_process(&mut out);
        self.render_api(&mut out, db_up);
        if let Some(cache) = self.cache.get() {
            render_cache(&mut out, cache).await;
        }
        if let Some((metrics, topic)) = self.pipeline.get() {
            render_pipeline(&mut out, metrics, topic);
        }
        if let Some(stats) = self.postgres.get() {
            render_postgres(&mut out, stats);
        }
        warp::reply::with_header(out, "content-type", "text/plain; version=0.0.4").into_response()
    }

    fn render_api(&self, out: &mut String, db_up: bool) {
        header(out, "streamflow_http_requests_total", "counter", "HTTP requests answered, by route and status.");
        let label = |route: &str| {
            self.templates
                .get()
                .map_or(route.to_owned(), |(keys, key)| route.replace("{keys}", keys).replace("{key}", key))
        };
        for ((route, status), count) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "streamflow_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                label(route)
            );
        }
        let name = "streamflow_http_request_duration_seconds";
        header(out, name, "histogram", "Time to answer an HTTP request, by route.");
        for (route, histogram) in &self.latency {
            render_histogram(out, name, &format!("route=\"{}\"", label(route)), histogram);
        }
        header(out, "streamflow_db_up", "gauge", "Whether the API's database answers (1) or not (0).");
        let _ = writeln!(out, "streamflow_db_up {}", u8::from(db_up));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let (buckets, sum, count) = histogram.read();
    let separator = if labels.is_empty() { "" } else { "," };
    for (bound, cumulative) in buckets {
        let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
        let _ = writeln!(out, "{name}_bucket{{{labels}{separator}le=\"{le}\"}} {cumulative}");
    }
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {sum}\n{name}_count{braces} {count}");
}

async fn render_cache(out: &mut String, cache: &AnswerCache) {
    let stats = cache.stats();
    let counters = [
        ("streamflow_api_cache_hits_total", "API answers served from the cache.", stats.hits.load(Relaxed)),
        (
            "streamflow_api_cache_computed_total",
            "API answers computed (once for all the requests that missed one together).",
            stats.computed.load(Relaxed),
        ),
    ];
    for (name, help, value) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(out, "streamflow_api_cache_bytes", "gauge", "Bytes of answers the API cache holds.");
    let _ = writeln!(out, "streamflow_api_cache_bytes {}", cache.bytes().await);
}

/// `streamflow_build_info`: 1, labelled with what was built.
fn render_build(out: &mut String) {
    header(out, "streamflow_build_info", "gauge", "The version and commit of the running binary (always 1).");
    let (version, commit) = (env!("CARGO_PKG_VERSION"), env!("STREAMFLOW_COMMIT"));
    let _ = writeln!(out, "streamflow_build_info{{version=\"{version}\",commit=\"{commit}\"}} 1");
}

/// The standard `process_*` series, read from `/proc` (absent where there is none).
fn render_process(out: &mut String) {
    let Some(process) = ProcessFigures::read() else { return };
    let series = [
        ("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", process.cpu_seconds),
        ("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", process.resident_bytes),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size, in bytes.", process.virtual_bytes),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process, in seconds since 1970.",
            process.start_time,
        ),
        ("process_open_fds", "gauge", "Open file descriptors.", process.open_fds),
    ];
    for (name, kind, help, value) in series {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// What `/proc` says of this process.
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time: f64,
    open_fds: f64,
}

impl ProcessFigures {
    /// Linux reports times in `/proc` in ticks of 1/100 s whatever the kernel's own rate.
    const TICKS_PER_SECOND: f64 = 100.0;

    fn read() -> Option<ProcessFigures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
        };
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
        Some(ProcessFigures {
            cpu_seconds: (field(14)? + field(15)?) / Self::TICKS_PER_SECOND,
            resident_bytes: kib("VmRSS:")? * 1024.0,
            virtual_bytes: kib("VmSize:")? * 1024.0,
            start_time: boot_time + field(22)? / Self::TICKS_PER_SECOND,
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count()) as f64,
        })
    }
}

fn render_pipeline(out: &mut String, metrics: &Metrics, topic: &str) {
    let snapshot = metrics.snapshot();
    let topic = topic.replace('\\', "\\\\").replace('"', "\\\"");
    let per_partition =
        |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(&PartitionMetrics) -> Option<String>| {
            header(out, name, kind, help);
            for (partition, known) in &snapshot.per_partition {
                if let Some(value) = value(known) {
                    let _ = writeln!(out, "{name}{{topic=\"{topic}\",partition=\"{partition}\"}} {value}");
                }
            }
        };
    per_partition(
        out,
        "streamflow_records_read_total",
        "counter",
        "Records read, accepted or not, by partition.",
        &|p| Some(p.records.to_string()),
    );
    per_partition(
        out,
        "streamflow_consumer_lag",
        "gauge",
        "Records in the log beyond the next offset, by partition.",
        &|p| p.lag.map(|lag| lag.to_string()),
    );
    per_partition(
        out,
        "streamflow_partition_idle",
        "gauge",
        "Whether a partition is idle and does not hold the watermark back.",
        &|p| Some(u8::from(p.state == streamflow_core::PartitionState::Idle).to_string()),
    );
    per_partition(
        out,
        "streamflow_partition_watermark_timestamp_seconds",
        "gauge",
        "The largest event time read of a partition, in seconds since 1970.",
        &|p| p.max_ts.map(|ts| seconds_since_1970(ts.micros())),
    );
    header(
        out,
        "streamflow_dead_letters_total",
        "counter",
        "Records refused, by reason (late events are reason=\"late\").",
    );
    // Every reason of the schema, so that a rate has a series from the start; others as seen.
    let mut reasons: BTreeMap<streamflow_core::Reason, u64> =
        streamflow_core::streams::REASONS.iter().map(|&reason| (reason, 0)).collect();
    reasons.extend(snapshot.dead_letters.iter().map(|(&reason, &count)| (reason, count)));
    for (reason, count) in reasons {
        let _ = writeln!(out, "streamflow_dead_letters_total{{reason=\"{reason}\"}} {count}");
    }
    header(
        out,
        "streamflow_pipeline_watermark_timestamp_seconds",
        "gauge",
        "The pipeline watermark (the least of the partitions' that are not idle), in seconds since 1970.",
    );
    if let Some(watermark) = snapshot.pipeline_watermark {
        let _ =
            writeln!(out, "streamflow_pipeline_watermark_timestamp_seconds {}", seconds_since_1970(watermark.micros()));
    }
    let series = [
        ("streamflow_open_windows", "gauge", "(window, stream) pairs held in memory.", snapshot.open_windows),
        (
            "streamflow_open_windows_peak",
            "gauge",
            "The most (window, stream) pairs held at once.",
            snapshot.open_windows_peak,
        ),
        ("streamflow_epochs_total", "counter", "Epochs delivered to the sink.", snapshot.epochs as i64),
        ("streamflow_row_changes_total", "counter", "Row changes delivered to the sink.", snapshot.row_changes as i64),
    ];
    for (name, kind, help, value) in series {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let name = "streamflow_freshness_seconds";
    header(
        out,
        name,
        "histogram",
        "Per commit and partition, the age of the newest record committed: from its Kafka timestamp to the commit.",
    );
    render_histogram(out, name, "", metrics.freshness());
}

fn seconds_since_1970(micros: i64) -> String {
    format!("{:.6}", micros as f64 / 1e6)
}

fn render_postgres(out: &mut String, stats: &PostgresStats) {
    let name = "streamflow_commit_duration_seconds";
    header(out, name, "histogram", "Time to commit one transaction to PostgreSQL.");
    render_histogram(out, name, "", &stats.commit_seconds);
    let counters = [
        ("streamflow_commits_total", "Transactions committed.", &stats.commits),
        ("streamflow_rows_written_total", "Row upserts written.", &stats.rows_written),
        ("streamflow_dead_letters_written_total", "Dead letters written.", &stats.dead_letters_written),
        ("streamflow_commit_retries_total", "Failed commit attempts that were retried.", &stats.retries),
    ];
    for (name, help, value) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", value.load(Relaxed));
    }
    header(out, "streamflow_sink_db_up", "gauge", "Whether the sink's last attempt reached PostgreSQL (1) or not (0).");
    let _ = writeln!(out, "streamflow_sink_db_up {}", u8::from(stats.database_up.load(Relaxed)));
    let last = stats.last_commit_micros.load(Relaxed);
    header(
        out,
        "streamflow_last_commit_timestamp_seconds",
        "gauge",
        "When the sink's last successful commit ended, in seconds since 1970.",
    );
    if last > 0 {
        let _ = writeln!(out, "streamflow_last_commit_timestamp_seconds {}", seconds_since_1970(last));
    }
}

/// The figures in Prometheus' text format.
pub async fn prometheus_route(store: Store, telemetry: Arc<Telemetry>) -> Response {
    telemetry.render(&store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_counted_under_their_template() {
        assert_eq!(route_of("/streams/stream_1001/metrics"), "/{keys}/{key}/metrics");
        assert_eq!(route_of("/streams/top"), "/{keys}/top");
        assert_eq!(route_of("/metrics/"), "/metrics");
        assert_eq!(route_of("/etc/passwd"), "other");
    }
}
