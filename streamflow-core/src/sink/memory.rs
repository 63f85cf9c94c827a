//! A sink that keeps the results in memory: a live [`Table`] that other threads read while the
//! pipeline runs (the HTTP API, the example's display), and that `replay` prints at the end.
//!
//! It keeps its checkpoint too, so a pipeline run again with the same sink resumes where the last
//! one stopped, exactly as with Postgres.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{EpochBatch, RowChange, Sink};
use crate::checkpoint::{Checkpoint, Settings};
use crate::dead_letter::{DeadLetter, Reason};
use crate::error::SinkError;
use crate::schema::{Key, Row};
use crate::time::EventTime;

/// How many dead letters the table keeps (the newest); the counts by reason cover all of them.
pub const RECENT_DEAD_LETTERS: usize = 10_000;

/// A row as the table holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow<R = crate::streams::Row> {
    /// The row.
    pub row: R,
    /// Whether its window has closed.
    pub is_final: bool,
}

/// The contents of a [`Table`].
#[derive(Debug)]
pub struct TableState<R = crate::streams::Row> {
    /// Rows by `(window_start, key)`.
    pub rows: BTreeMap<(EventTime, Key), TableRow<R>>,
    /// Each key's newest window: `stream_state` of spec §3.
    pub newest: BTreeMap<Key, EventTime>,
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
    /// When the last epoch was applied: the table's last commit.
    pub applied_at: Option<std::time::SystemTime>,
    /// Rows whose window starts this long (in microseconds) before the newest window are dropped.
    retention_micros: Option<i64>,
}

impl<R> Default for TableState<R> {
    fn default() -> Self {
        TableState {
            rows: BTreeMap::new(),
            newest: BTreeMap::new(),
            dead_letter_counts: BTreeMap::new(),
            recent_dead_letters: VecDeque::new(),
            checkpoint: Checkpoint::default(),
            settings: None,
            epoch: None,
            applied_at: None,
            retention_micros: None,
        }
    }
}

impl<R: Row> TableState<R> {
    /// Rows whose window starts in `[from, to)`, in key order.
    pub fn rows_between(&self, from: EventTime, to: EventTime) -> impl Iterator<Item = &TableRow<R>> + '_ {
        let from = (from, Key::default());
        self.rows.range(from..).take_while(move |(key, _)| key.0 < to).map(|(_, row)| row)
    }

    /// The newest window start of any stream.
    pub fn latest_window(&self) -> Option<EventTime> {
        self.rows.keys().next_back().map(|key| key.0)
    }

    /// Each key's newest row, in key order.
    pub fn newest_rows(&self) -> impl Iterator<Item = &TableRow<R>> + '_ {
        self.newest.iter().filter_map(|(key, window)| self.rows.get(&(*window, key.clone())))
    }

    fn apply(&mut self, batch: EpochBatch<R>) {
        for change in batch.rows {
            let is_final = change.is_final();
            let (RowChange::Update(row) | RowChange::Final(row)) = change;
            let key = Key::from(row.key());
            let newest = self.newest.entry(key.clone()).or_insert(row.window_start());
            *newest = (*newest).max(row.window_start());
            self.rows.insert((row.window_start(), key), TableRow { row, is_final });
        }
        for letter in batch.dead_letters {
            *self.dead_letter_counts.entry(letter.reason).or_default() += 1;
            if self.recent_dead_letters.len() == RECENT_DEAD_LETTERS {
                self.recent_dead_letters.pop_front();
            }
            self.recent_dead_letters.push_back(letter);
        }
        self.checkpoint.apply(batch.checkpoint);
        self.epoch = Some(batch.epoch);
        self.applied_at = Some(std::time::SystemTime::now());
        if let (Some(retention), Some(latest)) = (self.retention_micros, self.latest_window()) {
            let oldest_kept = (latest.plus_micros(-retention), Key::default());
            self.rows = self.rows.split_off(&oldest_kept);
            let rows = &self.rows;
            self.newest.retain(|stream, window| rows.contains_key(&(*window, stream.clone())));
        }
    }
}

/// A shared handle on the table a [`MemorySink`] writes.
#[derive(Debug)]
pub struct Table<R = crate::streams::Row>(Arc<RwLock<TableState<R>>>);

impl<R> Clone for Table<R> {
    fn clone(&self) -> Self {
        Table(Arc::clone(&self.0))
    }
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table(Arc::default())
    }
}

impl<R: Row> Table<R> {
    /// Reads the table; writers wait meanwhile, so keep it short.
    pub fn read(&self) -> RwLockReadGuard<'_, TableState<R>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, TableState<R>> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// All rows, in `(window_start, key)` order.
    pub fn rows(&self) -> Vec<R> {
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
/// use streamflow_core::{MemorySink, Row, Settings, Sink, WindowConfig};
///
/// let mut sink: MemorySink<Row> = MemorySink::new();
/// let table = sink.table();
/// let settings = Settings { window: WindowConfig::default(), columns: "c:sum".into() };
/// assert!(sink.checkpoint(&settings).unwrap().is_empty());
/// assert!(table.rows().is_empty());
/// // Results of one-minute windows are not resumed as five-minute ones.
/// let other = Settings { window: WindowConfig::new(300, 600).unwrap(), columns: "c:sum".into() };
/// assert!(sink.checkpoint(&other).unwrap_err().to_string().contains("window size"));
/// ```
#[derive(Debug)]
pub struct MemorySink<R = crate::streams::Row> {
    table: Table<R>,
}

impl<R> Clone for MemorySink<R> {
    fn clone(&self) -> Self {
        MemorySink { table: self.table.clone() }
    }
}

impl<R: Row> Default for MemorySink<R> {
    fn default() -> Self {
        MemorySink { table: Table::default() }
    }
}

impl<R: Row> MemorySink<R> {
    /// A sink that keeps every row.
    pub fn new() -> MemorySink<R> {
        MemorySink::default()
    }

    /// A sink that drops rows whose window starts more than `retention` of event time before the
    /// newest window, for pipelines that run for long.
    pub fn with_retention(retention: std::time::Duration) -> MemorySink<R> {
        let sink = MemorySink::default();
        sink.table.write().retention_micros = Some(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        sink
    }

    /// The table this sink writes.
    pub fn table(&self) -> Table<R> {
        self.table.clone()
    }
}

impl<R: Row> Sink<R> for MemorySink<R> {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        let mut state = self.table.write();
        if let Some(stored) = &state.settings {
            let differences = settings.differences(stored);
            if !differences.is_empty() {
                return Err(SinkError::configuration(format!(
                    "the table holds results computed with other settings — {}; resuming would mix them",
                    differences.join("; ")
                )));
            }
        }
        state.settings = Some(settings.clone());
        Ok(state.checkpoint.clone())
    }

    fn apply(&mut self, batch: EpochBatch<R>) -> Result<(), SinkError> {
        self.table.write().apply(batch);
        Ok(())
    }
}
