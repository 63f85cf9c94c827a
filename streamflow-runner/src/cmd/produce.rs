//! `streamflow produce`: JSON-lines events into Kafka, each keyed by its `stream_id` and sent to
//! the partition of that key as Kafka's default partitioner decides, so that one stream's events
//! stay in order on one partition. Every line becomes a record as `streamflow replay` reads it
//! (empty and malformed ones too: they are the pipeline's to refuse); a line without a readable
//! `stream_id` goes without a key, round-robin.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::sync::Arc;

use anyhow::Context;
use streamflow_core::kafka::{partition_of, Compression, PartitionProducer, Produced};
use streamflow_core::EventTime;

use crate::cli::ProduceArgs;

/// Records per produce request.
const BATCH_RECORDS: usize = 1_000;

/// Attempts of a produce request before giving up.
const PRODUCE_ATTEMPTS: u32 = 16;

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut reader: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        Box::new(BufReader::new(
            File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?,
        ))
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut producer = KeyedProducer::connect(&args.kafka).await?;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).context("cannot read the input")? == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            let key = stream_id(&line).map(String::into_bytes);
            producer.push(key, line.clone()).await?;
        }
        let produced = producer.finish().await?;
        tracing::info!(records = produced, topic = %args.kafka.topic, "Produced.");
        Ok(())
    })
}

/// Records into the partitions of a topic: a keyed one to the partition Kafka's default
/// partitioner gives its key, one without a key round-robin; in batches.
pub struct KeyedProducer {
    producers: Vec<PartitionProducer>,
    batches: Vec<Vec<Produced>>,
    unkeyed: usize,
    produced: u64,
}

impl KeyedProducer {
    /// A producer into the topic of `kafka`, which must exist.
    pub async fn connect(kafka: &crate::cli::KafkaArgs) -> anyhow::Result<KeyedProducer> {
        let topic = &kafka.topic;
        let client = super::kafka_client(kafka).await?;
        let partitions = super::topic_partitions(&client, kafka)
            .await?
            .with_context(|| format!("the topic {topic} does not exist (streamflow generate creates it)"))?;
        let producers: Vec<PartitionProducer> =
            partitions.iter().map(|&p| PartitionProducer::new(Arc::clone(&client), topic, p)).collect();
        let batches = vec![Vec::new(); producers.len()];
        Ok(KeyedProducer { producers, batches, unkeyed: 0, produced: 0 })
    }

    /// Adds a record, stamped with the time now; sends its partition's batch when full.
    pub async fn push(&mut self, key: Option<Vec<u8>>, value: Vec<u8>) -> anyhow::Result<()> {
        let index = match &key {
            Some(key) => partition_of(key, self.producers.len() as u32) as usize,
            None => {
                self.unkeyed += 1;
                self.unkeyed % self.producers.len()
            }
        };
        let timestamp_ms = EventTime::now().micros() / 1_000;
        self.batches[index].push(Produced { key, value, timestamp_ms });
        if self.batches[index].len() == BATCH_RECORDS {
            self.produced += send(&mut self.producers[index], &mut self.batches[index]).await?;
        }
        Ok(())
    }

    /// Sends what is left; the records produced in all.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        for (producer, batch) in self.producers.iter_mut().zip(&mut self.batches) {
            self.produced += send(producer, batch).await?;
        }
        Ok(self.produced)
    }
}

async fn send(producer: &mut PartitionProducer, batch: &mut Vec<Produced>) -> anyhow::Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let count = batch.len() as u64;
    producer.produce(batch, Compression::None, PRODUCE_ATTEMPTS).await.context("cannot produce to Kafka")?;
    batch.clear();
    Ok(count)
}

/// The `stream_id` of a JSON event, when it has a readable one: the record's key.
fn stream_id(line: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    value.get("stream_id")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_stream_id() {
        assert_eq!(stream_id(br#"{"stream_id":"s1","ts":"x"}"#).as_deref(), Some("s1"));
        assert_eq!(stream_id(b"not json"), None);
        assert_eq!(stream_id(b"\xff"), None);
    }
}
