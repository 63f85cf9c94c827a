//! `streamflow offsets`: where each partition's log ends and, with a database, where the
//! pipeline stands in it — the consumer lag, without consumer groups; and `offsets reset`,
//! which moves a stopped pipeline's offsets forward.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use streamflow_core::kafka::{KafkaClient, OffsetAt};
use streamflow_core::{Offset, PartitionId, PostgresSink, StartOffsets};

use crate::cli::{Format, KafkaArgs, OffsetsAction, OffsetsArgs, OffsetsResetArgs};

pub fn run(args: OffsetsArgs) -> anyhow::Result<()> {
    match args.action {
        Some(OffsetsAction::Reset(reset)) => self::reset(reset),
        None => show(args),
    }
}

#[derive(Serialize)]
struct PartitionJson {
    partition: PartitionId,
    end: Offset,
    committed: Option<Offset>,
    lag: Option<i64>,
}

fn show(args: OffsetsArgs) -> anyhow::Result<()> {
    let topic = args.kafka.topic.clone();
    let ends = tokio::runtime::Runtime::new()?.block_on(async {
        let client = super::kafka_client(&args.kafka).await?;
        let mut ends = Vec::new();
        for partition in partitions(&client, &args.kafka).await? {
            ends.push((partition, client.end_offset(&topic, partition).await?));
        }
        anyhow::Ok(ends)
    })?;
    let committed = match args.database.postgres(&topic) {
        Some(config) => PostgresSink::stored_checkpoint(&config).context("cannot read the stored offsets")?.positions,
        None => BTreeMap::new(),
    };
    let rows: Vec<PartitionJson> = ends
        .into_iter()
        .map(|(partition, end)| {
            let committed = committed.get(&partition).map(|p| p.next_offset);
            PartitionJson { partition, end, committed, lag: committed.map(|c| end - c) }
        })
        .collect();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&rows)?),
        Format::Text => {
            println!("partition\tend\tcommitted\tlag");
            for row in rows {
                let show = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
                println!("{}\t{}\t{}\t{}", row.partition, row.end, show(row.committed), show(row.lag));
            }
        }
    }
    Ok(())
}

/// The partitions of the topic of `args`, which must exist.
async fn partitions(client: &KafkaClient, args: &KafkaArgs) -> anyhow::Result<Vec<PartitionId>> {
    super::topic_partitions(client, args).await?.with_context(|| format!("the topic {} does not exist", args.topic))
}

fn reset(args: OffsetsResetArgs) -> anyhow::Result<()> {
    let topic = args.kafka.topic.clone();
    let config = args.database.postgres(&topic).context("offsets reset needs --database-url")?;
    let targets: BTreeMap<PartitionId, Offset> = tokio::runtime::Runtime::new()?.block_on(async {
        let client = super::kafka_client(&args.kafka).await?;
        let mut targets = BTreeMap::new();
        for partition in partitions(&client, &args.kafka).await? {
            let offset = match args.to {
                StartOffsets::Earliest => client.offset(&topic, partition, OffsetAt::Earliest).await?,
                StartOffsets::Latest => client.end_offset(&topic, partition).await?,
                StartOffsets::Time(time) => {
                    client.offset(&topic, partition, OffsetAt::Time(time.micros().div_euclid(1000))).await?
                }
            };
            targets.insert(partition, offset);
        }
        anyhow::Ok(targets)
    })?;
    if !args.yes {
        let stored = PostgresSink::stored_checkpoint(&config).context("cannot read the stored offsets")?.positions;
        println!("partition\tcommitted\tto");
        for (partition, to) in &targets {
            let from = stored.get(partition).map_or("-".to_owned(), |p| p.next_offset.to_string());
            println!("{partition}\t{from}\t{to}");
        }
        eprintln!("Nothing was changed: add --yes to move the offsets of pipeline {:?}.", config.pipeline);
        return Ok(());
    }
    let reset = PostgresSink::reset_offsets(&config, &targets).context("cannot move the offsets")?;
    println!("partition\tfrom\tto");
    for (partition, from, to) in &reset.moved {
        println!("{partition}\t{from}\t{to}");
    }
    eprintln!(
        "Moved {} partitions of pipeline {:?}; {} rows of windows it held open are final as they stand.",
        reset.moved.len(),
        config.pipeline,
        reset.frozen_rows
    );
    Ok(())
}
