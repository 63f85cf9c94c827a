//! The log: to standard error, as text or JSON lines, filtered by `--log`, else
//! `STREAMFLOW_LOG`, else `RUST_LOG`, else `info`.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Sets up the log for the whole process. `filter` is `--log` (or `STREAMFLOW_LOG`, which clap
/// reads for it).
pub fn init(filter: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    let directives = match filter {
        Some(filter) => filter.to_owned(),
        None => std::env::var("RUST_LOG").ok().filter(|value| !value.trim().is_empty()).unwrap_or("info".into()),
    };
    // warp logs every refused connection at error level; a bad client is not our error.
    let filter = EnvFilter::try_new(format!("warp::server::run=off,{directives}"))
        .map_err(|error| anyhow::anyhow!("the log filter {directives:?} is not one: {error}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
    Ok(())
}
