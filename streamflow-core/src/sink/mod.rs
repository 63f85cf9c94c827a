//! Where results go: the [`Sink`] trait, the [`EpochBatch`] it receives, and its
//! implementations — [`MemorySink`] and, with the `postgres` feature, [`PostgresSink`].
//!
//! A batch holds everything one completed epoch changed: rows, dead letters and the checkpoint a
//! restart needs. A sink that stores all three in one transaction, and hands the stored
//! checkpoint back through [`Sink::checkpoint`], delivers exactly once (spec §4). The batches are
//! put together by the [`assemble::Assembler`] on worker 0.

pub mod assemble;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;

use std::collections::BTreeMap;

pub use memory::{MemorySink, Table, TableRow, TableState, RECENT_DEAD_LETTERS};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresSink};

use crate::checkpoint::{Checkpoint, CheckpointUpdate, Settings};
use crate::dead_letter::DeadLetter;
use crate::error::SinkError;
use crate::schema::Key;
use crate::streams::Row;
use crate::time::EventTime;

/// A change to one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowChange<R = Row> {
    /// The row's new value; its window is still open.
    Update(R),
    /// The row's window closed: this value is final and its state has left memory.
    Final(R),
}

impl<R> RowChange<R> {
    /// The row, whichever the change.
    pub fn row(&self) -> &R {
        match self {
            RowChange::Update(row) | RowChange::Final(row) => row,
        }
    }

    /// Whether the row is final.
    pub fn is_final(&self) -> bool {
        matches!(self, RowChange::Final(_))
    }
}

/// Everything one completed epoch changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochBatch<R = Row> {
    /// The epoch.
    pub epoch: u64,
    /// Changed rows, in key order.
    pub rows: Vec<RowChange<R>>,
    /// Records refused in this epoch, in (partition, offset) order.
    pub dead_letters: Vec<DeadLetter>,
    /// What the epoch changed of the checkpoint.
    pub checkpoint: CheckpointUpdate,
}

impl<R> Default for EpochBatch<R> {
    fn default() -> Self {
        EpochBatch { epoch: 0, rows: Vec::new(), dead_letters: Vec::new(), checkpoint: CheckpointUpdate::default() }
    }
}

impl<R: crate::schema::Row> EpochBatch<R> {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.dead_letters.is_empty() && self.checkpoint.is_empty()
    }

    /// Folds a later batch into this one: the pair then says what both epochs changed, with the
    /// later values where both changed the same row or checkpoint entry. A sink that commits
    /// less often than epochs complete writes the merged batch.
    pub fn absorb(&mut self, later: EpochBatch<R>) {
        self.epoch = later.epoch;
        if self.rows.is_empty() {
            self.rows = later.rows;
        } else if !later.rows.is_empty() {
            let mut rows: BTreeMap<(EventTime, Key), RowChange<R>> = std::mem::take(&mut self.rows)
                .into_iter()
                .map(|change| ((change.row().window_start(), Key::from(change.row().key())), change))
                .collect();
            for change in later.rows {
                rows.insert((change.row().window_start(), Key::from(change.row().key())), change);
            }
            self.rows = rows.into_values().collect();
        }
        self.dead_letters.extend(later.dead_letters);
        self.checkpoint.absorb(later.checkpoint);
    }
}

/// A consumer of epoch batches. It runs on worker 0 and sees every epoch once, in order.
pub trait Sink<R: crate::schema::Row = Row>: Send + 'static {
    /// The checkpoint this sink holds from a previous run, to resume from; empty on a first run.
    /// Called once, before any batch, with the settings that shape the results: a sink that
    /// keeps results across runs stores them, and refuses to resume results computed with
    /// other settings ([`Settings::differences`] says what differs).
    fn checkpoint(&mut self, _settings: &Settings) -> Result<Checkpoint, SinkError> {
        Ok(Checkpoint::default())
    }

    /// Takes the changes of one epoch. An error stops the pipeline, and no later batch is given.
    fn apply(&mut self, batch: EpochBatch<R>) -> Result<(), SinkError>;

    /// Called once after the last batch, when the input ended or the pipeline was asked to stop.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl<R: crate::schema::Row, S: Sink<R> + ?Sized> Sink<R> for Box<S> {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        (**self).checkpoint(settings)
    }
    fn apply(&mut self, batch: EpochBatch<R>) -> Result<(), SinkError> {
        (**self).apply(batch)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        (**self).finish()
    }
}
