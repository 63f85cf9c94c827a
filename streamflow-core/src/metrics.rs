//! The pipeline's own figures (spec §7), shared by all workers and read by whoever reports them.
//!
//! Operators add to these counters once per batch, not per record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::dead_letter::Reason;
use crate::event::EventTime;
use crate::source::PartitionId;

/// Live counters of one pipeline run.
#[derive(Debug)]
pub struct Metrics {
    records: AtomicU64,
    dead_letters: [AtomicU64; Reason::ALL.len()],
    per_partition: Mutex<BTreeMap<PartitionId, u64>>,
    pipeline_watermark: AtomicI64,
    open_windows: AtomicI64,
    epochs: AtomicU64,
    row_changes: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Records read, accepted or not.
    pub records: u64,
    /// Records accepted into the aggregates.
    pub accepted: u64,
    /// Dead letters by reason (only reasons seen).
    pub dead_letters: BTreeMap<Reason, u64>,
    /// Records read per partition.
    pub per_partition: BTreeMap<PartitionId, u64>,
    /// The pipeline watermark, once every partition has one.
    pub pipeline_watermark: Option<EventTime>,
    /// (window, stream) pairs held in memory by the aggregate, across workers.
    pub open_windows: i64,
    /// Epochs delivered to the sink.
    pub epochs: u64,
    /// Row changes delivered to the sink.
    pub row_changes: u64,
}

impl MetricsSnapshot {
    /// All dead letters, whatever the reason.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            records: AtomicU64::new(0),
            dead_letters: Default::default(),
            per_partition: Mutex::default(),
            pipeline_watermark: AtomicI64::new(i64::MIN),
            open_windows: AtomicI64::new(0),
            epochs: AtomicU64::new(0),
            row_changes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts `records` read from `partition`.
    pub fn records_read(&self, partition: PartitionId, records: u64) {
        self.records.fetch_add(records, Relaxed);
        let mut per_partition = self.per_partition.lock().unwrap_or_else(|e| e.into_inner());
        *per_partition.entry(partition).or_default() += records;
    }

    /// Counts one dead letter.
    pub fn dead_letter(&self, reason: Reason) {
        self.dead_letters[reason.index()].fetch_add(1, Relaxed);
    }

    /// Records the pipeline watermark.
    pub fn set_pipeline_watermark(&self, watermark: EventTime) {
        self.pipeline_watermark.fetch_max(watermark.micros(), Relaxed);
    }

    /// Adds `delta` (window, stream) pairs to those held in memory.
    pub fn add_open_windows(&self, delta: i64) {
        self.open_windows.fetch_add(delta, Relaxed);
    }

    /// Counts one epoch delivered with `row_changes` changed rows.
    pub fn epoch_delivered(&self, row_changes: u64) {
        self.epochs.fetch_add(1, Relaxed);
        self.row_changes.fetch_add(row_changes, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let dead_letters: BTreeMap<Reason, u64> = Reason::ALL
            .into_iter()
            .map(|reason| (reason, self.dead_letters[reason.index()].load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let records = self.records.load(Relaxed);
        let watermark = self.pipeline_watermark.load(Relaxed);
        MetricsSnapshot {
            records,
            accepted: records.saturating_sub(dead_letters.values().sum()),
            dead_letters,
            per_partition: self.per_partition.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            pipeline_watermark: (watermark != i64::MIN).then_some(EventTime(watermark)),
            open_windows: self.open_windows.load(Relaxed),
            epochs: self.epochs.load(Relaxed),
            row_changes: self.row_changes.load(Relaxed),
        }
    }
}
