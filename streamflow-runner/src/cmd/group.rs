//! The pipeline's position, told to Kafka: after each PostgreSQL commit, the same offsets are
//! committed under a consumer group named after the pipeline, so that `kafka-consumer-groups`,
//! Burrow or kafka-lag-exporter show its lag. Advisory: never read back (PostgreSQL stays the
//! truth), commits coalesced to the newest, failures logged and the next commit tried.

use std::collections::BTreeMap;
use std::time::Duration;

use streamflow_core::kafka::{ClientConfig, KafkaClient};
use streamflow_core::{Offset, PartitionId};
use tokio::sync::watch;

/// The offsets committed last, as the sink's hook sends them.
pub type Offsets = watch::Receiver<BTreeMap<PartitionId, Offset>>;

/// A sender for the sink's commit hook, and its receiver.
pub fn channel() -> (watch::Sender<BTreeMap<PartitionId, Offset>>, Offsets) {
    watch::channel(BTreeMap::new())
}

/// Commits each new value of `offsets` for `group` on `topic`, until the sender goes (the sink
/// ended) and its last value is committed.
pub async fn commit(client: ClientConfig, group: String, topic: String, mut offsets: Offsets) {
    let mut connected: Option<std::sync::Arc<KafkaClient>> = None;
    let mut warned = false;
    while offsets.changed().await.is_ok() {
        let latest = offsets.borrow_and_update().clone();
        if latest.is_empty() {
            continue;
        }
        let result = async {
            let client = match &connected {
                Some(client) => client.clone(),
                None => {
                    let client = KafkaClient::connect(client.clone()).await?;
                    connected = Some(client.clone());
                    client
                }
            };
            client.commit_offsets(&group, &topic, &latest).await
        };
        match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(Ok(())) => {
                if warned {
                    tracing::info!(group, "Committing the consumer group's offsets again.");
                    warned = false;
                }
            }
            Ok(Err(error)) => {
                connected = None;
                if !warned {
                    tracing::warn!(group, %error, "Cannot commit the consumer group's offsets to Kafka; the pipeline \
                        goes on (they only show its lag).");
                    warned = true;
                }
            }
            Err(_) => {
                connected = None;
                if !warned {
                    tracing::warn!(group, "Committing the consumer group's offsets timed out; the pipeline goes on.");
                    warned = true;
                }
            }
        }
    }
}
