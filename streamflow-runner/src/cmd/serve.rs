//! `streamflow serve`: the HTTP query API over the PostgreSQL tables, until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use streamflow_core::LiveStreams;
use streamflow_runner::api::{self, Store, Telemetry};
use streamflow_runner::shutdown_signal;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(args = %args.redacted(), "Starting.");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Store::postgres(&args.database_url, LiveStreams::columns())?;
        let cache_ttl = Duration::from_millis(args.api_cache_ms);
        api::serve(args.http_addr, store, Arc::new(Telemetry::default()), cache_ttl, shutdown_signal()).await
    })
}
