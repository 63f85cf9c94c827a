//! The command line: [`Cli`] and its subcommands. Doc comments are the help text.

use std::path::PathBuf;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use streamflow_core::dataflow::ClusterConfig;
use streamflow_core::kafka::{Mechanism, Sasl, Security};
use streamflow_core::sink::postgres::redacted;
use streamflow_core::tls::TlsOptions;
use streamflow_core::{PipelineConfig, PostgresConfig, StartOffsets, WindowConfig};

/// Real-time streaming analytics of live-streaming events: per-minute metrics per stream.
#[derive(Debug, Parser)]
#[command(name = "streamflow", version = VERSION, about)]
pub struct Cli {
    /// Log filter (`info`, `debug`, `streamflow_core=debug`, …); default: `RUST_LOG`, else
    /// `info`.
    #[arg(long, global = true, env = "STREAMFLOW_LOG")]
    pub log: Option<String>,
    /// Log lines as text, or as JSON objects (one a line, for a log collector).
    #[arg(long, global = true, env = "STREAMFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The version and the commit it was built from (`--version`, `streamflow_build_info`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("STREAMFLOW_COMMIT"), ")");

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the fields.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: Kafka → dataflow → PostgreSQL (or memory, without a database).
    #[command(after_help = "Examples:\n  \
        streamflow run --brokers localhost:9092 --database-url postgres://rt:rt@localhost/realtime --http-addr 0.0.0.0:8000\n  \
        streamflow run --bootstrap-server broker:9093 --security-protocol sasl_ssl --sasl-mechanism scram-sha-512 \\\n      \
        --sasl-username streamflow --database-url 'postgres://rt@db/realtime?sslmode=verify-full' --log-format json")]
    Run(RunArgs),
    /// Run the pipeline over a JSON-lines file: the final rows as CSV, or into PostgreSQL.
    #[command(after_help = "Examples:\n  \
        streamflow replay --input events.jsonl > rows.csv\n  \
        streamflow replay --brokers localhost:9092 --topic stream.events --database-url postgres://… --pipeline-name backfill")]
    Replay(ReplayArgs),
    /// Generate the original pipeline's events, into Kafka or a JSON-lines file.
    #[command(after_help = "Examples:\n  \
        streamflow generate --brokers localhost:9092 --rate 20\n  \
        streamflow generate --output events.jsonl --count 1000000 --streams 1000 --late-ratio 0.01 --bad-ratio 0.01")]
    Generate(GenerateArgs),
    /// Serve the HTTP query API over the PostgreSQL tables.
    #[command(
        after_help = "Example:\n  streamflow serve --database-url postgres://rt:rt@localhost/realtime --http-addr 0.0.0.0:8000"
    )]
    Serve(ServeArgs),
    /// Produce JSON-lines events (a file or standard input) into Kafka, keyed by their stream_id.
    #[command(
        after_help = "Example:\n  streamflow produce --brokers localhost:9092 --topic stream.events --input events.jsonl"
    )]
    Produce(ProduceArgs),
    /// Show each partition's end of log and, with a database, the committed offset and the lag.
    #[command(
        after_help = "Example:\n  streamflow offsets --brokers localhost:9092 --database-url postgres://… --format json\n\n\
                            `streamflow offsets reset --help` tells how to move a stopped pipeline's offsets."
    )]
    Offsets(OffsetsArgs),
    /// Delete a stopped pipeline's results and checkpoint, so that its next run starts afresh.
    Reset(ResetArgs),
    /// List, export, and produce again the records the pipeline refused.
    #[command(subcommand)]
    DeadLetters(DeadLettersAction),
    /// Print a completion script for a shell.
    #[command(after_help = "Example:\n  streamflow completions bash > /etc/bash_completion.d/streamflow")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `streamflow dead-letters …`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersAction {
    /// The dead letters stored (oldest first), as a table.
    #[command(after_help = "Example:\n  streamflow dead-letters list --database-url … --reason bad_amount --limit 20")]
    List(DeadLetterSelection),
    /// The dead letters as JSON lines: reason, detail, topic, partition, offset, event_id,
    /// received_at, key and payload (as text when they are UTF-8, and always in base64).
    #[command(after_help = "Example:\n  streamflow dead-letters export --database-url … --reason bad_ts > bad.jsonl")]
    Export(ExportArgs),
    /// Produce dead letters again to a topic: the lines of a file `export` wrote (edited by
    /// any tool: their `payload` is produced, else `payload_base64`), or, without one, the
    /// stored letters as they are. Each keeps its key.
    #[command(
        after_help = "Example:\n  streamflow dead-letters export --database-url … --reason bad_ts | jq -c '.payload |= sub(\"yesterday\"; \"2025-12-20T18:00:00Z\")' > fixed.jsonl\n  \
                            streamflow dead-letters redrive --input fixed.jsonl --brokers … --topic stream.events"
    )]
    Redrive(RedriveArgs),
}

/// Which dead letters.
#[derive(Debug, Args)]
pub struct DeadLetterSelection {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only this reason (`bad_ts`, `late`, …).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only those read from this topic (or file).
    #[arg(long)]
    pub source_topic: Option<String>,
    /// Only those stored at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<i64>,
}

/// `streamflow dead-letters export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub selection: DeadLetterSelection,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `streamflow dead-letters redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The dead letters to produce, as `export` wrote them (`-` for standard input); without
    /// it, the stored ones the selection names.
    #[arg(long, short, help_heading = "Input")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub selection: DeadLetterSelection,
    /// Where they go.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `streamflow reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Delete indeed: without it, nothing is deleted.
    #[arg(long)]
    pub yes: bool,
}

/// `streamflow produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The JSON-lines file to produce, one event per line; `-` for standard input.
    #[arg(long, short, default_value = "-")]
    pub input: PathBuf,
}

/// `streamflow offsets`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OffsetsArgs {
    #[command(subcommand)]
    pub action: Option<OffsetsAction>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// How to print: `text` (a table) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Output")]
    pub format: Format,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table, tab-separated.
    Text,
    /// JSON.
    Json,
}

/// What `streamflow offsets` does besides showing.
#[derive(Debug, Subcommand)]
pub enum OffsetsAction {
    /// Move a stopped pipeline's offsets forward — to the earliest records the broker keeps
    /// (after retention deleted what it had not read), the end of the log, or a time — skipping
    /// what lies between; the windows it held open are made final as they stand.
    #[command(after_help = "Examples:\n  streamflow offsets reset --to earliest --database-url … --yes\n  \
                            streamflow offsets reset --to 2025-12-20T18:00:00Z --database-url …   # only say what would move")]
    Reset(OffsetsResetArgs),
}

/// `streamflow offsets reset`.
#[derive(Debug, Args)]
pub struct OffsetsResetArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Where each partition goes: `earliest`, `latest`, or an RFC 3339 time (the first record
    /// at or after it, by Kafka timestamp).
    #[arg(long)]
    pub to: StartOffsets,
    /// Move them indeed: without it, only say what would move.
    #[arg(long)]
    pub yes: bool,
}

/// `streamflow serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address.
    #[arg(long, env = "STREAMFLOW_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    /// The database to read (`postgres://user:password@host:port/database`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Milliseconds an answer is kept for the same request (0: none). Rows change only at each
    /// commit, so keep it at or under the pipeline's commit interval.
    #[arg(long, env = "STREAMFLOW_API_CACHE_MS", default_value_t = 500)]
    pub api_cache_ms: u64,
}

impl ServeArgs {
    /// As derived, without the password.
    pub fn redacted(&self) -> String {
        format!(
            "ServeArgs {{ http_addr: {}, database_url: {}, api_cache_ms: {} }}",
            self.http_addr,
            redacted(&self.database_url),
            self.api_cache_ms
        )
    }
}

/// Where events come from.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated `host:port`.
    #[arg(
        long,
        alias = "bootstrap-server",
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        value_delimiter = ','
    )]
    pub brokers: Vec<String>,
    /// The topic.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "stream.events")]
    pub topic: String,
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
}

/// TLS and SASL to the brokers, as Kafka's own clients name them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kafka security")]
pub struct KafkaSecurityArgs {
    /// How connections to the brokers are secured.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", value_enum, default_value_t = SecurityProtocol::Plaintext)]
    pub security_protocol: SecurityProtocol,
    /// The SASL mechanism, with `sasl_plaintext` or `sasl_ssl`.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_enum)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// A file holding the SASL password; else the environment variable `KAFKA_SASL_PASSWORD`
    /// (never a flag: a flag is seen by every user of the machine).
    #[arg(long, env = "KAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<PathBuf>,
    /// The authorities trusted to sign the brokers' certificates (PEM), with `ssl` or
    /// `sasl_ssl`; default: the system's. The certificate must name the broker.
    #[arg(long, env = "KAFKA_SSL_CA_FILE")]
    pub ssl_ca_file: Option<PathBuf>,
}

/// `--security-protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// `--sasl-mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// PLAIN: the password sent as it is (use it over TLS).
    Plain,
    /// SCRAM-SHA-256.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "scram-sha-512")]
    ScramSha512,
}

impl KafkaSecurityArgs {
    /// The security settings the flags describe; the password is read here.
    pub fn security(&self) -> anyhow::Result<Security> {
        use SecurityProtocol::*;
        let tls =
            matches!(self.security_protocol, Ssl | SaslSsl).then(|| TlsOptions::verified(self.ssl_ca_file.clone()));
        anyhow::ensure!(
            tls.is_some() || self.ssl_ca_file.is_none(),
            "--ssl-ca-file needs --security-protocol ssl or sasl_ssl"
        );
        let sasl = if matches!(self.security_protocol, SaslPlaintext | SaslSsl) {
            let mechanism = self.sasl_mechanism.context("--security-protocol sasl_… needs --sasl-mechanism")?;
            let username = self.sasl_username.clone().context("--security-protocol sasl_… needs --sasl-username")?;
            let password = match &self.sasl_password_file {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the SASL password from {}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                None => std::env::var("KAFKA_SASL_PASSWORD")
                    .context("SASL needs a password: KAFKA_SASL_PASSWORD, or --sasl-password-file")?,
            };
            let mechanism = match mechanism {
                SaslMechanism::Plain => Mechanism::Plain,
                SaslMechanism::ScramSha256 => Mechanism::ScramSha256,
                SaslMechanism::ScramSha512 => Mechanism::ScramSha512,
            };
            Some(Sasl { mechanism, username, password })
        } else {
            anyhow::ensure!(
                self.sasl_mechanism.is_none() && self.sasl_username.is_none() && self.sasl_password_file.is_none(),
                "the --sasl-… flags need --security-protocol sasl_plaintext or sasl_ssl"
            );
            None
        };
        Ok(Security { tls, sasl })
    }
}

/// `streamflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Where a partition never read before starts: `earliest`, `latest`, or an RFC 3339 time
    /// (the first record at or after it, by Kafka timestamp). Later runs resume from the
    /// offsets stored with the results.
    #[arg(
        long,
        env = "STREAMFLOW_START_OFFSETS",
        default_value = "latest",
        value_name = "earliest|latest|TIME",
        help_heading = "Kafka"
    )]
    pub start_offsets: StartOffsets,
    /// Seconds after which a caught-up partition without records stops holding the watermark
    /// back (0: never).
    #[arg(long, env = "STREAMFLOW_IDLE_TIMEOUT_SECONDS", default_value_t = 30, help_heading = "Kafka")]
    pub idle_timeout_seconds: u64,
    /// The consumer group the committed offsets are also committed under in Kafka, for its
    /// tools to show the lag (never read back); default: the pipeline's name.
    #[arg(long, env = "KAFKA_CONSUMER_GROUP", help_heading = "Kafka")]
    pub consumer_group: Option<String>,
    /// Seconds between two listings of the topic's partitions: partitions added to it while the
    /// pipeline runs are read from their earliest offset.
    #[arg(long, env = "STREAMFLOW_METADATA_REFRESH_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Kafka")]
    pub metadata_refresh_seconds: u64,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Serve the HTTP query API on this address too, from the database or, without one, from
    /// the pipeline's in-memory table.
    #[arg(long, env = "STREAMFLOW_HTTP_ADDR", help_heading = "HTTP API")]
    pub http_addr: Option<SocketAddr>,
    /// Milliseconds an API answer is kept for the same request (0: none).
    #[arg(long, env = "STREAMFLOW_API_CACHE_MS", default_value_t = 500, help_heading = "HTTP API")]
    pub api_cache_ms: u64,
}

/// Window size, lateness and workers: how the pipeline computes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Pipeline")]
pub struct PipelineArgs {
    /// Window size in seconds; a whole number that divides a day.
    #[arg(long, env = "STREAMFLOW_WINDOW_SECONDS", default_value_t = 60)]
    pub window_seconds: u32,
    /// Allowed lateness in seconds.
    #[arg(long, env = "STREAMFLOW_LATENESS_SECONDS", default_value_t = 600)]
    pub lateness_seconds: u32,
    /// Timely worker threads (of this process, in a cluster).
    #[arg(long, env = "STREAMFLOW_WORKERS", default_value_t = 2)]
    pub workers: usize,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Timely's cluster mode: this process as one of several that run one pipeline together, the
/// topic's partitions spread over the workers of all of them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Processes that run the pipeline together (1: this one alone).
    #[arg(long, env = "STREAMFLOW_PROCESSES", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub processes: u64,
    /// This process's index, from 0; process 0 writes the results.
    #[arg(long, env = "STREAMFLOW_PROCESS", default_value_t = 0)]
    pub process: usize,
    /// `host:port` of every process, in index order, comma-separated; each listens on its own.
    #[arg(long, env = "STREAMFLOW_HOSTS", value_delimiter = ',', conflicts_with = "hostfile")]
    pub hosts: Vec<String>,
    /// A file of the processes' `host:port`, one a line, as timely's own hostfile.
    #[arg(long, env = "STREAMFLOW_HOSTFILE")]
    pub hostfile: Option<PathBuf>,
    /// Seconds within which every process must have connected.
    #[arg(long, env = "STREAMFLOW_CONNECT_TIMEOUT_SECONDS", default_value_t = 30)]
    pub connect_timeout_seconds: u64,
    /// Seconds a process may send nothing before the others count it as lost and stop.
    #[arg(long, env = "STREAMFLOW_PEER_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub peer_timeout_seconds: u64,
}

impl ClusterArgs {
    /// The cluster this process joins, with the `settings` every process must share; none with
    /// `--processes 1`.
    pub fn config(&self, settings: &[(&str, &str)]) -> anyhow::Result<Option<ClusterConfig>> {
        let processes = self.processes as usize;
        if processes == 1 {
            anyhow::ensure!(self.process == 0, "--process {} needs --processes above it", self.process);
            return Ok(None);
        }
        anyhow::ensure!(
            self.process < processes,
            "--process {} of --processes {processes}: at most {}",
            self.process,
            processes - 1
        );
        let addresses: Vec<String> = match &self.hostfile {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the hostfile {}", file.display()))?;
                let lines: Vec<String> =
                    text.lines().map(str::trim).filter(|l| !l.is_empty()).take(processes).map(String::from).collect();
                anyhow::ensure!(
                    lines.len() == processes,
                    "the hostfile {} has {} addresses for --processes {processes}",
                    file.display(),
                    lines.len()
                );
                lines
            }
            None => {
                anyhow::ensure!(
                    self.hosts.len() == processes,
                    "--hosts gives {} addresses for --processes {processes}; give one per process (or --hostfile)",
                    self.hosts.len()
                );
                self.hosts.clone()
            }
        };
        let mut config = ClusterConfig::new(self.process, addresses);
        config.connect_timeout = Duration::from_secs(self.connect_timeout_seconds);
        config.peer_timeout = Duration::from_secs(self.peer_timeout_seconds);
        config.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok(Some(config))
    }

    /// Whether this process writes the results: it is alone, or process 0.
    pub fn writes_results(&self) -> bool {
        self.process == 0
    }
}

/// Where results go when they go to PostgreSQL.
#[derive(Clone, Args)]
#[command(next_help_heading = "PostgreSQL")]
pub struct DatabaseArgs {
    /// Write into this PostgreSQL database (`postgres://user:password@host:port/database`),
    /// exactly once: a run started again resumes where the last one stopped.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The name this pipeline's offsets, checkpoints and dead letters are stored under.
    #[arg(long, env = "STREAMFLOW_PIPELINE_NAME", default_value = "streamflow")]
    pub pipeline_name: String,
    /// Milliseconds between two commits to the database.
    #[arg(long, env = "STREAMFLOW_COMMIT_INTERVAL_MS", default_value_t = 500)]
    pub commit_interval_ms: u64,
}

impl std::fmt::Debug for DatabaseArgs {
    /// As derived, without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &self.database_url.as_deref().map(redacted))
            .field("pipeline_name", &self.pipeline_name)
            .field("commit_interval_ms", &self.commit_interval_ms)
            .finish()
    }
}

impl DatabaseArgs {
    /// The Postgres sink's settings for a source named `topic`, when a database is given.
    pub fn postgres(&self, topic: &str) -> Option<PostgresConfig> {
        let url = self.database_url.as_ref()?;
        let mut config = PostgresConfig::new(url, &self.pipeline_name, topic);
        config.commit_interval = Duration::from_millis(self.commit_interval_ms);
        Some(config)
    }
}

impl PipelineArgs {
    /// The pipeline configuration the flags describe.
    pub fn config(&self) -> anyhow::Result<PipelineConfig> {
        anyhow::ensure!(self.workers >= 1, "--workers must be at least 1");
        Ok(PipelineConfig {
            window: WindowConfig::new(self.window_seconds, self.lateness_seconds)?,
            workers: self.workers,
            ..PipelineConfig::default()
        })
    }
}

/// `streamflow replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The JSON-lines file to read, one event per line; `-` for standard input. Its offsets are
    /// line numbers counted from 0, in one partition.
    #[arg(long, short, required_unless_present = "brokers", help_heading = "Source")]
    pub input: Option<PathBuf>,
    /// Replay a Kafka topic instead, from its start to the end its partitions have now, each
    /// partition as itself: bootstrap brokers, comma-separated `host:port`.
    #[arg(long, alias = "bootstrap-server", value_delimiter = ',', conflicts_with = "input", help_heading = "Source")]
    pub brokers: Option<Vec<String>>,
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
    /// The Kafka topic to replay (default `stream.events`); for a file, the name its offsets are
    /// stored under in the database (default: the file's name).
    #[arg(long, help_heading = "Source")]
    pub topic: Option<String>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `streamflow generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write the events as JSON lines to this file (`-` for standard output) instead of Kafka.
    #[arg(long, short, help_heading = "Output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Partitions of the topic when it has to be created; each record is keyed by its
    /// `stream_id` and goes where Kafka's default partitioner (murmur2 of the key) puts it.
    #[arg(long, default_value_t = 3, help_heading = "Kafka")]
    pub partitions: u32,
    /// Compression of the produced batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None, help_heading = "Kafka")]
    pub compression: CompressionArg,
    /// Events per second produced (over all partitions); 0 for as fast as possible.
    #[arg(long, default_value_t = 20.0, help_heading = "Events")]
    pub rate: f64,
    /// Events per second of event time (default: `--rate`, or 20 when it is 0).
    #[arg(long, help_heading = "Events")]
    pub event_rate: Option<f64>,
    /// Events to generate; 0 for no end (Kafka only).
    #[arg(long, default_value_t = 0, help_heading = "Events")]
    pub count: u64,
    /// Streams `stream_1001`, `stream_1002`, …
    #[arg(long, default_value_t = 3, help_heading = "Events")]
    pub streams: u32,
    /// Users `user_1` … `user_N`.
    #[arg(long, default_value_t = 500, help_heading = "Events")]
    pub users: u32,
    /// Seed of every random choice: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42, help_heading = "Events")]
    pub seed: u64,
    /// The event time of the first event (RFC 3339; default: now). With the same `--seed`,
    /// `--start`, `--event-rate` and `--partitions`, Kafka and `--output` get the same events.
    #[arg(long, help_heading = "Events")]
    pub start: Option<String>,
    /// Share of events an hour or more late.
    #[arg(long, default_value_t = 0.0, help_heading = "Events")]
    pub late_ratio: f64,
    /// Share of malformed events.
    #[arg(long, default_value_t = 0.0, help_heading = "Events")]
    pub bad_ratio: f64,
    /// Who joins and leaves: `realistic` (a join only by a user not watching, a leave only by one
    /// who is; each stream's audience rises and falls) or `independent` (the original's draws,
    /// whose running audience grows without bound).
    #[arg(long, value_enum, default_value_t = AudienceArg::Realistic, help_heading = "Events")]
    pub audience: AudienceArg,
}

/// `--compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// `--audience`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AudienceArg {
    /// Joins by users not watching, leaves by users watching.
    Realistic,
    /// The original's independent draws.
    Independent,
}

impl From<AudienceArg> for streamflow_core::streams::generator::Audience {
    fn from(audience: AudienceArg) -> Self {
        match audience {
            AudienceArg::Realistic => Self::Realistic,
            AudienceArg::Independent => Self::Independent,
        }
    }
}
