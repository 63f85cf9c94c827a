//! `streamflow generate`: the original pipeline's events, seeded and deterministic, into Kafka
//! (keyed by `stream_id`, one producer per partition) or into a JSON-lines file.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use streamflow_core::kafka::{Compression, PartitionProducer, Produced};
use streamflow_core::{EventTime, Generator, GeneratorConfig};

use crate::cli::{CompressionArg, GenerateArgs};

/// Records per produce request.
const BATCH_RECORDS: usize = 2_000;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate >= 0.0 && args.rate.is_finite(), "--rate must be 0 or more");
    let start = match &args.start {
        Some(text) => EventTime::parse_rfc3339(text).with_context(|| format!("--start {text:?}"))?,
        None => EventTime::now(),
    };
    let config = GeneratorConfig {
        seed: args.seed,
        streams: args.streams,
        users: args.users,
        events: (args.count > 0).then_some(args.count),
        event_rate: args.event_rate.unwrap_or(if args.rate > 0.0 { args.rate } else { 20.0 }),
        start,
        partitions: args.partitions.min(args.streams),
        late_ratio: args.late_ratio,
        bad_ratio: args.bad_ratio,
        real_time: false,
        audience: args.audience.into(),
    };
    config.validate()?;
    tracing::info!(?args, "Generating.");
    match &args.output {
        Some(path) => to_file(&config, path),
        None => tokio::runtime::Runtime::new()?.block_on(to_kafka(&config, &args)),
    }
}

/// Writes the partitions' events to one file, taking turns between partitions as a live log
/// interleaves them.
fn to_file(config: &GeneratorConfig, path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(config.events.is_some(), "--count must be more than 0 with --output");
    let mut out: Box<dyn Write> = if path.as_os_str() == "-" {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    let mut generators: Vec<Generator> = (0..config.partitions).map(|p| Generator::new(config, p)).collect();
    let mut payload = Vec::new();
    let mut written = 0u64;
    while !generators.is_empty() {
        generators.retain_mut(|generator| {
            if generator.next_into(&mut payload).is_none() {
                return false;
            }
            written += 1;
            out.write_all(&payload).and_then(|()| out.write_all(b"\n")).is_ok()
        });
    }
    out.flush().with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(events = written, output = %path.display(), "Generated.");
    Ok(())
}

/// Snappy is left out on purpose: some Kafka-compatible brokers cannot serve it back.
fn compression(choice: CompressionArg) -> Compression {
    match choice {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    }
}

async fn to_kafka(config: &GeneratorConfig, args: &GenerateArgs) -> anyhow::Result<()> {
    let compression = compression(args.compression);
    let topic = &args.kafka.topic;
    let client = super::kafka_client(&args.kafka).await?;
    let partitions = match super::topic_partitions(&client, &args.kafka).await? {
        Some(found) => found.len() as u32,
        None => {
            let partitions = i32::try_from(config.partitions)?;
            client
                .create_topic(topic, partitions, 1)
                .await
                .with_context(|| format!("cannot create the topic {topic}"))?;
            tracing::info!(topic = %topic, partitions, "Created the topic.");
            // The topic's metadata may take a moment to spread.
            while super::topic_partitions(&client, &args.kafka)
                .await?
                .is_none_or(|p| p.len() < config.partitions as usize)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            config.partitions
        }
    };
    anyhow::ensure!(
        partitions == config.partitions,
        "the topic {topic} has {partitions} partitions; run with --partitions {partitions}"
    );

    let produced = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for partition in 0..config.partitions {
        let producer = PartitionProducer::new(Arc::clone(&client), topic, partition);
        let generator = Generator::new(config, partition);
        let rate = args.rate / f64::from(config.partitions);
        let (produced, errors) = (Arc::clone(&produced), Arc::clone(&errors));
        producers.push(tokio::spawn(async move {
            produce(producer, generator, compression, rate, &produced, &errors).await
        }));
    }

    let progress = tokio::spawn(show_progress(Arc::clone(&produced), Arc::clone(&errors)));
    let mut result = Ok(());
    for producer in producers {
        if let Err(error) = producer.await? {
            result = Err(error);
        }
    }
    progress.abort();
    let total = produced.load(Relaxed);
    eprintln!();
    tracing::info!(events = total, errors = errors.load(Relaxed), topic = %topic, "Generated.");
    result
}

/// Attempts of a produce request before the generator gives up: about a minute of a broker
/// that is gone.
const PRODUCE_ATTEMPTS: u32 = 16;

/// Produces one partition's events in batches, `rate` a second (0: as fast as possible).
async fn produce(
    mut producer: PartitionProducer,
    mut generator: Generator,
    compression: Compression,
    rate: f64,
    produced: &AtomicU64,
    errors: &AtomicU64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut payload = Vec::new();
    let mut records = Vec::with_capacity(BATCH_RECORDS);
    loop {
        // At a rate, a batch holds what is due now (at least one event), so events leave on time.
        let due = if rate > 0.0 {
            let ahead = sent as f64 / rate - started.elapsed().as_secs_f64();
            if ahead > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(ahead)).await;
            }
            ((started.elapsed().as_secs_f64() * rate) as u64).saturating_sub(sent).clamp(1, BATCH_RECORDS as u64)
        } else {
            BATCH_RECORDS as u64
        };
        let now = EventTime::now().micros() / 1_000;
        while (records.len() as u64) < due {
            let Some(key) = generator.next_into(&mut payload) else { break };
            records.push(Produced {
                key: key.map(|k| k.as_bytes().to_vec()),
                value: payload.clone(),
                timestamp_ms: now,
            });
        }
        if records.is_empty() {
            return Ok(());
        }
        let count = records.len() as u64;
        match producer.produce(&records, compression, PRODUCE_ATTEMPTS).await {
            Ok(_) => {
                sent += count;
                produced.fetch_add(count, Relaxed);
                records.clear();
            }
            Err(error) => {
                errors.fetch_add(count, Relaxed);
                return Err(error).context("cannot produce to Kafka");
            }
        }
    }
}

/// A one-line progress display on standard error, rewritten once a second on a terminal.
async fn show_progress(produced: Arc<AtomicU64>, errors: Arc<AtomicU64>) {
    let terminal = io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let total = produced.load(Relaxed);
        let rate = (total - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), total);
        let line = format!(
            "generated {total} events, {rate:.0}/s, {} errors, {:.0} s",
            errors.load(Relaxed),
            started.elapsed().as_secs_f64()
        );
        if terminal {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }
}
