//! The pipeline's own figures (spec §7), shared by all workers and read by whoever reports them.
//! They only observe: nothing in the pipeline decides by them.
//!
//! Operators add to these counters once per batch, not per record.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::dead_letter::Reason;
use crate::position::{Offset, PartitionId, PartitionState, Progress};
use crate::time::EventTime;

/// Live counters of one pipeline run.
#[derive(Debug)]
pub struct Metrics {
    records: AtomicU64,
    dead_letters: Mutex<BTreeMap<Reason, u64>>,
    per_partition: Mutex<BTreeMap<PartitionId, PartitionMetrics>>,
    pipeline_watermark: AtomicI64,
    open_windows: AtomicI64,
    open_windows_peak: AtomicI64,
    epochs: AtomicU64,
    row_changes: AtomicU64,
    /// Per partition, `(next offset, newest Kafka timestamp)` of each batch read and not yet
    /// committed, oldest first.
    uncommitted: Mutex<BTreeMap<PartitionId, VecDeque<(Offset, i64)>>>,
    freshness: Histogram,
}

/// A histogram of durations in fixed buckets (Prometheus' cumulative `le` buckets), safe to
/// update from any thread.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Bucket bounds, in seconds, for work that takes from half a millisecond to seconds.
    pub const SECONDS: &'static [f64] =
        &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

    /// Bucket bounds, in seconds, for the age of results: from a tenth of a second to an hour.
    pub const AGES: &'static [f64] =
        &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

    /// A histogram with the bounds of [`Histogram::SECONDS`].
    pub fn seconds() -> Histogram {
        Histogram::with_bounds(Self::SECONDS)
    }

    /// A histogram with these bounds, in seconds, ascending.
    pub fn with_bounds(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, duration: std::time::Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = self.bounds.iter().position(|&bound| seconds <= bound).unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket, the last bound being infinity; the sum of the
    /// observations in seconds; their count.
    pub fn read(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(bound, count)| {
                cumulative += count.load(Relaxed);
                (bound, cumulative)
            })
            .collect();
        (buckets, self.sum_micros.load(Relaxed) as f64 / 1e6, cumulative)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::seconds()
    }
}

/// What is known of one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Records read, accepted or not.
    pub records: u64,
    /// The largest `ts` read.
    pub max_ts: Option<EventTime>,
    /// Whether the partition holds the pipeline watermark back, is idle, or ended.
    pub state: PartitionState,
    /// The next offset to read.
    pub next_offset: Offset,
    /// How many records the log holds beyond the next offset, when the source knows its end.
    pub lag: Option<i64>,
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
    /// Per partition: records read, event time reached.
    pub per_partition: BTreeMap<PartitionId, PartitionMetrics>,
    /// The pipeline watermark, once every partition has one.
    pub pipeline_watermark: Option<EventTime>,
    /// (window, stream) pairs held in memory by the aggregate, across workers.
    pub open_windows: i64,
    /// The most (window, stream) pairs held at once so far.
    pub open_windows_peak: i64,
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
            dead_letters: Mutex::default(),
            per_partition: Mutex::default(),
            pipeline_watermark: AtomicI64::new(i64::MIN),
            open_windows: AtomicI64::new(0),
            open_windows_peak: AtomicI64::new(0),
            epochs: AtomicU64::new(0),
            row_changes: AtomicU64::new(0),
            uncommitted: Mutex::default(),
            freshness: Histogram::with_bounds(Histogram::AGES),
        }
    }
}

impl Metrics {
    /// Batches read but not committed kept per partition for [`Metrics::committed`]; beyond,
    /// the oldest are forgotten (a sink that commits nothing for so long shows in other series).
    const UNCOMMITTED_BATCHES: usize = 10_000;

    /// Counts `records` read of a partition, which has reached `progress`; the newest Kafka
    /// timestamp among them, when the source has one, waits for [`Metrics::committed`].
    pub fn partition_read(&self, progress: &Progress, records: u64, newest_timestamp_ms: Option<i64>) {
        if let Some(timestamp) = newest_timestamp_ms {
            let mut uncommitted = self.uncommitted.lock().unwrap_or_else(|e| e.into_inner());
            let batches = uncommitted.entry(progress.partition).or_default();
            if batches.len() == Self::UNCOMMITTED_BATCHES {
                batches.pop_front();
            }
            batches.push_back((progress.next_offset, timestamp));
        }
        self.records.fetch_add(records, Relaxed);
        let mut per_partition = self.per_partition.lock().unwrap_or_else(|e| e.into_inner());
        let known = per_partition.entry(progress.partition).or_default();
        known.records += records;
        known.max_ts = known.max_ts.max(progress.max_ts);
        known.state = progress.state;
        known.next_offset = known.next_offset.max(progress.next_offset);
        if let Some(end) = progress.end_offset {
            known.lag = Some((end - known.next_offset).max(0));
        }
    }

    /// Tells that the sink committed every partition up to its offset in `next_offsets`:
    /// for each partition whose committed records had Kafka timestamps, how old the newest of
    /// them is now goes into [`Metrics::freshness`].
    pub fn committed(&self, next_offsets: &BTreeMap<PartitionId, Offset>) {
        let now_ms = EventTime::now().micros() / 1000;
        let mut uncommitted = self.uncommitted.lock().unwrap_or_else(|e| e.into_inner());
        for (partition, &committed) in next_offsets {
            let Some(batches) = uncommitted.get_mut(partition) else { continue };
            let mut newest = None;
            while let Some(&(_, timestamp)) = batches.front().filter(|(next, _)| *next <= committed) {
                newest = newest.max(Some(timestamp));
                batches.pop_front();
            }
            if let Some(newest) = newest {
                let age_ms = u64::try_from(now_ms - newest).unwrap_or(0);
                self.freshness.observe(std::time::Duration::from_millis(age_ms));
            }
        }
    }

    /// The age of results when committed: per commit and partition, from the Kafka timestamp of
    /// the newest record committed to the end of the commit.
    pub fn freshness(&self) -> &Histogram {
        &self.freshness
    }

    /// Counts dead letters by reason.
    pub fn dead_letters(&self, reasons: impl IntoIterator<Item = (Reason, u64)>) {
        let mut counts = self.dead_letters.lock().unwrap_or_else(|e| e.into_inner());
        for (reason, count) in reasons {
            *counts.entry(reason).or_default() += count;
        }
    }

    /// Records the pipeline watermark.
    pub fn set_pipeline_watermark(&self, watermark: EventTime) {
        self.pipeline_watermark.fetch_max(watermark.micros(), Relaxed);
    }

    /// Adds `delta` (window, stream) pairs to those held in memory.
    pub fn add_open_windows(&self, delta: i64) {
        let now = self.open_windows.fetch_add(delta, Relaxed) + delta;
        self.open_windows_peak.fetch_max(now, Relaxed);
    }

    /// Counts one epoch delivered with `row_changes` changed rows.
    pub fn epoch_delivered(&self, row_changes: u64) {
        self.epochs.fetch_add(1, Relaxed);
        self.row_changes.fetch_add(row_changes, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let dead_letters = self.dead_letters.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let records = self.records.load(Relaxed);
        let watermark = self.pipeline_watermark.load(Relaxed);
        MetricsSnapshot {
            records,
            accepted: records.saturating_sub(dead_letters.values().sum()),
            dead_letters,
            per_partition: self.per_partition.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            pipeline_watermark: (watermark != i64::MIN).then_some(EventTime(watermark)),
            open_windows: self.open_windows.load(Relaxed),
            open_windows_peak: self.open_windows_peak.load(Relaxed),
            epochs: self.epochs.load(Relaxed),
            row_changes: self.row_changes.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = Histogram::seconds();
        for millis in [0, 3, 3, 40, 20_000] {
            histogram.observe(std::time::Duration::from_millis(millis));
        }
        let (buckets, sum, count) = histogram.read();
        assert_eq!(count, 5);
        assert!((sum - 20.046).abs() < 1e-9);
        let at = |bound: f64| buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!((at(0.0005), at(0.005), at(0.05), at(10.0), at(f64::INFINITY)), (1, 3, 4, 4, 5));
    }
}
