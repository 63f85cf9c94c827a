//! `streamflow`: runs the streamflow-core pipeline from the command line.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

// Batches and containers are allocated and freed by the thousand per second across worker
// threads; mimalloc reuses them where glibc maps and unmaps large ones each time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warp::server::run=off,{}", cli.log))),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("streamflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}
