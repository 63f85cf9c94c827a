//! The error type of the library: one [`Error`] with a variant per part that can fail.

use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a pipeline could not be built or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A source failed.
    #[error("source failed")]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error("sink failed")]
    Sink(#[from] SinkError),
    /// The input ended before the replay after a restart reached what the sink had committed:
    /// the input is not the one the sink's results came from.
    #[error("the input ended at offset {reached} of partition {partition}, before the committed offset {committed}")]
    InputShorterThanCommitted {
        /// The partition.
        partition: crate::source::PartitionId,
        /// The offset it ended at.
        reached: crate::source::Offset,
        /// The offset the sink holds.
        committed: crate::source::Offset,
    },
    /// A timely worker could not start or stopped abnormally.
    #[error("dataflow worker failed: {0}")]
    Worker(String),
}
