//! The rows of one key from the sums of its windows, in window order: each window's values,
//! and the running columns' totals over every window up to it (the key's base — the closed
//! windows' part — coming first, at [`EventTime::MIN`]). A late event in an early window changes
//! every later window's running total; differential runs this again for the keys that changed.

use std::sync::Arc;

use crate::schema::{self, Row as _, Schema, Sums, Value};
use crate::time::{EventTime, WindowConfig};

/// Makes the rows of a schema's keys, keeping its buffers from one key to the next (the reduce
/// calls it for every key that changed, every epoch).
pub struct Rows<S: Schema> {
    schema: Arc<S>,
    config: WindowConfig,
    running_slots: Vec<usize>,
    totals: Vec<i64>,
    values: Vec<Value>,
}

impl<S: Schema> Rows<S> {
    /// Rows of `schema`'s keys in windows of `config`.
    pub fn new(schema: Arc<S>, config: WindowConfig) -> Rows<S> {
        let columns = schema.columns();
        let running_slots: Vec<usize> = columns.running().map(|i| columns.slot(i)).collect();
        let totals = vec![0; running_slots.len()];
        let values = Vec::with_capacity(columns.len());
        Rows { schema, config, running_slots, totals, values }
    }

    /// Appends the rows of `key` to `out`, each with multiplicity 1.
    pub fn rows(&mut self, key: &str, windows: &[(&EventTime, Sums<S::Slots>)], out: &mut Vec<(S::Row, isize)>) {
        let columns = self.schema.columns();
        self.totals.fill(0);
        for &(&window, sums) in windows {
            let slots = sums.0.as_ref();
            for (total, &slot) in self.totals.iter_mut().zip(&self.running_slots) {
                *total = total.wrapping_add(slots[slot]);
            }
            if window != EventTime::MIN {
                schema::values_into(columns, slots, &self.totals, &mut self.values);
                out.push((S::Row::from_values(window, self.config.end_of(window), key, &self.values), 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::{column, LiveStreams, Row};

    fn sums(events: i64, net: i64) -> Sums<[i64; 9]> {
        let mut slots = [0i64; 9];
        slots[column::EVENTS] = events;
        slots[column::NET_VIEWER_DELTA] = net;
        slots[column::ACTIVE_VIEWERS] = net;
        Sums(slots)
    }

    #[test]
    fn the_audience_runs_on_from_the_base_and_stays_at_least_zero() {
        let config = WindowConfig::default();
        let (base, w1, w2) = (EventTime::MIN, EventTime::from_secs(60), EventTime::from_secs(120));
        let windows = [(&base, sums(0, 5)), (&w1, sums(3, -8)), (&w2, sums(2, 4))];
        let mut out: Vec<(Row, isize)> = Vec::new();
        Rows::new(Arc::new(LiveStreams), config).rows("s", &windows, &mut out);
        let got: Vec<(EventTime, u64, i64, u64)> =
            out.iter().map(|(r, _)| (r.window_start, r.events, r.net_viewer_delta, r.active_viewers)).collect();
        // 5 - 8 = -3, shown as 0; -3 + 4 = 1.
        assert_eq!(got, vec![(w1, 3, -8, 0), (w2, 2, 4, 1)]);
        assert_eq!(out[0].0.window_end, EventTime::from_secs(120));
    }
}
