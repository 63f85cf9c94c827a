//! One fetch of one partition, as a read-committed consumer: the records from an offset, the
//! aborted transactions among them, and how far the log goes.

use bytes::Bytes;
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::client::partition_index;
use super::records::Aborted;
use super::{Connection, KafkaError};
use crate::position::{Offset, PartitionId};

/// What a fetch brought.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Record batches, as stored (the last one may be cut short).
    pub records: Bytes,
    /// The aborted transactions among them.
    pub aborted: Vec<Aborted>,
    /// The end of the log for a read-committed consumer: the last stable offset (the high
    /// watermark where the broker gives none).
    pub end: Offset,
}

/// Fetches `partition` of `topic` from `offset`: at most `max_bytes` (but a whole first batch),
/// waiting up to `wait_ms` for records to come.
pub async fn fetch(
    connection: &mut Connection,
    topic: &str,
    partition: PartitionId,
    offset: Offset,
    max_bytes: i32,
    wait_ms: i32,
) -> Result<Fetched, KafkaError> {
    let version = connection.version::<FetchRequest>(4..=11)?;
    let index = partition_index(partition)?;
    let wanted =
        FetchPartition::default().with_partition(index).with_fetch_offset(offset).with_partition_max_bytes(max_bytes);
    let request = FetchRequest::default()
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_isolation_level(1) // read committed
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![wanted])]);
    let answer = connection.send(&request, version).await?;
    let broker = connection.broker();
    if let Some(error) = answer.error_code.err() {
        return Err(KafkaError::Refused { broker: broker.to_owned(), what: "a fetch".into(), error });
    }
    let data =
        answer.responses.into_iter().flat_map(|t| t.partitions).find(|p| p.partition_index == index).ok_or_else(
            || KafkaError::Protocol { broker: broker.to_owned(), problem: "no partition in the answer".into() },
        )?;
    if let Some(error) = data.error_code.err() {
        return Err(KafkaError::Refused {
            broker: broker.to_owned(),
            what: format!("a fetch of partition {partition} of {topic} at {offset}"),
            error,
        });
    }
    Ok(Fetched {
        records: data.records.unwrap_or_default(),
        aborted: data
            .aborted_transactions
            .unwrap_or_default()
            .iter()
            .map(|t| Aborted { producer_id: t.producer_id.0, first_offset: t.first_offset })
            .collect(),
        end: if data.last_stable_offset >= 0 { data.last_stable_offset } else { data.high_watermark },
    })
}
