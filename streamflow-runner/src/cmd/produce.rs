//! `streamflow produce`: JSON-lines events into Kafka, each keyed by its `stream_id` and sent to
//! the partition of that key, so that one stream's events stay in order on one partition.

use std::fs::File;
use std::io::{self, BufRead, BufReader};

use anyhow::Context;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

use crate::cli::ProduceArgs;

/// Records per produce request.
const BATCH_RECORDS: usize = 1_000;

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        Box::new(BufReader::new(
            File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?,
        ))
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let topic = &args.kafka.topic;
        let client = super::kafka_client(&args.kafka).await?;
        let partitions = super::topic_partitions(&client, &args.kafka)
            .await?
            .with_context(|| format!("the topic {topic} does not exist (streamflow generate creates it)"))?
            .len();
        let mut clients = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            clients.push(
                client.partition_client(topic.clone(), i32::try_from(partition)?, UnknownTopicHandling::Retry).await?,
            );
        }
        let mut batches: Vec<Vec<Record>> = vec![Vec::new(); partitions];
        let mut produced = 0u64;
        for line in reader.lines() {
            let line = line.context("cannot read the input")?;
            if line.trim().is_empty() {
                continue;
            }
            let key = stream_id(&line);
            let partition = key.as_deref().map_or(0, |k| partition_of(k, partitions));
            batches[partition].push(Record {
                key: key.map(String::into_bytes),
                value: Some(line.into_bytes()),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            });
            if batches[partition].len() == BATCH_RECORDS {
                produced += send(&clients[partition], &mut batches[partition]).await?;
            }
        }
        for (client, batch) in clients.iter().zip(&mut batches) {
            produced += send(client, batch).await?;
        }
        tracing::info!(records = produced, topic = %topic, "Produced.");
        Ok(())
    })
}

async fn send(client: &rskafka::client::partition::PartitionClient, batch: &mut Vec<Record>) -> anyhow::Result<u64> {
    let count = batch.len() as u64;
    client.produce(std::mem::take(batch), Compression::NoCompression).await.context("cannot produce to Kafka")?;
    Ok(count)
}

/// The `stream_id` of a JSON event, when it has a readable one: the record's key.
fn stream_id(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("stream_id")?.as_str().map(str::to_owned)
}

/// The partition of a key: FNV-1a, so that it is the same in every run and on every machine.
fn partition_of(key: &str, partitions: usize) -> usize {
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    (hash % partitions.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_stream_id_and_stay_on_one_partition() {
        assert_eq!(stream_id(r#"{"stream_id":"s1","ts":"x"}"#).as_deref(), Some("s1"));
        assert_eq!(stream_id("not json"), None);
        assert_eq!(partition_of("s1", 4), partition_of("s1", 4));
        assert!(
            (0..100).map(|i| partition_of(&format!("stream_{i}"), 4)).collect::<std::collections::BTreeSet<_>>().len()
                == 4
        );
    }
}
