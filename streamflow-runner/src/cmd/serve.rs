//! `streamflow serve`: the HTTP query API over the PostgreSQL tables, until SIGTERM or SIGINT.

use std::sync::Arc;

use streamflow_runner::api::{self, Store, Telemetry};
use streamflow_runner::shutdown_signal;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(args = %args.redacted(), "Starting.");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Store::postgres(&args.database_url)?;
        api::serve(args.http_addr, store, Arc::new(Telemetry::default()), shutdown_signal()).await
    })
}
