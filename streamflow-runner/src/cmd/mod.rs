//! One module per subcommand.

mod generate;
mod offsets;
mod produce;
mod replay;
mod run;
mod serve;

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
    }
}

/// A Kafka client on the brokers of `args`.
async fn kafka_client(args: &crate::cli::KafkaArgs) -> anyhow::Result<rskafka::client::Client> {
    use anyhow::Context;
    rskafka::client::ClientBuilder::new(args.brokers.clone())
        .build()
        .await
        .with_context(|| format!("cannot reach Kafka at {}", args.brokers.join(",")))
}

/// The partitions of the topic of `args`, if it exists.
async fn topic_partitions(
    client: &rskafka::client::Client,
    args: &crate::cli::KafkaArgs,
) -> anyhow::Result<Option<Vec<i32>>> {
    use anyhow::Context;
    let topics = client.list_topics().await.context("cannot list the topics")?;
    Ok(topics.into_iter().find(|t| t.name == args.topic).map(|t| t.partitions.into_iter().collect()))
}
