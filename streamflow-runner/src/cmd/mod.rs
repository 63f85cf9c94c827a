//! One module per subcommand.

mod dead_letters;
mod generate;
mod group;
mod offsets;
mod produce;
mod replay;
mod reset;
mod run;
mod serve;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Context;
use streamflow_core::dataflow::Mesh;
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
        Command::DeadLetters(action) => dead_letters::run(action),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "streamflow", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// What this process exchanged with the others of its cluster, once it ends.
fn log_exchanged(mesh: Option<&Arc<Mesh>>, events: u64) {
    for peer in mesh.into_iter().flat_map(|mesh| &mesh.peers) {
        let (sent, received) = (peer.sent.load(Relaxed), peer.received.load(Relaxed));
        tracing::info!(
            process = peer.process,
            sent_bytes = sent,
            received_bytes = received,
            bytes_per_event = format!("{:.1}", (sent + received) as f64 / events.max(1) as f64),
            "Exchanged with another process."
        );
    }
}

/// A Kafka client on the brokers of `args`.
async fn kafka_client(args: &crate::cli::KafkaArgs) -> anyhow::Result<Arc<KafkaClient>> {
    let config = ClientConfig { security: args.security.security()?, ..ClientConfig::new(args.brokers.clone()) };
    KafkaClient::connect(config).await.with_context(|| format!("cannot reach Kafka at {}", args.brokers.join(",")))
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
