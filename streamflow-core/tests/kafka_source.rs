//! The Kafka source against a real Kafka-protocol broker (tansu).

use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use streamflow_core::source::Polled;
use streamflow_core::{Kafka, KafkaConfig, Source, SourceContext};
use streamflow_testkit::{Storage, Tansu};

/// Regression: resuming at an offset inside a produced batch read nothing of the rest of that
/// batch, because tansu answers a fetch from inside a batch with the batches after it (Kafka
/// answers with the batch itself). A restart then rebuilt its open windows without those
/// records (found by the kill -9 test of `streamflow run`).
#[test]
fn resuming_inside_a_produced_batch_reads_the_rest_of_it() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        client.controller_client().unwrap().create_topic("events", 1, 1, 5_000).await.unwrap();
        let partition = client.partition_client("events", 0, UnknownTopicHandling::Retry).await.unwrap();
        for (batch, compression) in
            [Compression::NoCompression, Compression::Lz4, Compression::NoCompression].into_iter().enumerate()
        {
            let records = (0..7)
                .map(|i| Record {
                    key: None,
                    value: Some(format!("{batch}-{i}").into_bytes()),
                    headers: Default::default(),
                    timestamp: chrono::Utc::now(),
                })
                .collect();
            partition.produce(records, compression).await.unwrap();
        }
    });

    for start in [0, 3, 10, 20] {
        let mut config = KafkaConfig::new(vec![broker.address()], "events");
        config.fetch_max_wait = std::time::Duration::from_millis(10);
        let kafka = Kafka::connect(config).unwrap();
        let mut source = kafka.source(&SourceContext { worker: 0, peers: 1 });
        source.resume(&std::collections::BTreeMap::from([(0, start)])).unwrap();
        let mut offsets = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while offsets.len() < (21 - start) as usize && std::time::Instant::now() < deadline {
            if let Polled::Records(batch) = source.poll(1_000).unwrap() {
                offsets.extend(batch.iter().map(|record| record.offset));
            }
        }
        assert_eq!(offsets, (start..21).collect::<Vec<_>>(), "resuming at {start}");
    }
}
