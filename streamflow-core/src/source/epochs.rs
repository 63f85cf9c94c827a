//! How the source operator cuts what it reads into epochs — the unit of consistency downstream:
//! every sink batch holds whole epochs — and how far ahead it may read.

use std::time::{Duration, Instant};

/// How the source operator reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPolicy {
    /// An epoch closes after this many records...
    pub max_records: usize,
    /// ...or when it has been open this long, whichever comes first.
    pub max_duration: Duration,
    /// Records read in one activation of the source operator, before other operators run.
    pub records_per_activation: usize,
    /// How long to wait before polling a source that had nothing.
    pub poll_interval: Duration,
    /// A source does not run further ahead of the sink than this many epochs (backpressure).
    pub max_epochs_in_flight: u64,
    /// A partition whose event time runs further ahead of the slowest partition than this is
    /// paused until the others catch up (watermark alignment), so that the state held for open
    /// windows stays bounded when partitions are read at different speeds, as in a backfill.
    pub max_drift: Duration,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy {
            max_records: 262_144,
            max_duration: Duration::from_millis(100),
            records_per_activation: 8_192,
            poll_interval: Duration::from_millis(5),
            max_epochs_in_flight: 4,
            max_drift: Duration::from_secs(300),
        }
    }
}

/// Decides when the current epoch closes: when it holds [`ReadPolicy::max_records`] records, or
/// has been open for [`ReadPolicy::max_duration`] — even empty, so that an idle worker never
/// holds back the epochs of busy ones — and, for a worker with nothing to read, as soon as
/// another worker has opened a newer epoch.
#[derive(Clone, Debug)]
pub struct EpochCutter {
    max_records: usize,
    max_duration: Duration,
    records: usize,
    opened: Instant,
}

impl EpochCutter {
    /// A cutter for `policy`, its first epoch open now.
    pub fn new(policy: &ReadPolicy) -> EpochCutter {
        EpochCutter {
            max_records: policy.max_records,
            max_duration: policy.max_duration,
            records: 0,
            opened: Instant::now(),
        }
    }

    /// Counts records read into the current epoch.
    pub fn read(&mut self, records: usize) {
        self.records += records;
    }

    /// The epoch to move to after an activation in `epoch`, if it closes: `idle` says the source
    /// had nothing more now, `newest` is the newest epoch any worker has opened.
    pub fn next(&mut self, epoch: u64, idle: bool, newest: u64) -> Option<u64> {
        let full = self.records >= self.max_records;
        let old = self.opened.elapsed() >= self.max_duration;
        if !(full || old || (idle && newest > epoch)) {
            return None;
        }
        self.records = 0;
        self.opened = Instant::now();
        Some(if idle { newest.max(epoch + 1) } else { epoch + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_close_when_full_old_or_behind() {
        let policy = ReadPolicy { max_records: 10, max_duration: Duration::from_secs(3600), ..ReadPolicy::default() };
        let mut cutter = EpochCutter::new(&policy);
        cutter.read(9);
        assert_eq!(cutter.next(4, false, 4), None);
        cutter.read(1);
        assert_eq!(cutter.next(4, false, 4), Some(5));
        // Idle while another worker is three epochs ahead: jump to it.
        assert_eq!(cutter.next(5, true, 8), Some(8));
        assert_eq!(cutter.next(8, true, 8), None);
        let mut quick = EpochCutter::new(&ReadPolicy { max_duration: Duration::ZERO, ..policy });
        assert_eq!(quick.next(0, false, 0), Some(1));
    }
}
