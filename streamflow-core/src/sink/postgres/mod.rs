//! A sink into PostgreSQL that delivers every result exactly once (spec §4, §5).
//!
//! ```text
//!  worker 0: Sink operator ── apply(epoch batch) ──► bounded queue ──► committer thread
//!                                                                        │ merges the epochs of one
//!                                                                        │ commit interval, then one
//!                                                                        ▼ transaction:
//!            rows (upsert) + stream_state + dead letters + source_offsets + checkpoints
//! ```
//! The rows and the offsets (with the rest of the checkpoint) are committed together or not at
//! all, and a restart resumes from what was committed ([`Sink::checkpoint`]): nothing is lost
//! and nothing counted twice, wherever a crash falls. Every value written is absolute, so a
//! transaction retried after a lost answer to its commit changes nothing more.
//!
//! Failures that pass (the server is down, restarting, or dropped the connection) are retried
//! with capped exponential backoff, the pending batch kept whole, while the full queue holds the
//! pipeline back; a failure that will not pass (bad credentials, missing permissions, a missing
//! database) stops the pipeline with the server's message. [`is_transient`] decides which is which.

mod config;
pub mod connect;
mod fence;
mod schema;
mod write;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::Client;

pub use config::{redacted, PostgresConfig};
pub use fence::{OffsetsReset, Reset};
pub use schema::{migrate, MigrationError, MIGRATIONS};

use super::{EpochBatch, Sink};
use crate::checkpoint::{Checkpoint, Settings};
use crate::error::{Error, SinkError};
use crate::metrics::Histogram;
use crate::position::{Offset, PartitionId};
use crate::schema::Row;
use write::{Commit, Statements};

/// Whether a database error may pass by itself, so that retrying makes sense: the connection
/// was lost, refused or timed out, the server is starting or shutting down, a serialization
/// conflict, or it ran out of resources. Anything else will not pass: what the server refuses
/// for what was asked (authentication, permissions, a missing database or table), and what
/// fails before the server is reached (a configuration, a TLS certificate).
pub fn is_transient(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        // Connection exception, transaction rollback (serialization, deadlock), insufficient
        // resources, operator intervention (shutdown, restart, cancel), system error.
        Some(code) => matches!(&code.code()[..2], "08" | "40" | "53" | "57" | "58"),
        // No answer from the server: only a failure of the connection itself passes, not a
        // certificate TLS refused (it comes as an I/O error too).
        None => std::error::Error::source(error).is_some_and(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.get_ref().is_none_or(|inner| !inner.is::<rustls::Error>()))
        }),
    }
}

/// Why an attempt failed: the database, which may pass (see [`is_transient`]), or a refusal,
/// which will not.
#[derive(Debug)]
enum Failure {
    Database(postgres::Error),
    Refused(SinkError),
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Failure {
        Failure::Database(error)
    }
}

/// The sink's own figures, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct PostgresStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Row upserts written.
    pub rows_written: AtomicU64,
    /// Dead letters written.
    pub dead_letters_written: AtomicU64,
    /// Failed attempts that were retried.
    pub retries: AtomicU64,
    /// Whether the last attempt reached the database.
    pub database_up: AtomicBool,
    /// How long commits take.
    pub commit_seconds: Histogram,
    /// When the last commit ended, in microseconds since 1970 (0: none yet).
    pub last_commit_micros: AtomicI64,
    recent_commits: Mutex<VecDeque<Duration>>,
}

impl PostgresStats {
    /// How many commit durations [`PostgresStats::commit_latency`] looks at.
    pub const RECENT_COMMITS: usize = 4096;

    fn committed(&self, took: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.commit_seconds.observe(took);
        self.last_commit_micros.store(crate::time::EventTime::now().micros(), Relaxed);
        let mut recent = self.recent_commits.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == Self::RECENT_COMMITS {
            recent.pop_front();
        }
        recent.push_back(took);
    }

    /// The `quantile` (0 to 1) of the recent commit durations, if any commit happened.
    pub fn commit_latency(&self, quantile: f64) -> Option<Duration> {
        let mut recent: Vec<Duration> =
            self.recent_commits.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        recent.sort();
        let index = ((recent.len() as f64 - 1.0) * quantile.clamp(0.0, 1.0)).round() as usize;
        recent.get(index).copied()
    }
}

/// A sink into PostgreSQL. See the module documentation.
pub struct PostgresSink {
    config: PostgresConfig,
    queue: Option<SyncSender<Commit>>,
    committer: Option<JoinHandle<Result<(), SinkError>>>,
    client: Option<Client>,
    /// The generation this process claimed the pipeline at: see [`fence`].
    generation: Option<i64>,
    stats: Arc<PostgresStats>,
    on_commit: Option<OnCommit>,
}

/// Which stored dead letters to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this reason.
    pub reason: Option<String>,
    /// Only from this topic.
    pub topic: Option<String>,
    /// Only those stored at or after this time.
    pub since: Option<std::time::SystemTime>,
    /// At most this many.
    pub limit: Option<i64>,
}

/// A dead letter as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDeadLetter {
    /// The topic (or file) it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: PartitionId,
    /// Its offset.
    pub offset: Offset,
    /// Why it was refused.
    pub reason: String,
    /// What was wrong, in words.
    pub detail: Option<String>,
    /// Its `event_id`, when it had a readable one.
    pub event_id: Option<String>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// When it was stored.
    pub received_at: std::time::SystemTime,
}

/// What is called after each commit, with every partition's next offset as committed (see
/// [`PostgresSink::on_commit`]).
pub type OnCommit = Box<dyn FnMut(&BTreeMap<PartitionId, Offset>) + Send>;

impl PostgresSink {
    /// Connects (waiting out failures that pass), applies the schema, and is ready to run.
    pub fn connect(config: PostgresConfig) -> Result<PostgresSink, SinkError> {
        // A URL that does not parse will not parse on a retry either.
        connect::Endpoint::parse(&config.url)?;
        let stats = Arc::new(PostgresStats::default());
        let client = retrying(&config, &stats, "apply the schema", |client| apply_schema(client, &config.columns))
            .map(|(client, applied)| {
                if !applied.is_empty() {
                    tracing::info!(versions = ?applied, "Applied schema migrations.");
                }
                client
            })?;
        Ok(PostgresSink {
            config,
            queue: None,
            committer: None,
            client: Some(client),
            generation: None,
            stats,
            on_commit: None,
        })
    }

    /// Deletes the results and the checkpoint of `config.pipeline`, so that its next run starts
    /// afresh (with other settings, say); refused while a process writes the pipeline.
    pub fn reset(config: &PostgresConfig) -> Result<Reset, SinkError> {
        let stats = PostgresStats::default();
        let (_, reset) = retrying(config, &stats, "reset the pipeline", |client| {
            apply_schema(client, &config.columns)?;
            fence::reset(client, &config.pipeline)
        })?;
        Ok(reset)
    }

    /// Moves the stored offsets of a stopped pipeline forward to `targets` (partition → next
    /// offset), skipping what lies between: see [`OffsetsReset`] and `streamflow offsets reset`.
    pub fn reset_offsets(
        config: &PostgresConfig,
        targets: &BTreeMap<PartitionId, Offset>,
    ) -> Result<OffsetsReset, SinkError> {
        let stats = PostgresStats::default();
        let (_, reset) = retrying(config, &stats, "move the offsets", |client| {
            apply_schema(client, &config.columns)?;
            fence::reset_offsets(client, config, targets)
        })?;
        Ok(reset)
    }

    /// The dead letters stored for the pipeline of `config` that `filter` selects, oldest
    /// first (`streamflow dead-letters`).
    pub fn stored_dead_letters(
        config: &PostgresConfig,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<StoredDeadLetter>, SinkError> {
        let stats = PostgresStats::default();
        let (_, letters) = retrying(config, &stats, "read the dead letters", |client| {
            let rows = client.query(
                "SELECT topic, partition, \"offset\", reason, detail, event_id, key, payload, received_at
                 FROM dead_letters
                 WHERE pipeline = $1 AND ($2::text IS NULL OR reason = $2) AND ($3::text IS NULL OR topic = $3)
                   AND ($4::timestamptz IS NULL OR received_at >= $4)
                 ORDER BY received_at, topic, partition, \"offset\" LIMIT $5",
                &[&config.pipeline, &filter.reason, &filter.topic, &filter.since, &filter.limit.unwrap_or(i64::MAX)],
            )?;
            Ok(rows
                .iter()
                .map(|row| StoredDeadLetter {
                    topic: row.get(0),
                    partition: u32::try_from(row.get::<_, i32>(1)).unwrap_or_default(),
                    offset: row.get(2),
                    reason: row.get(3),
                    detail: row.get(4),
                    event_id: row.get(5),
                    key: row.get(6),
                    payload: row.get(7),
                    received_at: row.get(8),
                })
                .collect())
        })?;
        Ok(letters)
    }

    /// The checkpoint stored for the pipeline and topic of `config`, read without claiming the
    /// pipeline or changing anything (`streamflow offsets`): empty where nothing was stored.
    pub fn stored_checkpoint(config: &PostgresConfig) -> Result<Checkpoint, SinkError> {
        let stats = PostgresStats::default();
        let (_, checkpoint) =
            retrying(config, &stats, "read the checkpoint", |client| match write::read_checkpoint(client, config) {
                Err(error) if error.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => {
                    Ok(Checkpoint::default())
                }
                read => Ok(read?),
            })?;
        Ok(checkpoint)
    }

    /// Calls `hook` after each commit, on the committer's thread, with the next offset of every
    /// partition the database now holds: to tell another system where the pipeline stands
    /// (the consumer group offsets Kafka's tools read). It must not block; the database stays
    /// the truth.
    pub fn on_commit(mut self, hook: impl FnMut(&BTreeMap<PartitionId, Offset>) + Send + 'static) -> PostgresSink {
        self.on_commit = Some(Box::new(hook));
        self
    }

    /// The sink's figures.
    pub fn stats(&self) -> Arc<PostgresStats> {
        Arc::clone(&self.stats)
    }

    /// Starts the committer thread on the connection `connect` opened.
    fn start(&mut self) -> Result<&SyncSender<Commit>, SinkError> {
        if self.queue.is_none() {
            let (sender, receiver) = mpsc::sync_channel(self.config.max_pending_batches);
            let generation = self.generation.ok_or_else(|| Error::new("the pipeline was not claimed"))?;
            let committer = Committer {
                config: self.config.clone(),
                client: self.client.take(),
                statements: None,
                generation,
                stats: Arc::clone(&self.stats),
                on_commit: self.on_commit.take(),
                committed: BTreeMap::new(),
            };
            let thread = std::thread::Builder::new()
                .name("postgres-sink".into())
                .spawn(move || committer.run(receiver))
                .map_err(|e| Error::new("cannot start the Postgres committer").caused_by(e))?;
            self.committer = Some(thread);
            self.queue = Some(sender);
        }
        Ok(self.queue.as_ref().expect("set above"))
    }

    /// Waits for the committer to end and returns how it ended.
    fn stop(&mut self) -> Result<(), SinkError> {
        self.queue = None;
        match self.committer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::new("the Postgres committer panicked")),
            None => Ok(()),
        }
    }
}

impl<R: Row> Sink<R> for PostgresSink {
    /// Claims the pipeline (see the `fence` module: refused when the stored results were computed with
    /// other settings or belong to another pipeline; waits while another process writes it),
    /// then reads its checkpoint, on the session that will commit.
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        let config = self.config.clone();
        let columns = config.columns.fingerprint();
        if settings.columns != columns {
            return Err(Error::configuration(format!(
                "the sink's tables are made for the columns {columns}, the pipeline's schema has {}: \
                 give the sink the schema's columns (PostgresConfig::with_columns)",
                settings.columns
            )));
        }
        let mut client = self.client.take();
        let (client, (generation, checkpoint)) =
            retrying_on(&mut client, &config, &self.stats, "claim the pipeline", |client| {
                let generation = fence::claim(client, &config, settings)?;
                Ok((generation, write::read_checkpoint(client, &config)?))
            })?;
        self.client = Some(client);
        self.generation = Some(generation);
        Ok(checkpoint)
    }

    fn apply(&mut self, batch: EpochBatch<R>) -> Result<(), SinkError> {
        // The rows become the values of their columns here, on the pipeline's side of the queue.
        let commit = Commit::of(&batch, &self.config.columns);
        if self.start()?.send(commit).is_err() {
            // The committer stopped: say why.
            return Err(self.stop().err().unwrap_or_else(|| Error::new("the Postgres committer stopped")));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.stop()
    }
}

impl Drop for PostgresSink {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The thread that commits: merges the batches of one interval and writes them in one
/// transaction, retrying failures that pass.
struct Committer {
    config: PostgresConfig,
    client: Option<Client>,
    statements: Option<Statements>,
    generation: i64,
    stats: Arc<PostgresStats>,
    on_commit: Option<OnCommit>,
    /// Every partition's next offset as committed, for `on_commit`.
    committed: BTreeMap<PartitionId, Offset>,
}

impl Committer {
    fn run(mut self, batches: Receiver<Commit>) -> Result<(), SinkError> {
        let mut pending: Option<Commit> = None;
        let mut deadline = Instant::now();
        loop {
            let received = match &pending {
                None => batches.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => batches.recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(batch) => match pending.as_mut() {
                    Some(merged) => merged.absorb(batch),
                    None => {
                        deadline = Instant::now() + self.config.commit_interval;
                        pending = Some(batch);
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(batch) = pending.take() {
                        self.commit(&batch)?;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(batch) = pending.take() {
                        self.commit(&batch)?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Writes `batch`, however many attempts it takes, unless a failure will not pass.
    fn commit(&mut self, batch: &Commit) -> Result<(), SinkError> {
        let mut backoff = self.config.backoff();
        loop {
            let started = Instant::now();
            match self.attempt(batch) {
                Ok(written) => {
                    self.stats.committed(started.elapsed());
                    self.stats.rows_written.fetch_add(written.rows, Relaxed);
                    self.stats.dead_letters_written.fetch_add(written.dead_letters, Relaxed);
                    self.stats.database_up.store(true, Relaxed);
                    if backoff.is_retrying() {
                        tracing::info!("Committed again after the database came back.");
                    }
                    if let Some(hook) = self.on_commit.as_mut() {
                        let moved = batch.checkpoint.positions.values().map(|p| (p.partition, p.next_offset));
                        self.committed.extend(moved);
                        hook(&self.committed);
                    }
                    return Ok(());
                }
                Err(Failure::Database(error)) if is_transient(&error) => {
                    self.stats.database_up.store(false, Relaxed);
                    self.stats.retries.fetch_add(1, Relaxed);
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %error, retry_in = ?wait, "Commit failed; retrying.");
                    self.client = None;
                    self.statements = None;
                    std::thread::sleep(wait);
                }
                Err(Failure::Database(error)) => return Err(fatal("cannot commit to Postgres", error)),
                Err(Failure::Refused(error)) => return Err(error),
            }
        }
    }

    fn attempt(&mut self, batch: &Commit) -> Result<write::Written, Failure> {
        if self.client.is_none() {
            let mut client = open(&self.config)?;
            // A new session: the writer's lock went with the old one.
            fence::relock(&mut client, &self.config.pipeline)?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected above");
        if self.statements.is_none() {
            self.statements = Some(Statements::prepare(client, &self.config.columns)?);
        }
        let statements = self.statements.as_ref().expect("prepared above");
        match write::write(client, statements, &self.config, self.generation, batch)? {
            Some(written) => Ok(written),
            None => Err(Failure::Refused(fence::fenced(
                &self.config.pipeline,
                &format!("it claimed the pipeline after generation {}", self.generation),
            ))),
        }
    }
}

/// Runs `attempt` on a connection (opened when there is none, with the schema's search path),
/// retrying failures that pass with capped backoff; returns the connection with the result.
fn retrying_on<T>(
    client: &mut Option<Client>,
    config: &PostgresConfig,
    stats: &PostgresStats,
    what: &str,
    mut attempt: impl FnMut(&mut Client) -> Result<T, Failure>,
) -> Result<(Client, T), SinkError> {
    let mut backoff = config.backoff();
    loop {
        let mut connected = match client.take() {
            Some(connected) => connected,
            None => connect(config, stats)?,
        };
        match attempt(&mut connected) {
            Ok(result) => return Ok((connected, result)),
            Err(Failure::Database(error)) if is_transient(&error) => {
                let wait = backoff.next_wait();
                tracing::warn!(error = %error, retry_in = ?wait, "Cannot {what}; retrying.");
                std::thread::sleep(wait);
            }
            Err(Failure::Database(error)) => return Err(fatal(&format!("cannot {what}"), error)),
            Err(Failure::Refused(error)) => return Err(error),
        }
    }
}

/// [`migrate`], then the results tables of `columns`, its refusals told from the failures that
/// pass.
fn apply_schema(client: &mut Client, columns: &crate::schema::Columns) -> Result<Vec<i32>, Failure> {
    let refused = |error| match error {
        MigrationError::Database(error) => Failure::Database(error),
        refused => Failure::Refused(Error::rejected("cannot apply the schema").caused_by(refused)),
    };
    let applied = migrate(client).map_err(refused)?;
    let mut transaction = client.transaction()?;
    // One process at a time creates a table.
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::LOCK_KEY])?;
    schema::results_tables(&mut transaction, columns).map_err(refused)?;
    transaction.commit()?;
    Ok(applied)
}

/// [`retrying_on`] a new connection.
fn retrying<T>(
    config: &PostgresConfig,
    stats: &PostgresStats,
    what: &str,
    attempt: impl FnMut(&mut Client) -> Result<T, Failure>,
) -> Result<(Client, T), SinkError> {
    retrying_on(&mut None, config, stats, what, attempt)
}

/// Connects, waiting out failures that pass.
fn connect(config: &PostgresConfig, stats: &PostgresStats) -> Result<Client, SinkError> {
    let mut backoff = config.backoff();
    loop {
        match open(config) {
            Ok(client) => {
                stats.database_up.store(true, Relaxed);
                return Ok(client);
            }
            Err(Failure::Refused(error)) => return Err(error),
            Err(Failure::Database(error)) if is_transient(&error) => {
                stats.database_up.store(false, Relaxed);
                let wait = backoff.next_wait();
                tracing::warn!(url = %redacted(&config.url), error = %error, retry_in = ?wait,
                    "Cannot connect to Postgres; retrying.");
                std::thread::sleep(wait);
            }
            Err(Failure::Database(error)) => {
                return Err(fatal(&format!("cannot connect to {}", redacted(&config.url)), error))
            }
        }
    }
}

/// A connection to the database of `config` (its URL already checked to parse).
fn open(config: &PostgresConfig) -> Result<Client, Failure> {
    let endpoint = connect::Endpoint::parse(&config.url).map_err(Failure::Refused)?;
    Ok(endpoint.connect()?)
}

/// A failure that will not pass, with the server's own message.
fn fatal(context: &str, error: postgres::Error) -> SinkError {
    let message = match error.as_db_error() {
        Some(db) => format!("{context}: {} ({})", db.message(), db.code().code()),
        None => format!("{context}: {error}"),
    };
    Error::rejected(message).caused_by(error)
}
