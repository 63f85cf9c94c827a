//! `streamflow replay`: the pipeline over a JSON-lines file, the final rows as CSV.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use anyhow::Context;
use streamflow_core::source::NoSource;
use streamflow_core::{FileSource, MemorySink, Pipeline, PipelineConfig, Row, WindowConfig};

use crate::cli::{PipelineArgs, ReplayArgs};

/// The CSV header: the key, then the columns of spec §3 in order.
pub const CSV_HEADER: &str = "window_start,window_end,stream_id,events,chat_messages,donations_count,donations_usd,\
viewer_joins,viewer_leaves,net_viewer_delta,unique_viewers,active_viewers";

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = pipeline_config(&args.pipeline)?;
    tracing::info!(input = %args.input.display(), ?config, "Replaying.");
    let source = FileSource::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    let source = std::sync::Mutex::new(Some(source));
    let sink = MemorySink::new();
    let table = sink.table();
    let started = Instant::now();
    let metrics = Pipeline::new(config)
        .run(
            move |ctx| {
                // One partition, read by the worker that owns it.
                let taken =
                    ctx.owns(FileSource::PARTITION).then(|| source.lock().unwrap_or_else(|e| e.into_inner()).take());
                match taken.flatten() {
                    Some(source) => {
                        Ok(Box::new(source.resume_at(ctx.start_offset(FileSource::PARTITION).unwrap_or(0))?))
                    }
                    None => Ok(Box::new(NoSource)),
                }
            },
            sink,
        )
        .context("the replay failed")?;
    let elapsed = started.elapsed();

    let mut out = BufWriter::new(io::stdout().lock());
    write_csv(&mut out, &table.rows()).context("cannot write the rows")?;
    out.flush().context("cannot write the rows")?;

    let dead = metrics.dead_letters_total();
    eprintln!(
        "replayed {} records ({} accepted, {dead} dead letters) in {:.2} s: {:.0} records/s",
        metrics.records,
        metrics.accepted,
        elapsed.as_secs_f64(),
        metrics.records as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    for (reason, count) in &metrics.dead_letters {
        eprintln!("dead letters\t{reason}\t{count}");
    }
    Ok(())
}

/// The pipeline configuration the flags describe.
pub fn pipeline_config(args: &PipelineArgs) -> anyhow::Result<PipelineConfig> {
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    Ok(PipelineConfig {
        window: WindowConfig::new(args.window_seconds, args.lateness_seconds)?,
        workers: args.workers,
        ..PipelineConfig::default()
    })
}

/// Writes `rows` as CSV, sorted as given, with [`CSV_HEADER`].
pub fn write_csv(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for row in rows {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            row.window_start,
            row.window_end,
            csv_field(&row.stream_id),
            row.events,
            row.chat_messages,
            row.donations_count,
            row.donations_usd,
            row.viewer_joins,
            row.viewer_leaves,
            row.net_viewer_delta,
            row.unique_viewers,
            row.active_viewers,
        )?;
    }
    Ok(())
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("stream_1001"), "stream_1001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
