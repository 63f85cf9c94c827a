//! The parts of the `streamflow` binary that other programs (the embedded example) use too:
//! the HTTP query API, and waiting for a stop signal.
#![deny(missing_docs)]

pub mod api;

/// The README's Rust examples, compiled and run as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot listen for SIGTERM; only Ctrl-C stops the process.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Runs `stop` on the first SIGTERM or SIGINT, and exits the process at once on the second one.
///
/// A stop finishes the current epoch and commits it, which waits for the database; an operator
/// who asks again does not want to wait. Exactly-once does not depend on a clean stop: what was
/// not committed is read again at the next start.
pub async fn stop_on_signals(stop: impl FnOnce()) {
    shutdown_signal().await;
    tracing::info!("Stopping: finishing the current epoch and committing it (a second signal stops at once).");
    stop();
    shutdown_signal().await;
    tracing::warn!("Stopping at once; what was not committed is read again at the next start.");
    eprintln!("streamflow: stopped at once by a second signal");
    std::process::exit(130);
}
