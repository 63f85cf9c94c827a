//! What the workers of one pipeline share with each other and with the program that started
//! them, each by a named handle: [`Control`] (stop, the first failure, the epoch clock) and
//! [`Alignment`] (which partitions run too far ahead in event time).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::metrics::Metrics;
use crate::position::{PartitionId, Progress};

/// A handle shared by the workers and the program that started them: asks the pipeline to stop,
/// records the first failure, keeps the newest epoch any source opened, and holds the metrics
/// and the alignment.
#[derive(Clone, Debug)]
pub struct Control(Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    stopping: AtomicBool,
    newest_epoch: AtomicU64,
    failure: Mutex<Option<Error>>,
    metrics: Arc<Metrics>,
    alignment: Alignment,
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

impl Control {
    /// A handle for a new pipeline.
    pub fn new() -> Control {
        Control(Arc::default())
    }

    /// A control whose figures go to `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Control {
        Control(Arc::new(ControlState { metrics, ..ControlState::default() }))
    }

    /// Asks the sources to stop at the end of their current epoch; what was read is delivered.
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for, or something failed.
    pub fn is_stopping(&self) -> bool {
        self.0.stopping.load(Ordering::Relaxed)
    }

    /// Records a failure (the first one is kept) and stops the pipeline.
    pub fn fail(&self, error: Error) {
        let mut failure = self.0.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::error!(error = %error, "Pipeline failed; stopping.");
            *failure = Some(error);
        }
        self.stop();
    }

    /// The first failure as text, if any, leaving it in place.
    pub fn failure_text(&self) -> Option<String> {
        self.0.failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(ToString::to_string)
    }

    /// Takes the first failure, if any.
    pub fn take_failure(&self) -> Option<Error> {
        self.0.failure.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Records that a source opened `epoch`.
    pub fn note_epoch(&self, epoch: u64) {
        self.0.newest_epoch.fetch_max(epoch, Ordering::Relaxed);
    }

    /// The newest epoch any source has opened.
    pub fn newest_epoch(&self) -> u64 {
        self.0.newest_epoch.load(Ordering::Relaxed)
    }

    /// The pipeline's figures.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// Which partitions the sources should pause.
    pub fn alignment(&self) -> &Alignment {
        &self.0.alignment
    }
}

/// Watermark alignment: the aggregate tells it how far every partition has been read (it sees
/// every partition's progress); the sources ask it which of theirs run more than the allowed
/// drift ahead of the slowest partition that can still be read, and pause those.
#[derive(Debug, Default)]
pub struct Alignment {
    partitions: Mutex<BTreeMap<PartitionId, Progress>>,
}

impl Alignment {
    /// Takes in what is known of a partition now.
    pub fn report(&self, progress: &Progress) {
        let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        match partitions.get_mut(&progress.partition) {
            Some(known) => known.merge(progress),
            None => {
                partitions.insert(progress.partition, *progress);
            }
        }
    }

    /// For each of `partitions`, whether it runs more than `max_drift_micros` of event time ahead
    /// of the slowest partition still to be read. A partition read to the end of its log is not
    /// waited for: pausing the others would not bring it further, only stall them.
    pub fn ahead(&self, partitions: &[PartitionId], max_drift_micros: i64) -> Vec<bool> {
        let known = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let slowest =
            known.values().filter(|p| p.state.holds_watermark() && !p.caught_up()).map(|p| p.max_ts).min().flatten();
        partitions
            .iter()
            .map(|partition| {
                let own = known.get(partition).and_then(|p| p.max_ts);
                own.zip(slowest).is_some_and(|(own, slowest)| own.micros() - slowest.micros() > max_drift_micros)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::PartitionState;
    use crate::time::EventTime;

    fn at(partition: PartitionId, secs: i64, end: Option<i64>) -> Progress {
        Progress { max_ts: Some(EventTime::from_secs(secs)), end_offset: end, ..Progress::start(partition, 10) }
    }

    #[test]
    fn a_partition_far_ahead_of_the_slowest_is_paused() {
        let alignment = Alignment::default();
        alignment.report(&at(0, 0, None));
        alignment.report(&at(1, 400, None));
        alignment.report(&at(2, 100, None));
        assert_eq!(alignment.ahead(&[0, 1, 2], 300_000_000), vec![false, true, false]);
        // The slowest partition caught up with its log: it is not waited for.
        alignment.report(&at(0, 0, Some(10)));
        assert_eq!(alignment.ahead(&[1], 300_000_000), vec![false]);
        // An idle partition is not waited for either.
        alignment.report(&Progress { state: PartitionState::Idle, ..at(2, 100, None) });
        assert_eq!(alignment.ahead(&[1], 200_000_000), vec![false]);
    }
}
