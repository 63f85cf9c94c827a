//! One way to wait between attempts: [`Backoff`], capped exponential with jitter, for whatever
//! is retried (a commit, a fetch, a connection). Only failures known to pass are retried; the
//! caller decides which with the error's kind.

use std::time::Duration;

/// Waits that double from `min` up to `max`, each shortened by up to a fifth at random, so that
/// many clients retrying together spread out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Waits from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), current: Duration::ZERO }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        self.current = (self.current * 2).clamp(self.min, self.max);
        let jitter = rand::random_range(0.0..0.2);
        self.current.mul_f64(1.0 - jitter)
    }

    /// Whether a wait was taken since the last reset: an attempt after a failure.
    pub fn is_retrying(&self) -> bool {
        self.current > Duration::ZERO
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.current = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert!(!backoff.is_retrying());
        let waits: Vec<Duration> = (0..10).map(|_| backoff.next_wait()).collect();
        let nominal = [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000];
        for (wait, nominal) in waits.iter().zip(nominal) {
            let nominal = Duration::from_millis(nominal);
            assert!(*wait <= nominal && *wait >= nominal.mul_f64(0.8), "{wait:?} against {nominal:?}");
        }
        assert!(backoff.is_retrying());
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(100));
    }
}
