//! The command line: [`Cli`] and its subcommands. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Real-time streaming analytics of live-streaming events: per-minute metrics per stream.
#[derive(Debug, Parser)]
#[command(name = "streamflow", version, about)]
pub struct Cli {
    /// Log filter (`info`, `debug`, `streamflow_core=debug`, …); `STREAMFLOW_LOG` overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline over a JSON-lines file and print the final rows as CSV.
    Replay(ReplayArgs),
    /// Generate the original pipeline's events.
    Generate(GenerateArgs),
}

/// Window size, lateness and workers: how the pipeline computes.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Window size in seconds; a whole number that divides a day.
    #[arg(long, env = "WINDOW_SECONDS", default_value_t = 60)]
    pub window_seconds: u32,
    /// Allowed lateness in seconds.
    #[arg(long, env = "LATENESS_SECONDS", default_value_t = 600)]
    pub lateness_seconds: u32,
    /// Timely worker threads.
    #[arg(long, env = "WORKERS", default_value_t = 2)]
    pub workers: usize,
}

/// Where results go when they go to PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Write into this PostgreSQL database (`postgres://user:password@host:port/database`),
    /// exactly once: a run started again resumes where the last one stopped.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The name this pipeline's offsets, checkpoints and dead letters are stored under.
    #[arg(long, env = "PIPELINE_NAME", default_value = "streamflow")]
    pub pipeline_name: String,
    /// Milliseconds between two commits to the database.
    #[arg(long, env = "COMMIT_INTERVAL_MS", default_value_t = 500)]
    pub commit_interval_ms: u64,
}

/// `streamflow replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The JSON-lines file to read, one event per line; `-` for standard input. Its offsets are
    /// line numbers counted from 0, in one partition.
    #[arg(long, short)]
    pub input: PathBuf,
    /// The name the input's offsets are stored under in the database (default: the file's name).
    #[arg(long)]
    pub topic: Option<String>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `streamflow generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write the events as JSON lines to this file (`-` for standard output).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Streams `stream_1001`, `stream_1002`, …
    #[arg(long, default_value_t = 3)]
    pub streams: u32,
    /// Users `user_1` … `user_N`.
    #[arg(long, default_value_t = 500)]
    pub users: u32,
    /// Events per second of event time.
    #[arg(long, default_value_t = 20.0)]
    pub event_rate: f64,
    /// Seed of every random choice: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The event time of the first event (RFC 3339).
    #[arg(long, default_value = "2025-12-20T18:00:00Z")]
    pub start: String,
    /// Share of events an hour or more late.
    #[arg(long, default_value_t = 0.0)]
    pub late_ratio: f64,
    /// Share of malformed events.
    #[arg(long, default_value_t = 0.0)]
    pub bad_ratio: f64,
}
