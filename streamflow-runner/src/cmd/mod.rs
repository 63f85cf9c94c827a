//! One module per subcommand.

mod generate;
mod offsets;
mod produce;
mod replay;
mod reset;
mod run;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use streamflow_core::kafka::{ClientConfig, KafkaClient};
use streamflow_core::PartitionId;

use crate::cli::Command;

/// Runs a subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Offsets(args) => offsets::run(args),
        Command::Reset(args) => reset::run(args),
    }
}

/// A Kafka client on the brokers of `args`.
async fn kafka_client(args: &crate::cli::KafkaArgs) -> anyhow::Result<Arc<KafkaClient>> {
    KafkaClient::connect(ClientConfig::new(args.brokers.clone()))
        .await
        .with_context(|| format!("cannot reach Kafka at {}", args.brokers.join(",")))
}

/// The partitions of the topic of `args`, if it exists.
async fn topic_partitions(
    client: &KafkaClient,
    args: &crate::cli::KafkaArgs,
) -> anyhow::Result<Option<Vec<PartitionId>>> {
    let found =
        client.partitions(&args.topic).await.with_context(|| format!("cannot look up the topic {}", args.topic))?;
    Ok(found.map(|partitions| partitions.iter().map(|p| p.partition).collect()))
}
