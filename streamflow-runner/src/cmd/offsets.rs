//! `streamflow offsets`: where each partition's log ends and, with a database, where the
//! pipeline stands in it — the consumer lag, without consumer groups.

use anyhow::Context;

use crate::cli::OffsetsArgs;

pub fn run(args: OffsetsArgs) -> anyhow::Result<()> {
    let topic = args.kafka.topic.clone();
    let ends: Vec<(i32, i64)> = tokio::runtime::Runtime::new()?.block_on(async {
        let client = super::kafka_client(&args.kafka).await?;
        let partitions = super::topic_partitions(&client, &args.kafka)
            .await?
            .with_context(|| format!("the topic {topic} does not exist"))?;
        let mut ends = Vec::new();
        for partition in partitions {
            let end = client.end_offset(&topic, partition).await?;
            ends.push((i32::try_from(partition)?, end));
        }
        anyhow::Ok(ends)
    })?;
    let committed = match &args.database.database_url {
        Some(url) => {
            let mut client =
                postgres::Client::connect(url, postgres::NoTls).context("cannot connect to the database")?;
            client
                .query(
                    "SELECT partition, next_offset FROM source_offsets WHERE pipeline = $1 AND topic = $2",
                    &[&args.database.pipeline_name, &topic],
                )
                .context("cannot read source_offsets")?
                .iter()
                .map(|row| (row.get::<_, i32>(0), row.get::<_, i64>(1)))
                .collect()
        }
        None => std::collections::BTreeMap::new(),
    };
    println!("partition\tend\tcommitted\tlag");
    for (partition, end) in ends {
        match committed.get(&partition) {
            Some(&next) => println!("{partition}\t{end}\t{next}\t{}", end - next),
            None => println!("{partition}\t{end}\t-\t-"),
        }
    }
    Ok(())
}
