//! The whole pipeline embedded in one program, no services needed: the seeded event generator
//! feeds the dataflow, which keeps its rows in an in-memory table; once a second the program
//! prints the top streams of the newest minute, the throughput and the dead letters.
//!
//! ```text
//! cargo run --release --example pipeline                      # 5,000,000 events, as fast as possible
//! cargo run --release --example pipeline -- --events 200000
//! cargo run --release --example pipeline -- --rate 20 --events 0   # the original's 20 events/s, live, until Ctrl-C
//! cargo run --release --example pipeline -- --rate 200 --events 0 --http-addr 127.0.0.1:8000   # and the API
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use streamflow_core::{
    EventTime, GeneratorConfig, GeneratorSource, LiveStreams, MemorySink, MetricsSnapshot, Pipeline, PipelineConfig,
    Table,
};
use streamflow_runner::api::{self, Store, Telemetry};
use streamflow_runner::stop_on_signals;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the generator → dataflow → in-memory table pipeline and shows it live.
#[derive(Debug, Parser)]
struct Args {
    /// Events to generate; 0 for no end.
    #[arg(long, default_value_t = 5_000_000)]
    events: u64,
    /// Events per second of real time, with event times following the clock; 0 for as fast as
    /// possible, with event times at 2,000 a second from 2025-12-20T18:00:00Z.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Streams.
    #[arg(long, default_value_t = 3)]
    streams: u32,
    /// Partitions the streams are spread over.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Timely worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Share of malformed events.
    #[arg(long, default_value_t = 0.001)]
    bad_ratio: f64,
    /// Share of events an hour late.
    #[arg(long, default_value_t = 0.001)]
    late_ratio: f64,
    /// Serve the HTTP API (`/metrics`, `/streams/top`, …) from the live table on this address.
    #[arg(long)]
    http_addr: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let live = args.rate > 0.0;
    let generator = GeneratorConfig {
        events: (args.events > 0).then_some(args.events),
        streams: args.streams,
        partitions: args.partitions.min(args.streams),
        event_rate: if live { args.rate } else { 2_000.0 },
        start: if live { EventTime::now() } else { GeneratorConfig::default().start },
        real_time: live,
        bad_ratio: args.bad_ratio,
        late_ratio: args.late_ratio,
        ..GeneratorConfig::default()
    };
    generator.validate()?;
    // An hour of windows is plenty to look at; older rows leave memory.
    let sink = MemorySink::with_retention(Duration::from_secs(3600));
    let table = sink.table();
    let config = PipelineConfig { workers: args.workers, ..PipelineConfig::default() };
    let started = Instant::now();
    let running = Pipeline::new(config)
        .spawn(move |ctx| Ok(Box::new(GeneratorSource::new(&generator, ctx.worker, ctx.peers)?)), sink)?;

    // The same routes as `streamflow serve`, answered from the in-memory table.
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(addr) = args.http_addr {
        let telemetry = Arc::new(Telemetry::default());
        telemetry.with_pipeline(Arc::clone(running.control().metrics()), "generator");
        let store = Store::memory(table.clone(), LiveStreams::columns());
        runtime.spawn(api::serve(addr, store, telemetry, api::DEFAULT_CACHE_TTL, std::future::pending()));
    }
    // Ctrl-C or SIGTERM stops the pipeline; what it read is shown.
    let control = running.control();
    runtime.spawn(stop_on_signals(move || control.stop()));

    let mut last = (Instant::now(), 0u64);
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        if last.0.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let metrics = running.metrics();
        let rate = (metrics.records - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), metrics.records);
        show(&table, &metrics, rate);
    }
    let metrics = running.join()?;
    let elapsed = started.elapsed().as_secs_f64();
    show(&table, &metrics, metrics.records as f64 / elapsed);
    println!(
        "done: {} events in {elapsed:.2} s, {:.0} events/s overall",
        metrics.records,
        metrics.records as f64 / elapsed
    );
    Ok(())
}

/// Prints the newest minute's top streams by events, and the pipeline's figures.
fn show(table: &Table, metrics: &MetricsSnapshot, rate: f64) {
    let state = table.read();
    let Some(latest) = state.latest_window() else {
        println!("waiting for events ({} read)", metrics.records);
        return;
    };
    let mut rows: Vec<_> = state.rows_between(latest, latest.plus_micros(1)).map(|r| &r.row).collect();
    rows.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.stream_id.cmp(&b.stream_id)));
    println!(
        "\nminute {latest}   {rate:>10.0} events/s   {} events   {} dead letters   {} open windows",
        metrics.records,
        metrics.dead_letters_total(),
        metrics.open_windows
    );
    println!(
        "  {:<14} {:>8} {:>8} {:>10} {:>12} {:>8} {:>8}",
        "stream", "events", "chats", "donations", "usd", "unique", "active"
    );
    for row in rows.iter().take(5) {
        println!(
            "  {:<14} {:>8} {:>8} {:>10} {:>12} {:>8} {:>8}",
            row.stream_id,
            row.events,
            row.chat_messages,
            row.donations_count,
            row.donations_usd,
            row.unique_viewers,
            row.active_viewers
        );
    }
    if !metrics.dead_letters.is_empty() {
        let reasons: Vec<String> = metrics.dead_letters.iter().map(|(reason, n)| format!("{reason}={n}")).collect();
        println!("  dead letters: {}", reasons.join(" "));
    }
}
