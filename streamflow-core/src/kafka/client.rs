//! The cluster as one client sees it: which brokers there are, which leads each partition, and
//! the requests that are not a partition's stream of fetches or produces (topics, offsets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, FindCoordinatorRequest, GroupId, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

use super::connection::Connection;
use super::records::{write_batch, BatchKind, Compression, Produced};
use super::security::Security;
use super::KafkaError;
use crate::position::{Offset, PartitionId};

/// How to reach a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The client id the brokers log.
    pub client_id: String,
    /// How long connecting to a broker may take.
    pub connect_timeout: Duration,
    /// How long a broker may take to answer a request (a fetch's own wait comes on top).
    pub request_timeout: Duration,
    /// TLS and SASL.
    pub security: Security,
}

impl ClientConfig {
    /// Settings for `brokers`, the rest at their defaults.
    pub fn new(brokers: Vec<String>) -> ClientConfig {
        ClientConfig {
            brokers,
            client_id: "streamflow".into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            security: Security::default(),
        }
    }
}

/// Where to look up an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetAt {
    /// The oldest record the broker keeps.
    Earliest,
    /// The end of what a read-committed consumer can read (the last stable offset).
    Latest,
    /// The first record at or after this time, in milliseconds since 1970.
    Time(i64),
}

/// One partition of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: PartitionId,
    /// Its leader's node id (-1: none now).
    pub leader: i32,
}

/// A client of one cluster, shared by the tasks that use it.
pub struct KafkaClient {
    config: ClientConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Node id → `host:port`, from the last metadata answer.
    brokers: BTreeMap<i32, String>,
    controller: Option<i32>,
    /// Connections for the requests of this client itself, by node id (-1: a bootstrap broker).
    connections: HashMap<i32, Connection>,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClient").field("brokers", &self.config.brokers).finish()
    }
}

impl KafkaClient {
    /// Connects to a bootstrap broker and learns the cluster.
    pub async fn connect(config: ClientConfig) -> Result<Arc<KafkaClient>, KafkaError> {
        if config.brokers.is_empty() {
            return Err(KafkaError::Config("no bootstrap brokers".into()));
        }
        let client = Arc::new(KafkaClient { config, state: Mutex::default() });
        client.metadata(&[]).await?;
        Ok(client)
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A new connection to `broker` (`host:port`), for a task's own stream of requests.
    pub async fn open(&self, broker: &str) -> Result<Connection, KafkaError> {
        Connection::open(broker, &self.config).await
    }

    /// Runs `request` on this client's connection to `node` (any broker for `None`), opening it
    /// when needed; a connection that failed is dropped.
    async fn with_connection<T>(
        &self,
        node: Option<i32>,
        request: impl AsyncFnOnce(&mut Connection) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        let mut state = self.state.lock().await;
        let key = node.unwrap_or(-1);
        if !state.connections.contains_key(&key) {
            let addresses: Vec<String> = match node {
                Some(node) => {
                    let address = state.brokers.get(&node).cloned().ok_or(KafkaError::NoLeader(node))?;
                    vec![address]
                }
                None => state.brokers.values().cloned().chain(self.config.brokers.iter().cloned()).collect(),
            };
            let mut last = None;
            for address in addresses {
                match self.open(&address).await {
                    Ok(connection) => {
                        state.connections.insert(key, connection);
                        last = None;
                        break;
                    }
                    Err(error) => last = Some(error),
                }
            }
            if let Some(error) = last {
                return Err(error);
            }
        }
        let connection = state.connections.get_mut(&key).expect("opened above");
        let result = request(connection).await;
        if result.as_ref().is_err_and(|e| e.is_connection_lost()) {
            state.connections.remove(&key);
        }
        result
    }

    /// The cluster's metadata for `topics` (the brokers only, for none); keeps the brokers.
    async fn metadata(&self, topics: &[&str]) -> Result<MetadataResponse, KafkaError> {
        let request_topics: Vec<MetadataRequestTopic> = topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string((*t).to_owned())))))
            .collect();
        let answer = self
            .with_connection(None, async |connection: &mut Connection| {
                let version = connection.version::<MetadataRequest>(4..=8)?;
                let request =
                    MetadataRequest::default().with_topics(Some(request_topics)).with_allow_auto_topic_creation(false);
                connection.send(&request, version).await
            })
            .await?;
        let mut state = self.state.lock().await;
        state.brokers =
            answer.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
        state.controller = Some(answer.controller_id.0).filter(|&id| id >= 0);
        Ok(answer)
    }

    /// The partitions of `topic`, asked of the cluster now; `None` when there is no such topic.
    pub async fn partitions(&self, topic: &str) -> Result<Option<Vec<PartitionInfo>>, KafkaError> {
        let answer = self.metadata(&[topic]).await?;
        let Some(found) = answer.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic)) else {
            return Ok(None);
        };
        match found.error_code.err() {
            None => {}
            Some(ResponseError::UnknownTopicOrPartition) => return Ok(None),
            Some(error) => {
                return Err(KafkaError::Refused { broker: "metadata".into(), what: format!("topic {topic}"), error })
            }
        }
        let mut partitions: Vec<PartitionInfo> = found
            .partitions
            .iter()
            .filter_map(|p| {
                let partition = PartitionId::try_from(p.partition_index).ok()?;
                Some(PartitionInfo { partition, leader: p.leader_id.0 })
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        Ok(Some(partitions))
    }

    /// The address of the leader of `partition` of `topic`, asked of the cluster now.
    pub async fn leader(&self, topic: &str, partition: PartitionId) -> Result<(i32, String), KafkaError> {
        let partitions = self.partitions(topic).await?.ok_or_else(|| KafkaError::UnknownTopic(topic.to_owned()))?;
        let leader = partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| KafkaError::UnknownPartition { topic: topic.to_owned(), partition })?
            .leader;
        let address = self.state.lock().await.brokers.get(&leader).cloned().ok_or(KafkaError::NoLeader(leader))?;
        Ok((leader, address))
    }

    /// A new connection to the leader of `partition` of `topic`.
    pub async fn partition_connection(&self, topic: &str, partition: PartitionId) -> Result<Connection, KafkaError> {
        let (_, address) = self.leader(topic, partition).await?;
        self.open(&address).await
    }

    /// The offset of `partition` of `topic` at `at`; for a time past the last record, the end.
    pub async fn offset(&self, topic: &str, partition: PartitionId, at: OffsetAt) -> Result<Offset, KafkaError> {
        let (leader, _) = self.leader(topic, partition).await?;
        let timestamp = match at {
            OffsetAt::Earliest => -2,
            OffsetAt::Latest => -1,
            OffsetAt::Time(ms) => ms,
        };
        let index = partition_index(partition)?;
        let name = TopicName(StrBytes::from_string(topic.to_owned()));
        let offset = self
            .with_connection(Some(leader), async |connection: &mut Connection| {
                let version = connection.version::<ListOffsetsRequest>(1..=5)?;
                let partitions =
                    vec![ListOffsetsPartition::default().with_partition_index(index).with_timestamp(timestamp)];
                let mut request = ListOffsetsRequest::default()
                    .with_replica_id((-1).into())
                    .with_topics(vec![ListOffsetsTopic::default().with_name(name).with_partitions(partitions)]);
                if version >= 2 {
                    request = request.with_isolation_level(1); // read committed
                }
                let answer = connection.send(&request, version).await?;
                let found = answer.topics.iter().flat_map(|t| &t.partitions).find(|p| p.partition_index == index);
                let found = found.ok_or_else(|| KafkaError::UnknownPartition { topic: topic.to_owned(), partition })?;
                if let Some(error) = found.error_code.err() {
                    return Err(KafkaError::Refused {
                        broker: connection.broker().to_owned(),
                        what: format!("the offsets of partition {partition} of {topic}"),
                        error,
                    });
                }
                Ok(found.offset)
            })
            .await?;
        // No record at or after the time: the end of the log (some brokers answer -1, some 0).
        match (at, offset) {
            (OffsetAt::Time(_), -1) => Box::pin(self.offset(topic, partition, OffsetAt::Latest)).await,
            _ => Ok(offset),
        }
    }

    /// The end of `partition`'s log for a read-committed consumer (its last stable offset), from
    /// a fetch's answer: some brokers answer a `ListOffsets` for the latest offset with less.
    pub async fn end_offset(&self, topic: &str, partition: PartitionId) -> Result<Offset, KafkaError> {
        let earliest = self.offset(topic, partition, OffsetAt::Earliest).await?;
        let (leader, _) = self.leader(topic, partition).await?;
        self.with_connection(Some(leader), async |connection: &mut Connection| {
            Ok(super::fetch::fetch(connection, topic, partition, earliest, 1, 0).await?.end)
        })
        .await
    }

    /// Commits `offsets` (partition → the next offset to read) of `topic` for the consumer group
    /// `group`, as a consumer outside any group generation does: what Kafka's tools read as the
    /// group's position, and its lag.
    pub async fn commit_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: &BTreeMap<PartitionId, Offset>,
    ) -> Result<(), KafkaError> {
        let coordinator = self
            .with_connection(None, async |connection: &mut Connection| {
                let version = connection.version::<FindCoordinatorRequest>(1..=3)?;
                let request = FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_string(group.to_owned()))
                    .with_key_type(0);
                let answer = connection.send(&request, version).await?;
                if answer.error_code != 0 {
                    return Err(connection.refused("FindCoordinator", answer.error_code));
                }
                Ok((answer.node_id.0, format!("{}:{}", answer.host.as_str(), answer.port)))
            })
            .await?;
        let (node, address) = coordinator;
        self.state.lock().await.brokers.entry(node).or_insert(address);
        let partitions = offsets
            .iter()
            .map(|(&partition, &offset)| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(partition as i32)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(StrBytes::from_static_str("")))
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(partitions)]);
        self.with_connection(Some(node), async |connection: &mut Connection| {
            let version = connection.version::<OffsetCommitRequest>(2..=7)?;
            let answer = connection.send(&request, version).await?;
            let refused = answer.topics.iter().flat_map(|t| &t.partitions).find(|p| p.error_code != 0);
            match refused {
                Some(partition) => Err(connection.refused("OffsetCommit", partition.error_code)),
                None => Ok(()),
            }
        })
        .await
    }

    /// Creates `topic`; `false` when it exists already.
    pub async fn create_topic(&self, topic: &str, partitions: i32, replication: i16) -> Result<bool, KafkaError> {
        let controller = self.state.lock().await.controller;
        let name = TopicName(StrBytes::from_string(topic.to_owned()));
        self.with_connection(controller, async |connection: &mut Connection| {
            let version = connection.version::<CreateTopicsRequest>(2..=4)?;
            let creatable = CreatableTopic::default()
                .with_name(name)
                .with_num_partitions(partitions)
                .with_replication_factor(replication);
            let request = CreateTopicsRequest::default().with_topics(vec![creatable]).with_timeout_ms(10_000);
            let answer = connection.send(&request, version).await?;
            match answer.topics.first().map(|t| t.error_code.err()) {
                Some(None) => Ok(true),
                Some(Some(ResponseError::TopicAlreadyExists)) => Ok(false),
                Some(Some(error)) => Err(KafkaError::Refused {
                    broker: connection.broker().to_owned(),
                    what: format!("creating topic {topic}"),
                    error,
                }),
                None => Err(KafkaError::Protocol {
                    broker: connection.broker().to_owned(),
                    problem: "no topic in the answer".into(),
                }),
            }
        })
        .await
    }
}

/// A partition as an `int32` of the protocol.
pub(crate) fn partition_index(partition: PartitionId) -> Result<i32, KafkaError> {
    i32::try_from(partition).map_err(|_| KafkaError::Config(format!("partition {partition} is out of range")))
}

/// Produces to one partition, on a connection of its own to the partition's leader, following
/// the leader when it moves.
pub struct PartitionProducer {
    client: Arc<KafkaClient>,
    topic: String,
    partition: PartitionId,
    connection: Option<Connection>,
}

impl PartitionProducer {
    /// A producer of `partition` of `topic`; it connects when it first produces.
    pub fn new(client: Arc<KafkaClient>, topic: &str, partition: PartitionId) -> PartitionProducer {
        PartitionProducer { client, topic: topic.to_owned(), partition, connection: None }
    }

    /// Appends `records` as one batch, all replicas acknowledging; the offset of the first. A
    /// failure that passes is retried `attempts` times in all, with a growing pause.
    pub async fn produce(
        &mut self,
        records: &[Produced],
        compression: Compression,
        attempts: u32,
    ) -> Result<Offset, KafkaError> {
        let batch = Bytes::from(write_batch(records, compression, BatchKind::default()).map_err(KafkaError::Records)?);
        self.produce_batch(batch, attempts).await
    }

    /// Appends a batch written by [`write_batch`].
    pub async fn produce_batch(&mut self, batch: Bytes, attempts: u32) -> Result<Offset, KafkaError> {
        let mut wait = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.attempt(batch.clone()).await {
                Ok(offset) => return Ok(offset),
                Err(error) if error.is_transient() && attempt < attempts => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %error, retry_in = ?wait,
                        "Cannot produce; retrying.");
                    self.connection = None;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&mut self, batch: Bytes) -> Result<Offset, KafkaError> {
        if self.connection.is_none() {
            self.connection = Some(self.client.partition_connection(&self.topic, self.partition).await?);
        }
        let connection = self.connection.as_mut().expect("connected above");
        let version = connection.version::<ProduceRequest>(3..=8)?;
        let index = partition_index(self.partition)?;
        let data = PartitionProduceData::default().with_index(index).with_records(Some(batch));
        let topic = TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
            .with_partition_data(vec![data]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
        let answer = connection.send(&request, version).await?;
        let found =
            answer.responses.iter().flat_map(|t| &t.partition_responses).find(|p| p.index == index).ok_or_else(
                || KafkaError::Protocol {
                    broker: connection.broker().to_owned(),
                    problem: "no partition in the answer".into(),
                },
            )?;
        match found.error_code.err() {
            None => Ok(found.base_offset),
            Some(error) => Err(KafkaError::Refused {
                broker: connection.broker().to_owned(),
                what: format!("a produce to partition {} of {}", self.partition, self.topic),
                error,
            }),
        }
    }
}
