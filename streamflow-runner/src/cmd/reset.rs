//! `streamflow reset`: deletes a stopped pipeline's results and checkpoint, so that its next
//! run starts afresh — the way out when the settings that shape results must change.

use anyhow::Context;
use streamflow_core::PostgresSink;

use crate::cli::ResetArgs;

pub fn run(args: ResetArgs) -> anyhow::Result<()> {
    // The topic plays no part: a pipeline's results are deleted whatever it read.
    let config = args.database.postgres("").context("--database-url (or DATABASE_URL) is needed")?;
    anyhow::ensure!(
        args.yes,
        "this deletes every row of pipeline {:?}'s results, dead letters and offsets; run again with --yes to do it",
        config.pipeline
    );
    let reset = PostgresSink::reset(&config).context("cannot reset the pipeline")?;
    eprintln!(
        "reset pipeline {:?}: {} rows, {} dead letters and the offsets of {} partitions deleted",
        config.pipeline, reset.rows, reset.dead_letters, reset.partitions
    );
    Ok(())
}
