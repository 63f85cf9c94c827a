//! `streamflow replay`: the pipeline over a JSON-lines file; the final rows as CSV, or into
//! PostgreSQL exactly once with `--database-url`.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use streamflow_core::source::NoSource;
use streamflow_core::{
    FileSource, Kafka, KafkaConfig, LiveStreams, MemorySink, MetricsSnapshot, Pipeline, PostgresSink, Source,
    SourceContext, SourceError, StartOffsets,
};

use streamflow_runner::stop_on_signals;

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = args.pipeline.config()?;
    tracing::info!(?args, "Replaying.");
    let (name, sources) = sources(&args)?;
    let cluster =
        args.pipeline.cluster.config(&[("source", &name), ("pipeline name", &args.database.pipeline_name)])?;
    let pipeline = match cluster {
        Some(cluster) => Pipeline::new(config).in_cluster(cluster),
        None => Pipeline::new(config),
    };
    let started = Instant::now();
    // In a cluster, process 0 writes the results; the others compute.
    let writes = args.pipeline.cluster.writes_results();

    let Some(sink_config) = args.database.postgres(&name).filter(|_| writes) else {
        let sink = MemorySink::new();
        let table = sink.table();
        let running = pipeline.spawn(sources, sink).context("the replay failed")?;
        let mesh = running.mesh().cloned();
        let metrics = running.join().context("the replay failed")?;
        report(&metrics, started.elapsed());
        super::log_exchanged(mesh.as_ref(), metrics.records);
        if writes && args.database.database_url.is_none() {
            let mut out = BufWriter::new(io::stdout().lock());
            streamflow_core::csv::write_rows(&mut out, LiveStreams::columns(), &table.rows())
                .context("cannot write the rows")?;
            out.flush().context("cannot write the rows")?;
        }
        return Ok(());
    };
    let sink = PostgresSink::connect(sink_config).context("cannot use the database")?;
    let stats = sink.stats();
    let running = pipeline.spawn(sources, sink).context("the replay failed")?;
    // A stopped replay has committed what it read; the next one resumes there.
    let control = running.control();
    let signals = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || signals.block_on(stop_on_signals(move || control.stop())));
    let mesh = running.mesh().cloned();
    let metrics = running.join().context("the replay failed")?;
    report(&metrics, started.elapsed());
    super::log_exchanged(mesh.as_ref(), metrics.records);
    let ms = |q: f64| stats.commit_latency(q).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    eprintln!(
        "postgres: {} commits, {} row upserts, {} dead letters, {} retries; commit latency p50 {:.1} ms, p99 {:.1} ms",
        stats.commits.load(Relaxed),
        stats.rows_written.load(Relaxed),
        stats.dead_letters_written.load(Relaxed),
        stats.retries.load(Relaxed),
        ms(0.5),
        ms(0.99),
    );
    Ok(())
}

/// What reads the input, by worker: the name its offsets are stored under, and the factory.
type Sources = Box<dyn Fn(&SourceContext) -> Result<Box<dyn Source>, SourceError> + Send + Sync>;

/// The file of `--input`, read by the worker that owns its one partition; or the Kafka topic of
/// `--brokers`, each partition to where it ends now.
fn sources(args: &ReplayArgs) -> anyhow::Result<(String, Sources)> {
    if let Some(brokers) = &args.brokers {
        let topic = args.topic.clone().unwrap_or_else(|| "stream.events".to_owned());
        let mut config = KafkaConfig::new(brokers.clone(), &topic);
        config.security = args.security.security()?;
        config.start = StartOffsets::Earliest;
        config.until_end = true;
        config.idle_timeout = None;
        let kafka = Arc::new(Kafka::connect(config).context("cannot use Kafka")?);
        let sources =
            move |ctx: &SourceContext| -> Result<Box<dyn Source>, SourceError> { Ok(Box::new(kafka.source(ctx))) };
        return Ok((topic, Box::new(sources)));
    }
    let input = args.input.clone().expect("clap requires --input without --brokers");
    let name = args.topic.clone().unwrap_or_else(|| match input.file_name() {
        Some(name) if input.as_os_str() != "-" => name.to_string_lossy().into_owned(),
        _ => "stdin".to_owned(),
    });
    if !args.pipeline.cluster.writes_results() {
        // The file is one partition, which worker 0 reads: process 0's.
        let sources = |_: &SourceContext| -> Result<Box<dyn Source>, SourceError> { Ok(Box::new(NoSource)) };
        return Ok((name, Box::new(sources)));
    }
    let source = FileSource::open(&input).with_context(|| format!("cannot open {}", input.display()))?;
    let source = Mutex::new(Some(source));
    let sources = move |ctx: &SourceContext| -> Result<Box<dyn Source>, SourceError> {
        // One partition, read by the worker that owns it (the pipeline resumes it).
        let taken = ctx.owns(FileSource::PARTITION).then(|| source.lock().unwrap_or_else(|e| e.into_inner()).take());
        match taken.flatten() {
            Some(source) => Ok(Box::new(source)),
            None => Ok(Box::new(NoSource)),
        }
    };
    Ok((name, Box::new(sources)))
}

/// The replay's figures on standard error.
pub fn report(metrics: &MetricsSnapshot, elapsed: Duration) {
    eprintln!(
        "replayed {} records ({} accepted, {} dead letters) in {:.2} s: {:.0} records/s",
        metrics.records,
        metrics.accepted,
        metrics.dead_letters_total(),
        elapsed.as_secs_f64(),
        metrics.records as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    for (reason, count) in &metrics.dead_letters {
        eprintln!("dead letters\t{reason}\t{count}");
    }
}
