//! `streamflow run`: Kafka → dataflow → PostgreSQL (or an in-memory table without a database),
//! with the HTTP API in the same process when asked, until SIGTERM or SIGINT, which stop the
//! pipeline at the end of the current epoch with everything read committed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use streamflow_core::kafka::ClientConfig;
use streamflow_core::{
    Kafka, KafkaConfig, LiveStreams, MemorySink, Pipeline, PostgresSink, RunningPipeline, Sink, Source, SourceContext,
    SourceError,
};
use streamflow_runner::api::{self, Store, Telemetry};
use streamflow_runner::stop_on_signals;

use crate::cli::RunArgs;

/// How often the pipeline's figures are logged.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// What to serve over HTTP beside the pipeline.
struct Http {
    addr: SocketAddr,
    store: Store,
    telemetry: Arc<Telemetry>,
    cache_ttl: Duration,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    tracing::info!(?args, "Starting.");
    let config = args.pipeline.config()?;
    let mut kafka = KafkaConfig::new(args.kafka.brokers.clone(), &args.kafka.topic);
    kafka.security = args.kafka.security.security()?;
    kafka.start = args.start_offsets;
    kafka.idle_timeout = (args.idle_timeout_seconds > 0).then(|| Duration::from_secs(args.idle_timeout_seconds));
    kafka.metadata_refresh = Duration::from_secs(args.metadata_refresh_seconds);
    let telemetry = Arc::new(Telemetry::default());
    let cache_ttl = Duration::from_millis(args.api_cache_ms);

    let has_database = if args.database.database_url.is_some() { "yes" } else { "no" };
    let cluster = args.pipeline.cluster.config(&[
        ("topic", &args.kafka.topic),
        ("pipeline name", &args.database.pipeline_name),
        ("writes into a database", has_database),
    ])?;
    let pipeline = match cluster {
        Some(cluster) => Pipeline::new(config).in_cluster(cluster),
        None => Pipeline::new(config),
    };

    match args.database.postgres(&args.kafka.topic) {
        Some(postgres) if args.pipeline.cluster.writes_results() => {
            let url = postgres.url.clone();
            let (offsets, committed) = super::group::channel();
            let metrics = Arc::clone(pipeline.metrics());
            let sink = PostgresSink::connect(postgres).context("cannot use the database")?.on_commit(move |at| {
                metrics.committed(at);
                let _ = offsets.send(at.clone());
            });
            let group = GroupCommit {
                client: ClientConfig { security: kafka.security.clone(), ..ClientConfig::new(kafka.brokers.clone()) },
                group: args.consumer_group.clone().unwrap_or_else(|| args.database.pipeline_name.clone()),
                topic: args.kafka.topic.clone(),
                committed,
            };
            let stats = sink.stats();
            telemetry.with_postgres(Arc::clone(&stats));
            let http = args.http_addr.map(|addr| {
                Ok::<_, anyhow::Error>(Http {
                    addr,
                    store: Store::postgres(&url, LiveStreams::columns())?,
                    telemetry,
                    cache_ttl,
                })
            });
            run_pipeline(pipeline, kafka, sink, http.transpose()?, Some(group))?;
            let ms = |q: f64| stats.commit_latency(q).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
            tracing::info!(
                commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed),
                p50_ms = format!("{:.1}", ms(0.5)),
                p99_ms = format!("{:.1}", ms(0.99)),
                "Commit latency."
            );
            Ok(())
        }
        Some(postgres) => {
            // Process 0 of the cluster writes; this one computes, and serves what was written.
            let http = args.http_addr.map(|addr| {
                Ok::<_, anyhow::Error>(Http {
                    addr,
                    store: Store::postgres(&postgres.url, LiveStreams::columns())?,
                    telemetry,
                    cache_ttl,
                })
            });
            run_pipeline(pipeline, kafka, MemorySink::new(), http.transpose()?, None)
        }
        None => {
            tracing::warn!("No --database-url: the results stay in memory and are lost when the process stops.");
            if !args.pipeline.cluster.writes_results() {
                tracing::warn!("In a cluster the in-memory table is process 0's; this process's API has no rows.");
            }
            let sink = MemorySink::with_retention(Duration::from_secs(7 * 24 * 3600));
            let http = args.http_addr.map(|addr| Http {
                addr,
                store: Store::memory(sink.table(), LiveStreams::columns()),
                telemetry,
                cache_ttl,
            });
            run_pipeline(pipeline, kafka, sink, http, None)
        }
    }
}

/// Where the consumer group's offsets go after each commit.
struct GroupCommit {
    client: ClientConfig,
    group: String,
    topic: String,
    committed: super::group::Offsets,
}

fn run_pipeline(
    pipeline: Pipeline,
    kafka: KafkaConfig,
    sink: impl Sink,
    http: Option<Http>,
    group: Option<GroupCommit>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let topic = kafka.topic.clone();
    let group = group.map(|g| runtime.spawn(super::group::commit(g.client, g.group, g.topic, g.committed)));
    let kafka = Arc::new(Kafka::connect(kafka).context("cannot use Kafka")?);
    let sources =
        move |ctx: &SourceContext| -> Result<Box<dyn Source>, SourceError> { Ok(Box::new(kafka.source(ctx))) };
    let running = pipeline.spawn(sources, sink).context("cannot start the pipeline")?;

    let control = running.control();
    runtime.spawn(stop_on_signals(move || control.stop()));
    let (stopped, on_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = http.map(|http| {
        http.telemetry.with_pipeline(Arc::clone(running.control().metrics()), &topic);
        runtime.spawn(api::serve(http.addr, http.store, http.telemetry, http.cache_ttl, async {
            let _ = on_stopped.await;
        }))
    });

    log_status_until_finished(&running);
    let mesh = running.mesh().cloned();
    let result = running.join().context("the pipeline failed");
    let _ = stopped.send(());
    if let Some(group) = group {
        // The sink is gone: its last commit is the group's last.
        let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), group).await });
    }
    if let Some(server) = server {
        runtime.block_on(server)?.context("the HTTP API failed")?;
    }
    let metrics = result?;
    super::log_exchanged(mesh.as_ref(), metrics.records);
    tracing::info!(records = metrics.records, dead_letters = metrics.dead_letters_total(), "Stopped.");
    Ok(())
}

fn log_status_until_finished(running: &RunningPipeline) {
    let mut last = (Instant::now(), 0u64);
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if last.0.elapsed() < STATUS_EVERY {
            continue;
        }
        let metrics = running.metrics();
        let rate = (metrics.records - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), metrics.records);
        let lag: i64 = metrics.per_partition.values().filter_map(|p| p.lag).sum();
        tracing::info!(
            records = metrics.records,
            per_second = rate.round(),
            lag,
            dead_letters = metrics.dead_letters_total(),
            watermark = %metrics.pipeline_watermark.map(|w| w.to_string()).unwrap_or_default(),
            open_windows = metrics.open_windows,
            "Running."
        );
    }
}
