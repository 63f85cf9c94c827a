//! The rows of one key from the sums of its windows, in window order: each window's values,
//! and the running columns' totals over every window up to it (the key's base — the closed
//! windows' part — coming first, at [`EventTime::MIN`]). A late event in an early window changes
//! every later window's running total; differential runs this again for the keys that changed.

use crate::schema::{self, Row as _, Schema, Sums};
use crate::time::{EventTime, WindowConfig};

/// Appends the rows of `key` to `out`, each with multiplicity 1.
pub fn rows<S: Schema>(
    schema: &S,
    config: &WindowConfig,
    key: &str,
    windows: &[(&EventTime, Sums<S::Slots>)],
    out: &mut Vec<(S::Row, isize)>,
) {
    let columns = schema.columns();
    let running_slots: Vec<usize> = columns.running().map(|i| columns.slot(i)).collect();
    let mut totals = vec![0i64; running_slots.len()];
    for &(&window, sums) in windows {
        let slots = sums.0.as_ref();
        for (total, &slot) in totals.iter_mut().zip(&running_slots) {
            *total = total.wrapping_add(slots[slot]);
        }
        if window != EventTime::MIN {
            let values = schema::values(columns, slots, &totals);
            out.push((S::Row::from_values(window, config.end_of(window), key, &values), 1));
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
        rows(&LiveStreams, &config, "s", &windows, &mut out);
        let got: Vec<(EventTime, u64, i64, u64)> =
            out.iter().map(|(r, _)| (r.window_start, r.events, r.net_viewer_delta, r.active_viewers)).collect();
        // 5 - 8 = -3, shown as 0; -3 + 4 = 1.
        assert_eq!(got, vec![(w1, 3, -8, 0), (w2, 2, 4, 1)]);
        assert_eq!(out[0].0.window_end, EventTime::from_secs(120));
    }
}
