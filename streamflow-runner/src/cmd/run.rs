//! `streamflow run`: Kafka → dataflow → PostgreSQL (or an in-memory table without a database),
//! until SIGTERM or SIGINT, which stop it at the end of the current epoch with everything read
//! committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use streamflow_core::{
    Control, Kafka, KafkaConfig, MemorySink, Pipeline, PipelineConfig, PostgresSink, RunningPipeline, Sink, Source,
    SourceContext, SourceError,
};

use crate::cli::RunArgs;

/// How often the pipeline's figures are logged.
const STATUS_EVERY: Duration = Duration::from_secs(10);

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    tracing::info!(?args, "Starting.");
    let config = args.pipeline.config()?;
    let mut kafka = KafkaConfig::new(args.kafka.brokers.clone(), &args.kafka.topic);
    kafka.start = args.start_offsets;
    kafka.idle_timeout = (args.idle_timeout_seconds > 0).then(|| Duration::from_secs(args.idle_timeout_seconds));

    match args.database.postgres(&args.kafka.topic) {
        Some(postgres) => {
            let sink = PostgresSink::connect(postgres).context("cannot use the database")?;
            run_pipeline(config, kafka, sink)
        }
        None => {
            tracing::warn!("No --database-url: the results stay in memory and are lost when the process stops.");
            run_pipeline(config, kafka, MemorySink::with_retention(Duration::from_secs(7 * 24 * 3600)))
        }
    }
}

fn run_pipeline(config: PipelineConfig, kafka: KafkaConfig, sink: impl Sink) -> anyhow::Result<()> {
    let kafka = Arc::new(Kafka::connect(kafka).context("cannot use Kafka")?);
    let sources =
        move |ctx: &SourceContext| -> Result<Box<dyn Source>, SourceError> { Ok(Box::new(kafka.source(ctx)?)) };
    let running = Pipeline::new(config).spawn(sources, sink).context("cannot start the pipeline")?;
    stop_on_signal(running.control())?;
    log_status_until_finished(&running);
    let metrics = running.join().context("the pipeline failed")?;
    tracing::info!(records = metrics.records, dead_letters = metrics.dead_letters_total(), "Stopped.");
    Ok(())
}

/// Stops the pipeline on SIGTERM or SIGINT.
fn stop_on_signal(control: Control) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        runtime.block_on(async {
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM can be handled");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        });
        tracing::info!("Stopping: finishing the current epoch and committing it.");
        control.stop();
    })?;
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
