//! Kafka as a source, with [rskafka](https://docs.rs/rskafka): every partition of a topic, dealt
//! out over the workers.
//!
//! ```text
//!  tokio runtime (shared)                         timely worker
//!  fetcher task per partition ── bounded queue ──► KafkaSource::poll (never blocks)
//!   fetch_records(offset, ≤ fetch_max_bytes)          records, end of log, idle state
//!   waits when the queue is full (backpressure)
//!   retries with backoff when the broker is gone
//! ```
//! rskafka has no consumer groups, and none are needed: the offsets live with the results in the
//! sink's checkpoint, and a restarted pipeline starts each partition where that checkpoint says
//! ([`SourceContext::start_offset`]). A first run starts at the earliest or the latest offset.
//!
//! The end of the log comes from the high watermark of each fetch (some brokers answer a
//! `ListOffsets` for the latest offset with less than the true end).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::RecordAndOffset;
use rskafka::BackoffConfig;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::{Offset, PartitionId, PartitionState, Polled, RecordBatch, Source, SourceError};
use crate::dataflow::SourceContext;

/// Where a partition never read before starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartOffsets {
    /// At the oldest record the broker keeps.
    Earliest,
    /// At the end of the log: only records produced from now on (the original's default).
    #[default]
    Latest,
}

impl std::str::FromStr for StartOffsets {
    type Err = String;
    fn from_str(text: &str) -> Result<StartOffsets, String> {
        match text {
            "earliest" => Ok(StartOffsets::Earliest),
            "latest" => Ok(StartOffsets::Latest),
            _ => Err(format!("expected `earliest` or `latest`, not {text:?}")),
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
    /// Where a partition never read before starts.
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
        }
    }
}

/// A connection to a topic, shared by the readers of all workers.
pub struct Kafka {
    config: KafkaConfig,
    runtime: Runtime,
    client: Client,
    partitions: Vec<PartitionId>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka").field("config", &self.config).field("partitions", &self.partitions).finish()
    }
}

impl Kafka {
    /// Connects and finds the topic's partitions, waiting (and saying so) while the brokers
    /// cannot be reached or the topic does not exist yet.
    pub fn connect(config: KafkaConfig) -> Result<Kafka, SourceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka")
            .enable_all()
            .build()
            .map_err(|source| SourceError::Io { what: "the Kafka runtime".into(), source })?;
        let (client, partitions) = runtime.block_on(async {
            let mut wait = Duration::ZERO;
            loop {
                match Self::discover(&config).await {
                    Ok(found) => return found,
                    Err(problem) => {
                        wait = (wait * 2).clamp(Duration::from_millis(200), config.max_backoff);
                        tracing::warn!(brokers = ?config.brokers, topic = %config.topic, problem = %problem,
                            retry_in = ?wait, "Kafka is not ready; waiting.");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
        tracing::info!(topic = %config.topic, partitions = ?partitions, "Connected to Kafka.");
        Ok(Kafka { config, runtime, client, partitions })
    }

    async fn discover(config: &KafkaConfig) -> Result<(Client, Vec<PartitionId>), String> {
        let client = ClientBuilder::new(config.brokers.clone())
            .backoff_config(backoff(config))
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let topics = client.list_topics().await.map_err(|e| e.to_string())?;
        let topic = topics.into_iter().find(|t| t.name == config.topic).ok_or("the topic does not exist yet")?;
        let partitions = topic.partitions.into_iter().filter_map(|p| PartitionId::try_from(p).ok()).collect();
        Ok((client, partitions))
    }

    /// The topic's partitions.
    pub fn partitions(&self) -> &[PartitionId] {
        &self.partitions
    }

    /// The reader of the partitions `ctx`'s worker owns: starts a fetcher for each, at the
    /// checkpoint's offset or else at [`KafkaConfig::start`].
    pub fn source(&self, ctx: &SourceContext) -> Result<KafkaSource, SourceError> {
        let mut partitions = BTreeMap::new();
        for &partition in self.partitions.iter().filter(|&&p| ctx.owns(p)) {
            let client = self.runtime.block_on(self.partition_client(partition))?;
            let start = match ctx.start_offset(partition) {
                Some(offset) => offset,
                None => self.runtime.block_on(first_offset(&client, self.config.start, &self.config))?,
            };
            tracing::info!(partition, offset = start, "Reading partition.");
            let (sender, receiver) = mpsc::channel(self.config.queued_batches.max(1));
            let fetcher = self.runtime.spawn(fetch(client, partition, start, sender, self.config.clone()));
            partitions.insert(
                partition,
                Fetched {
                    receiver,
                    fetcher,
                    next_offset: start,
                    paused: false,
                    last_records: Instant::now(),
                    reported_end: None,
                    idle: false,
                },
            );
        }
        Ok(KafkaSource { partitions, idle_timeout: self.config.idle_timeout, turn: 0 })
    }

    async fn partition_client(&self, partition: PartitionId) -> Result<PartitionClient, SourceError> {
        let index = i32::try_from(partition).map_err(|_| SourceError::Fatal(format!("partition {partition}")))?;
        self.client.partition_client(self.config.topic.clone(), index, UnknownTopicHandling::Retry).await.map_err(|e| {
            SourceError::Fatal(format!("cannot reach partition {partition} of {}: {e}", self.config.topic))
        })
    }
}

fn backoff(config: &KafkaConfig) -> BackoffConfig {
    // rskafka retries inside each call for this long, then the fetcher logs and tries again.
    BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: config.max_backoff,
        base: 2.0,
        deadline: Some(Duration::from_secs(10)),
    }
}

/// Where a partition read for the first time starts.
async fn first_offset(
    client: &PartitionClient,
    start: StartOffsets,
    config: &KafkaConfig,
) -> Result<Offset, SourceError> {
    let earliest = client
        .get_offset(OffsetAt::Earliest)
        .await
        .map_err(|e| SourceError::Fatal(format!("cannot read the earliest offset of {}: {e}", config.topic)))?;
    match start {
        StartOffsets::Earliest => Ok(earliest),
        // The high watermark of a fetch is the true end of the log.
        StartOffsets::Latest => client
            .fetch_records(earliest, 1..2, 0)
            .await
            .map(|(_, high_watermark)| high_watermark)
            .map_err(|e| SourceError::Fatal(format!("cannot find the end of {}: {e}", config.topic))),
    }
}

/// Fetches a partition from `offset` on into `batches`, until the reader is dropped.
async fn fetch(
    client: PartitionClient,
    partition: PartitionId,
    mut offset: Offset,
    batches: mpsc::Sender<Result<RecordBatch, SourceError>>,
    config: KafkaConfig,
) {
    let max_wait = i32::try_from(config.fetch_max_wait.as_millis()).unwrap_or(i32::MAX);
    let mut wait = Duration::ZERO;
    loop {
        let fetched = match fetch_from(&client, offset, &config, max_wait).await {
            Ok((records, high_watermark)) => {
                if wait > Duration::ZERO {
                    tracing::info!(partition, "Reading partition again.");
                    wait = Duration::ZERO;
                }
                // A response may hold a batch twice or out of order (seen from tansu while a
                // producer appends): the records go on once each, in offset order.
                let mut records: Vec<&RecordAndOffset> = records.iter().filter(|r| r.offset >= offset).collect();
                records.sort_by_key(|r| r.offset);
                records.dedup_by_key(|r| r.offset);
                let mut batch = RecordBatch::new(partition, offset);
                for record in records {
                    batch.push(record.offset, record.record.value.as_deref().unwrap_or_default());
                }
                batch.end_offset = Some(high_watermark);
                offset = batch.next_offset;
                Ok(batch)
            }
            Err(KafkaError::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. }) => {
                // The records between here and the log's start are gone (retention): they can no
                // longer be counted, and skipping them silently would break exactly-once.
                Err(SourceError::Fatal(format!(
                    "offset {offset} of partition {partition} of {} is no longer in the log; reset the \
                     pipeline's offsets to go on without the records that were lost",
                    config.topic
                )))
            }
            Err(error) => {
                wait = (wait * 2).clamp(Duration::from_millis(100), config.max_backoff);
                tracing::warn!(partition, error = %error, retry_in = ?wait, "Cannot fetch from Kafka; retrying.");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let fatal = fetched.is_err();
        if batches.send(fetched).await.is_err() || fatal {
            return;
        }
    }
}

/// Fetches from `offset`. Kafka answers a fetch from inside a record batch with that whole batch;
/// some Kafka-compatible brokers answer with the batches after it, so that a reader resuming in
/// the middle of a batch would skip the rest of it. When the first record is past `offset`, this
/// looks back, doubling the distance, for the batch that holds `offset`; where the records in
/// between really are gone (compaction), it finds none and nothing changes.
async fn fetch_from(
    client: &PartitionClient,
    offset: Offset,
    config: &KafkaConfig,
    max_wait: i32,
) -> Result<(Vec<RecordAndOffset>, Offset), KafkaError> {
    let (records, high_watermark) = client.fetch_records(offset, 1..config.fetch_max_bytes, max_wait).await?;
    let first = records.iter().map(|r| r.offset).filter(|&o| o >= offset).min();
    let complete = match first {
        Some(first) => first == offset,
        None => high_watermark <= offset, // nothing there yet, rather than something skipped
    };
    if complete {
        return Ok((records, high_watermark));
    }
    let earliest = client.get_offset(OffsetAt::Earliest).await?;
    let mut back = 1;
    loop {
        let from = (offset - back).max(earliest);
        let (earlier, high_watermark) = client.fetch_records(from, 1..config.fetch_max_bytes, 0).await?;
        if earlier.iter().any(|r| r.offset <= offset) {
            return Ok((earlier, high_watermark));
        }
        if from == earliest {
            return Ok((records, high_watermark));
        }
        back *= 2;
    }
}

/// One partition as the reader sees it.
struct Fetched {
    receiver: mpsc::Receiver<Result<RecordBatch, SourceError>>,
    fetcher: tokio::task::JoinHandle<()>,
    next_offset: Offset,
    paused: bool,
    last_records: Instant,
    /// The end of the log last passed on, so that empty fetches go on only when it moves.
    reported_end: Option<Offset>,
    idle: bool,
}

/// The reader of the Kafka partitions one worker owns: see [`Kafka::source`].
pub struct KafkaSource {
    partitions: BTreeMap<PartitionId, Fetched>,
    idle_timeout: Option<Duration>,
    turn: usize,
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        for fetched in self.partitions.values() {
            fetched.fetcher.abort();
        }
    }
}

impl Source for KafkaSource {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().map(|(&partition, fetched)| (partition, fetched.next_offset)).collect()
    }

    fn poll(&mut self, _max_records: usize) -> Result<Polled, SourceError> {
        let count = self.partitions.len();
        for step in 0..count {
            let index = (self.turn + step) % count;
            let Some(fetched) = self.partitions.values_mut().nth(index).filter(|f| !f.paused) else { continue };
            let now = Instant::now();
            match fetched.receiver.try_recv() {
                Ok(Ok(mut batch)) => {
                    fetched.next_offset = batch.next_offset;
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
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(SourceError::Fatal("a Kafka fetcher stopped".into()));
                }
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
