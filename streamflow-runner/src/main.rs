//! `streamflow`: runs the streamflow-core pipeline from the command line.

mod cli;
mod cmd;
mod environment;
mod logging;

use std::process::ExitCode;

use clap::Parser;

// Batches and containers are allocated and freed by the thousand per second across worker
// threads; mimalloc reuses them where glibc maps and unmaps large ones each time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let renamed = environment::adopt_old_names();
    let cli = cli::Cli::parse();
    if let Err(error) = logging::init(cli.log.as_deref(), cli.log_format) {
        eprintln!("streamflow: {error:#}");
        return ExitCode::FAILURE;
    }
    for warning in renamed {
        tracing::warn!("{warning}");
    }
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("streamflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}
