//! Kafka as a source: every partition of a topic, dealt out over the workers, read as a
//! read-committed consumer with the client of [`crate::kafka`].
//!
//! ```text
//!  tokio runtime (shared)                            timely worker
//!  metadata watch: the topic's partitions ─────────► KafkaSource::poll (never blocks)
//!  fetcher task per partition ── bounded queue ──►     records, end of log, idle state;
//!   its own connection to the leader                   starts fetchers for new partitions
//!   fetch(offset, ≤ fetch_max_bytes, read committed)
//!   waits when the queue is full (backpressure)
//!   follows the leader, retries with backoff
//! ```
//! No consumer group is needed: the offsets live with the results in the sink's checkpoint, and
//! a restarted pipeline starts each partition where that checkpoint says ([`Source::resume`]). On a first run a partition starts at
//! [`KafkaConfig::start`]; a partition the checkpoint does not know (added to the topic since),
//! and one added while the pipeline runs, starts at its earliest offset, so that nothing
//! produced to it is missed.
//!
//! The end of the log is the last stable offset of each fetch: what a read-committed consumer
//! can read. Transaction markers and aborted transactions take offsets but hold no events; they
//! are passed over ([`crate::kafka::records`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::{Polled, Source, SourceContext};
use crate::batch::RecordBatch;
use crate::error::{Error, SourceError};
use crate::kafka::fetch::fetch;
use crate::kafka::records::read_batches;
use crate::kafka::{ClientConfig, Connection, KafkaClient, KafkaError, OffsetAt, Security};
use crate::position::{Offset, PartitionId, PartitionState};
use crate::time::EventTime;

/// Where a partition never read before starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartOffsets {
    /// At the oldest record the broker keeps.
    Earliest,
    /// At the end of the log: only records produced from now on (the original's default).
    #[default]
    Latest,
    /// At the first record whose Kafka timestamp is at or after this time (the end of the log
    /// when none is).
    Time(EventTime),
}

impl std::str::FromStr for StartOffsets {
    type Err = String;
    fn from_str(text: &str) -> Result<StartOffsets, String> {
        match text {
            "earliest" => Ok(StartOffsets::Earliest),
            "latest" => Ok(StartOffsets::Latest),
            _ => EventTime::parse_rfc3339(text)
                .map(StartOffsets::Time)
                .map_err(|_| format!("expected `earliest`, `latest` or an RFC 3339 time, not {text:?}")),
        }
    }
}

impl std::fmt::Display for StartOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartOffsets::Earliest => f.write_str("earliest"),
            StartOffsets::Latest => f.write_str("latest"),
            StartOffsets::Time(time) => write!(f, "{time}"),
        }
    }
}

/// How to read a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// Where a partition starts on a first run.
    pub start: StartOffsets,
    /// The most bytes one fetch asks for, per partition.
    pub fetch_max_bytes: i32,
    /// How long the broker may hold a fetch while it has nothing new.
    pub fetch_max_wait: Duration,
    /// Fetched batches waiting per partition before the fetcher waits (backpressure).
    pub queued_batches: usize,
    /// A partition caught up and without records for this long no longer holds the pipeline
    /// watermark back, until records come again; `None` keeps every partition counting.
    pub idle_timeout: Option<Duration>,
    /// The longest wait between two attempts to reach a broker that is gone.
    pub max_backoff: Duration,
    /// How often the topic's partitions are listed again, to find partitions added to it.
    pub metadata_refresh: Duration,
    /// Read each partition up to the end its log has when the reader starts, then end: a replay
    /// of the topic, rather than a pipeline that runs for ever.
    pub until_end: bool,
    /// TLS and SASL to the brokers.
    pub security: Security,
}

impl KafkaConfig {
    /// Settings for `topic` on `brokers`, the rest at their defaults.
    pub fn new(brokers: Vec<String>, topic: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers,
            topic: topic.into(),
            start: StartOffsets::Latest,
            fetch_max_bytes: 4 << 20,
            fetch_max_wait: Duration::from_millis(100),
            queued_batches: 4,
            idle_timeout: Some(Duration::from_secs(30)),
            max_backoff: Duration::from_secs(5),
            metadata_refresh: Duration::from_secs(10),
            until_end: false,
            security: Security::default(),
        }
    }

    fn client(&self) -> ClientConfig {
        ClientConfig { security: self.security.clone(), ..ClientConfig::new(self.brokers.clone()) }
    }
}

/// The topic's partitions as last listed, with a count of the changes.
#[derive(Debug, Default)]
struct Listed {
    partitions: Vec<PartitionId>,
    version: u64,
}

/// A connection to a topic, shared by the readers of all workers.
pub struct Kafka {
    config: KafkaConfig,
    runtime: Runtime,
    client: Arc<KafkaClient>,
    listed: Arc<Mutex<Listed>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka").field("config", &self.config).field("partitions", &self.partitions()).finish()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Kafka {
    /// Connects and finds the topic's partitions, waiting (and saying so) while the brokers
    /// cannot be reached or the topic does not exist yet; then watches the topic for partitions
    /// added to it.
    pub fn connect(config: KafkaConfig) -> Result<Kafka, SourceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka")
            .enable_all()
            .build()
            .map_err(|source| Error::io("the Kafka runtime", source))?;
        let (client, partitions) = runtime.block_on(async {
            let mut wait = Duration::ZERO;
            loop {
                match discover(&config).await {
                    Ok(found) => return Ok(found),
                    Err(problem) if problem.is_transient() || matches!(problem, KafkaError::UnknownTopic(_)) => {
                        wait = (wait * 2).clamp(Duration::from_millis(200), config.max_backoff);
                        tracing::warn!(brokers = ?config.brokers, topic = %config.topic, problem = %problem,
                            retry_in = ?wait, "Kafka is not ready; waiting.");
                        tokio::time::sleep(wait).await;
                    }
                    Err(problem) => {
                        return Err(
                            Error::rejected(format!("cannot read {}: {problem}", config.topic)).caused_by(problem)
                        )
                    }
                }
            }
        })?;
        tracing::info!(topic = %config.topic, partitions = ?partitions, "Connected to Kafka.");
        let listed = Arc::new(Mutex::new(Listed { partitions, version: 0 }));
        let watcher = runtime.spawn(watch(Arc::clone(&client), config.clone(), Arc::clone(&listed)));
        Ok(Kafka { config, runtime, client, listed, watcher })
    }

    /// The topic's partitions, as last listed.
    pub fn partitions(&self) -> Vec<PartitionId> {
        self.listed.lock().unwrap_or_else(|e| e.into_inner()).partitions.clone()
    }

    /// The reader of the partitions `ctx`'s worker owns. When the pipeline resumes it, it
    /// starts a fetcher for each, at the checkpoint's offset or else where a partition new to the
    /// pipeline starts.
    pub fn source(&self, ctx: &SourceContext) -> KafkaSource {
        KafkaSource {
            partitions: BTreeMap::new(),
            idle_timeout: self.config.idle_timeout,
            turn: 0,
            context: *ctx,
            resumed: None,
            config: self.config.clone(),
            client: Arc::clone(&self.client),
            runtime: self.runtime.handle().clone(),
            listed: Arc::clone(&self.listed),
            listed_version: u64::MAX,
        }
    }
}

async fn discover(config: &KafkaConfig) -> Result<(Arc<KafkaClient>, Vec<PartitionId>), KafkaError> {
    let client = KafkaClient::connect(config.client()).await?;
    let partitions =
        client.partitions(&config.topic).await?.ok_or_else(|| KafkaError::UnknownTopic(config.topic.clone()))?;
    Ok((client, partitions.iter().map(|p| p.partition).collect()))
}

/// Lists the topic's partitions every `metadata_refresh`; says when partitions were added.
async fn watch(client: Arc<KafkaClient>, config: KafkaConfig, listed: Arc<Mutex<Listed>>) {
    loop {
        tokio::time::sleep(config.metadata_refresh).await;
        match client.partitions(&config.topic).await {
            Ok(Some(found)) => {
                let found: Vec<PartitionId> = found.iter().map(|p| p.partition).collect();
                let mut listed = listed.lock().unwrap_or_else(|e| e.into_inner());
                if found.len() > listed.partitions.len() {
                    tracing::info!(topic = %config.topic, partitions = ?found, "The topic has new partitions.");
                    listed.partitions = found;
                    listed.version += 1;
                }
            }
            Ok(None) => tracing::warn!(topic = %config.topic, "The topic is gone from the cluster's metadata."),
            Err(error) => tracing::debug!(error = %error, "Cannot list the topic's partitions now."),
        }
    }
}

/// Where a fetcher starts.
#[derive(Clone, Copy, Debug)]
enum Start {
    At(Offset),
    Earliest,
    Latest,
    Time(EventTime),
}

impl Start {
    async fn resolve(self, client: &KafkaClient, topic: &str, partition: PartitionId) -> Result<Offset, KafkaError> {
        match self {
            Start::At(offset) => Ok(offset),
            Start::Earliest => client.offset(topic, partition, OffsetAt::Earliest).await,
            Start::Latest => client.end_offset(topic, partition).await,
            Start::Time(time) => {
                let millis = time.micros().div_euclid(1000);
                client.offset(topic, partition, OffsetAt::Time(millis)).await
            }
        }
    }
}

/// One partition as the reader sees it.
struct Fetched {
    receiver: mpsc::Receiver<Result<RecordBatch, SourceError>>,
    fetcher: tokio::task::JoinHandle<()>,
    /// The next offset to read; `None` until the fetcher knows where it starts.
    next_offset: Option<Offset>,
    paused: bool,
    last_records: Instant,
    /// The end of the log last passed on, so that empty fetches go on only when it moves.
    reported_end: Option<Offset>,
    idle: bool,
    /// Where a replay of the partition ends, and whether it did.
    until: Option<Offset>,
    finished: bool,
}

/// The reader of the Kafka partitions one worker owns: see [`Kafka::source`].
pub struct KafkaSource {
    partitions: BTreeMap<PartitionId, Fetched>,
    idle_timeout: Option<Duration>,
    turn: usize,
    context: SourceContext,
    /// Where the checkpoint resumes each partition, once the pipeline said.
    resumed: Option<BTreeMap<PartitionId, Offset>>,
    config: KafkaConfig,
    client: Arc<KafkaClient>,
    runtime: tokio::runtime::Handle,
    listed: Arc<Mutex<Listed>>,
    listed_version: u64,
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        for fetched in self.partitions.values() {
            fetched.fetcher.abort();
        }
    }
}

impl KafkaSource {
    /// Starts fetchers for the listed partitions this worker owns and does not read yet. At the
    /// first call (`at_start`), the start offsets are looked up before returning, so that the
    /// pipeline knows where every partition starts.
    fn start_new_partitions(&mut self, at_start: bool) -> Result<(), SourceError> {
        let Some(resumed) = self.resumed.clone() else { return Ok(()) };
        let (partitions, version) = {
            let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            if listed.version == self.listed_version {
                return Ok(());
            }
            (listed.partitions.clone(), listed.version)
        };
        self.listed_version = version;
        if self.config.until_end && !at_start {
            return Ok(()); // a replay reads the partitions there were when it started
        }
        for partition in partitions {
            if !self.context.owns(partition) || self.partitions.contains_key(&partition) {
                continue;
            }
            let start = match resumed.get(&partition) {
                Some(&offset) => Start::At(offset),
                // New to the pipeline since its first run: nothing produced to it may be missed.
                None if !resumed.is_empty() || !at_start => Start::Earliest,
                None => match self.config.start {
                    StartOffsets::Earliest => Start::Earliest,
                    StartOffsets::Latest => Start::Latest,
                    StartOffsets::Time(time) => Start::Time(time),
                },
            };
            let start = if at_start { Start::At(self.resolve_now(start, partition)?) } else { start };
            let until = match self.config.until_end {
                true => Some(self.end_now(partition)?),
                false => None,
            };
            tracing::info!(partition, start = ?start, "Reading partition.");
            let (sender, receiver) = mpsc::channel(self.config.queued_batches.max(1));
            let fetcher = Fetcher {
                client: Arc::clone(&self.client),
                config: self.config.clone(),
                partition,
                batches: sender,
                scratch: Vec::new(),
            };
            let next_offset = match start {
                Start::At(offset) => Some(offset),
                _ => None,
            };
            let fetcher = self.runtime.spawn(fetcher.run(start));
            self.partitions.insert(
                partition,
                Fetched {
                    receiver,
                    fetcher,
                    next_offset,
                    paused: false,
                    last_records: Instant::now(),
                    reported_end: None,
                    idle: false,
                    until,
                    finished: false,
                },
            );
        }
        Ok(())
    }
}

impl KafkaSource {
    /// Where `partition` starts, waiting (and saying so) while the brokers cannot answer.
    fn resolve_now(&self, start: Start, partition: PartitionId) -> Result<Offset, SourceError> {
        self.ask_now(partition, "where the partition starts", || {
            start.resolve(&self.client, &self.config.topic, partition)
        })
    }

    /// Where `partition`'s log ends now.
    fn end_now(&self, partition: PartitionId) -> Result<Offset, SourceError> {
        self.ask_now(partition, "where the partition ends", || self.client.end_offset(&self.config.topic, partition))
    }

    /// Asks `what` of the cluster, waiting (and saying so) while the brokers cannot answer.
    fn ask_now<F: std::future::Future<Output = Result<Offset, KafkaError>>>(
        &self,
        partition: PartitionId,
        what: &str,
        ask: impl Fn() -> F,
    ) -> Result<Offset, SourceError> {
        let mut wait = Duration::ZERO;
        loop {
            match self.runtime.block_on(ask()) {
                Ok(offset) => return Ok(offset),
                Err(error) if error.is_transient() => {
                    wait = (wait * 2).clamp(Duration::from_millis(200), self.config.max_backoff);
                    tracing::warn!(partition, error = %error, retry_in = ?wait, "Cannot find {what}; retrying.");
                    std::thread::sleep(wait);
                }
                Err(error) => {
                    return Err(Error::rejected(format!(
                        "cannot find {what} (partition {partition} of {})",
                        self.config.topic
                    ))
                    .caused_by(error))
                }
            }
        }
    }
}

impl Source for KafkaSource {
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        self.resumed = Some(from.clone());
        self.start_new_partitions(true)
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().filter_map(|(&partition, f)| f.next_offset.map(|offset| (partition, offset))).collect()
    }

    fn poll(&mut self, _max_records: usize) -> Result<Polled, SourceError> {
        self.start_new_partitions(false)?;
        if self.partitions.values().all(|f| f.finished) {
            return Ok(Polled::Exhausted);
        }
        let count = self.partitions.len();
        for step in 0..count {
            let index = (self.turn + step) % count;
            let Some((&partition, fetched)) =
                self.partitions.iter_mut().nth(index).filter(|(_, f)| !f.paused && !f.finished)
            else {
                continue;
            };
            // A replay's partition that is empty, or read to its end, says so.
            if fetched.until.is_some_and(|until| fetched.next_offset.is_some_and(|next| next >= until)) {
                fetched.finished = true;
                fetched.fetcher.abort();
                let mut batch = RecordBatch::new(partition, fetched.next_offset.unwrap_or_default());
                batch.state = PartitionState::Finished;
                self.turn = index + 1;
                return Ok(Polled::Records(batch));
            }
            let now = Instant::now();
            match fetched.receiver.try_recv() {
                Ok(Ok(mut batch)) => {
                    if let Some(until) = fetched.until {
                        batch.keep_below(until);
                        if batch.next_offset >= until {
                            fetched.finished = true;
                            fetched.fetcher.abort();
                            batch.state = PartitionState::Finished;
                            fetched.next_offset = Some(batch.next_offset);
                            self.turn = index + 1;
                            return Ok(Polled::Records(batch));
                        }
                    }
                    fetched.next_offset = Some(batch.next_offset);
                    if !batch.is_empty() {
                        fetched.last_records = now;
                        fetched.idle = false;
                    } else if let Some(timeout) = self.idle_timeout {
                        let caught_up = batch.end_offset.is_some_and(|end| end <= batch.next_offset);
                        if caught_up && !fetched.idle && now.duration_since(fetched.last_records) >= timeout {
                            fetched.idle = true;
                            fetched.reported_end = None; // say so now
                        }
                    }
                    if fetched.idle {
                        batch.state = PartitionState::Idle;
                    }
                    // An empty fetch matters only when it says something new.
                    if batch.is_empty() && batch.end_offset == fetched.reported_end {
                        continue;
                    }
                    fetched.reported_end = batch.end_offset;
                    self.turn = index + 1;
                    return Ok(Polled::Records(batch));
                }
                Ok(Err(error)) => return Err(error),
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(Error::new("a Kafka fetcher stopped")),
            }
        }
        Ok(Polled::Pending)
    }

    fn pause(&mut self, partition: PartitionId, paused: bool) {
        if let Some(fetched) = self.partitions.get_mut(&partition) {
            fetched.paused = paused;
        }
    }
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").field("partitions", &self.partitions.keys().collect::<Vec<_>>()).finish()
    }
}

/// What one fetch of a partition brought.
struct Fetch {
    batch: RecordBatch,
    /// The base offset of the first batch reaching the fetch offset, if any.
    first_base: Option<Offset>,
}

/// Fetches one partition into its queue, until the reader is dropped.
struct Fetcher {
    client: Arc<KafkaClient>,
    config: KafkaConfig,
    partition: PartitionId,
    batches: mpsc::Sender<Result<RecordBatch, SourceError>>,
    /// Decompressed records, kept from one batch to the next.
    scratch: Vec<u8>,
}

impl Fetcher {
    async fn run(mut self, start: Start) {
        let mut connection: Option<Connection> = None;
        let mut wait = Duration::ZERO;
        let mut offset = None;
        loop {
            let step = async {
                let from = match offset {
                    Some(from) => from,
                    None => start.resolve(&self.client, &self.config.topic, self.partition).await?,
                };
                offset = Some(from);
                if connection.is_none() {
                    connection = Some(self.client.partition_connection(&self.config.topic, self.partition).await?);
                }
                let connection = connection.as_mut().expect("connected above");
                self.fetch_complete(connection, from).await
            };
            let fetched = match step.await {
                Ok(batch) => {
                    if wait > Duration::ZERO {
                        tracing::info!(partition = self.partition, "Reading partition again.");
                        wait = Duration::ZERO;
                    }
                    offset = Some(batch.next_offset);
                    Ok(batch)
                }
                Err(KafkaError::Refused { error: ResponseError::OffsetOutOfRange, .. }) => {
                    // The records between here and the log's start are gone (retention): they can
                    // no longer be counted, and skipping them silently would break exactly-once.
                    Err(Error::data_lost(format!(
                        "offset {} of partition {} of {} is no longer in the log; reset the pipeline's offsets \
                         to go on without the records that were lost",
                        offset.unwrap_or_default(),
                        self.partition,
                        self.config.topic
                    )))
                }
                Err(error) if error.is_transient() => {
                    connection = None; // the leader may have moved: look it up again
                    wait = (wait * 2).clamp(Duration::from_millis(100), self.config.max_backoff);
                    tracing::warn!(partition = self.partition, error = %error, retry_in = ?wait,
                        "Cannot fetch from Kafka; retrying.");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => Err(Error::rejected(format!(
                    "cannot read partition {} of {}: {error}",
                    self.partition, self.config.topic
                ))),
            };
            let fatal = fetched.is_err();
            if self.batches.send(fetched).await.is_err() || fatal {
                return;
            }
        }
    }

    /// Fetches from `offset`. Kafka answers a fetch from inside a record batch with that whole
    /// batch; some Kafka-compatible brokers answer with the batches after it, so that a reader
    /// resuming in the middle of a batch would skip the rest of it. When the first batch starts
    /// past `offset`, this looks back, doubling the distance, for the batch that holds `offset`;
    /// where the records in between really are gone (compaction), it finds none and nothing
    /// changes.
    async fn fetch_complete(&mut self, connection: &mut Connection, offset: Offset) -> Result<RecordBatch, KafkaError> {
        let wait = i32::try_from(self.config.fetch_max_wait.as_millis()).unwrap_or(i32::MAX);
        let fetched = self.fetch(connection, offset, offset, wait).await?;
        let complete = match fetched.first_base {
            Some(base) => base <= offset,
            // Nothing there yet, rather than something skipped.
            None => fetched.batch.end_offset.is_none_or(|end| end <= offset),
        };
        if complete {
            return Ok(fetched.batch);
        }
        let earliest = self.client.offset(&self.config.topic, self.partition, OffsetAt::Earliest).await?;
        let mut back = 1;
        loop {
            let from = (offset - back).max(earliest);
            let earlier = self.fetch(connection, from, offset, 0).await?;
            if earlier.first_base.is_some_and(|base| base <= offset) {
                return Ok(earlier.batch);
            }
            if from == earliest {
                return Ok(fetched.batch);
            }
            back *= 2;
        }
    }

    /// One fetch from `at`, keeping the records from `keep_from` on.
    async fn fetch(
        &mut self,
        connection: &mut Connection,
        at: Offset,
        keep_from: Offset,
        wait_ms: i32,
    ) -> Result<Fetch, KafkaError> {
        let fetched =
            fetch(connection, &self.config.topic, self.partition, at, self.config.fetch_max_bytes, wait_ms).await?;
        let mut batch = RecordBatch::new(self.partition, keep_from);
        let passed = read_batches(&fetched.records, keep_from, &fetched.aborted, &mut batch, &mut self.scratch)?;
        batch.end_offset = Some(fetched.end);
        if passed.markers > 0 || passed.aborted > 0 {
            tracing::debug!(
                partition = self.partition,
                markers = passed.markers,
                aborted = passed.aborted,
                "Passed transaction markers and aborted records."
            );
        }
        Ok(Fetch { batch, first_base: passed.first_base })
    }
}
