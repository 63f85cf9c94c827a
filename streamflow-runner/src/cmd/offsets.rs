//! `streamflow offsets`: where each partition's log ends and, with a database, where the
//! pipeline stands in it — the consumer lag, without consumer groups.

use anyhow::Context;
use streamflow_core::PostgresSink;

use crate::cli::OffsetsArgs;

pub fn run(args: OffsetsArgs) -> anyhow::Result<()> {
    let topic = args.kafka.topic.clone();
    let ends: Vec<(u32, i64)> = tokio::runtime::Runtime::new()?.block_on(async {
        let client = super::kafka_client(&args.kafka).await?;
        let partitions = super::topic_partitions(&client, &args.kafka)
            .await?
            .with_context(|| format!("the topic {topic} does not exist"))?;
        let mut ends = Vec::new();
        for partition in partitions {
            let end = client.end_offset(&topic, partition).await?;
            ends.push((partition, end));
        }
        anyhow::Ok(ends)
    })?;
    let committed = match args.database.postgres(&topic) {
        Some(config) => PostgresSink::stored_checkpoint(&config).context("cannot read the stored offsets")?.positions,
        None => std::collections::BTreeMap::new(),
    };
    println!("partition\tend\tcommitted\tlag");
    for (partition, end) in ends {
        match committed.get(&partition) {
            Some(stored) => println!("{partition}\t{end}\t{}\t{}", stored.next_offset, end - stored.next_offset),
            None => println!("{partition}\t{end}\t-\t-"),
        }
    }
    Ok(())
}
