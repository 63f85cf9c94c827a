//! A sink that keeps the results in memory: a live [`Table`] that other threads read while the
//! pipeline runs (the HTTP API, the example's display), and that `replay` prints at the end.
//!
//! It keeps its checkpoint too, so a pipeline run again with the same sink resumes where the last
//! one stopped, exactly as with Postgres.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{EpochBatch, RowChange, Sink, SinkError};
use crate::aggregate::Row;
use crate::checkpoint::{Checkpoint, Settings};
use crate::dead_letter::{DeadLetter, Reason};
use crate::event::{EventTime, StreamId};

/// How many dead letters the table keeps (the newest); the counts by reason cover all of them.
pub const RECENT_DEAD_LETTERS: usize = 10_000;

/// A row as the table holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow {
    /// The row.
    pub row: Row,
    /// Whether its window has closed.
    pub is_final: bool,
}

/// The contents of a [`Table`].
#[derive(Debug, Default)]
pub struct TableState {
    /// Rows by `(window_start, stream_id)`.
    pub rows: BTreeMap<(EventTime, StreamId), TableRow>,
    /// Each stream's newest window: `stream_state` of spec §3.
    pub newest: BTreeMap<StreamId, EventTime>,
    /// Dead letters by reason, all of them.
    pub dead_letter_counts: BTreeMap<Reason, u64>,
    /// The newest dead letters, at most [`RECENT_DEAD_LETTERS`].
    pub recent_dead_letters: VecDeque<DeadLetter>,
    /// What a restart needs.
    pub checkpoint: Checkpoint,
    /// The settings the rows were computed with, once a pipeline ran.
    pub settings: Option<Settings>,
    /// The last epoch applied.
    pub epoch: Option<u64>,
    /// Rows whose window starts this long (in microseconds) before the newest window are dropped.
    retention_micros: Option<i64>,
}

impl TableState {
    /// Rows whose window starts in `[from, to)`, in key order.
    pub fn rows_between(&self, from: EventTime, to: EventTime) -> impl Iterator<Item = &TableRow> + '_ {
        let from = (from, StreamId::default());
        self.rows.range(from..).take_while(move |(key, _)| key.0 < to).map(|(_, row)| row)
    }

    /// The newest window start of any stream.
    pub fn latest_window(&self) -> Option<EventTime> {
        self.rows.keys().next_back().map(|key| key.0)
    }

    /// Each stream's newest row, in stream order.
    pub fn newest_rows(&self) -> impl Iterator<Item = &TableRow> + '_ {
        self.newest.iter().filter_map(|(stream, window)| self.rows.get(&(*window, stream.clone())))
    }

    fn apply(&mut self, batch: EpochBatch) {
        for change in batch.rows {
            let is_final = change.is_final();
            let (RowChange::Update(row) | RowChange::Final(row)) = change;
            let newest = self.newest.entry(row.stream_id.clone()).or_insert(row.window_start);
            *newest = (*newest).max(row.window_start);
            let key = (row.window_start, row.stream_id.clone());
            self.rows.insert(key, TableRow { row, is_final });
        }
        for letter in batch.dead_letters {
            *self.dead_letter_counts.entry(letter.reason).or_default() += 1;
            if self.recent_dead_letters.len() == RECENT_DEAD_LETTERS {
                self.recent_dead_letters.pop_front();
            }
            self.recent_dead_letters.push_back(letter);
        }
        let checkpoint = batch.checkpoint;
        self.checkpoint.positions.extend(checkpoint.positions);
        self.checkpoint.closed_through = self.checkpoint.closed_through.max(checkpoint.closed_through);
        self.checkpoint.closed_audience.extend(checkpoint.closed_audience);
        self.epoch = Some(batch.epoch);
        if let (Some(retention), Some(latest)) = (self.retention_micros, self.latest_window()) {
            let oldest_kept = (latest.plus_micros(-retention), StreamId::default());
            self.rows = self.rows.split_off(&oldest_kept);
            let rows = &self.rows;
            self.newest.retain(|stream, window| rows.contains_key(&(*window, stream.clone())));
        }
    }
}

/// A shared handle on the table a [`MemorySink`] writes.
#[derive(Clone, Debug, Default)]
pub struct Table(Arc<RwLock<TableState>>);

impl Table {
    /// Reads the table; writers wait meanwhile, so keep it short.
    pub fn read(&self) -> RwLockReadGuard<'_, TableState> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, TableState> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// All rows, in `(window_start, stream_id)` order.
    pub fn rows(&self) -> Vec<Row> {
        self.read().rows.values().map(|r| r.row.clone()).collect()
    }

    /// Dead letters by reason.
    pub fn dead_letter_counts(&self) -> BTreeMap<Reason, u64> {
        self.read().dead_letter_counts.clone()
    }

    /// What a restart needs.
    pub fn checkpoint(&self) -> Checkpoint {
        self.read().checkpoint.clone()
    }
}

/// A sink into a [`Table`].
///
/// # Examples
/// ```
/// use streamflow_core::{MemorySink, Settings, Sink, WindowConfig};
///
/// let mut sink = MemorySink::new();
/// let table = sink.table();
/// let settings = Settings { window: WindowConfig::default() };
/// assert!(sink.checkpoint(&settings).unwrap().is_empty());
/// assert!(table.rows().is_empty());
/// // Results of one-minute windows are not resumed as five-minute ones.
/// let other = Settings { window: WindowConfig::new(300, 600).unwrap() };
/// assert!(sink.checkpoint(&other).unwrap_err().to_string().contains("window size"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    table: Table,
}

impl MemorySink {
    /// A sink that keeps every row.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A sink that drops rows whose window starts more than `retention` of event time before the
    /// newest window, for pipelines that run for long.
    pub fn with_retention(retention: std::time::Duration) -> MemorySink {
        let sink = MemorySink::default();
        sink.table.write().retention_micros = Some(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        sink
    }

    /// The table this sink writes.
    pub fn table(&self) -> Table {
        self.table.clone()
    }
}

impl Sink for MemorySink {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        let mut state = self.table.write();
        if let Some(stored) = &state.settings {
            let differences = settings.differences(stored);
            if !differences.is_empty() {
                return Err(SinkError::new(format!(
                    "the table holds results computed with other settings — {}; resuming would mix them",
                    differences.join("; ")
                )));
            }
        }
        state.settings = Some(settings.clone());
        Ok(state.checkpoint.clone())
    }

    fn apply(&mut self, batch: EpochBatch) -> Result<(), SinkError> {
        self.table.write().apply(batch);
        Ok(())
    }
}
