//! The seam between the machinery and an embedder's data: a [`Schema`] says what an event is
//! (decoded from a record's bytes), when it happened, which key it belongs to, and what it adds
//! to the [`Columns`] of its row. Windows, lateness, dead letters, the checkpoint and
//! exactly-once delivery, the sinks and the HTTP API then work for it with no code of its own.
//!
//! ```text
//!  bytes ──decode──► Event ──time, key──► window, key ──contribute──► Inputs ──► Sums (the aggregate)
//!                                                                     distinct and min/max seen
//!  Sums of a (window, key) + running totals ──► values, in the order of the Columns ──► Row
//! ```
//! Two ways to declare one: implement [`Schema`] (the built-in [`crate::streams::LiveStreams`]
//! does), or describe it with a [`Declared`] builder and closures, from JSON through serde.

mod columns;
mod declared;
pub mod json;

use std::fmt::Debug;
use std::hash::Hash;

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use rustc_hash::FxHashSet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use columns::{Column, Columns, Kind, Number};
pub use declared::Declared;

use crate::dead_letter::{Refusal, StoredText};
use crate::time::EventTime;

/// The key rows are grouped by (a `stream_id`); short keys are stored inline.
pub type Key = compact_str::CompactString;

/// One value of a row: a number (a decimal as its scaled integer), or none (a min or max that
/// no event gave a value to).
pub type Value = Option<i64>;

/// What an embedder declares. See the module documentation.
pub trait Schema: Send + Sync + 'static {
    /// An accepted event, as decoded. It crosses between workers (and processes), so it can be
    /// serialized.
    type Event: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    /// A row of results.
    type Row: Row;
    /// The slots of the aggregate: `[i64; N]`, N being [`Columns::slot_count`].
    type Slots: Slots;

    /// The columns of a row.
    fn columns(&self) -> &Columns;

    /// Decodes a record's payload (and key), or says which rule it broke.
    fn decode(&self, key: Option<&[u8]>, payload: &[u8]) -> Result<Self::Event, Refusal>;

    /// When the event happened.
    fn time(&self, event: &Self::Event) -> EventTime;

    /// The key of the event's row.
    fn key<'e>(&self, event: &'e Self::Event) -> &'e str;

    /// What the event adds to its row's columns.
    fn contribute(&self, event: &Self::Event, inputs: &mut Inputs<'_, Self::Slots>);

    /// The id of a record's payload, when it has a readable one: kept with a dead letter refused
    /// after decoding (a late event), so that every dead letter can be traced.
    fn event_id(&self, _payload: &[u8]) -> Option<StoredText> {
        None
    }

    /// An accepted event as bytes again, for the dead letter of an event whose bytes are gone
    /// (one that came for a window closed while its partition was idle).
    fn payload_of(&self, event: &Self::Event) -> Vec<u8> {
        serde_json::to_vec(event).unwrap_or_default()
    }
}

/// The slots of an aggregate: an array of integers, added slot by slot.
pub trait Slots:
    Copy
    + Default
    + Eq
    + Ord
    + Hash
    + Debug
    + Send
    + Sync
    + Serialize
    + DeserializeOwned
    + AsRef<[i64]>
    + AsMut<[i64]>
    + 'static
{
}

impl<A> Slots for A where
    A: Copy
        + Default
        + Eq
        + Ord
        + Hash
        + Debug
        + Send
        + Sync
        + Serialize
        + DeserializeOwned
        + AsRef<[i64]>
        + AsMut<[i64]>
        + 'static
{
}

/// The aggregate of one (window, key), as differential adds it up: the difference type of the
/// collection of counts. Every slot adds with wrapping arithmetic, so the group stays exact (a
/// retraction cancels what it retracts) where overflowing would panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sums<A>(pub A);

impl<A: Slots> IsZero for Sums<A> {
    fn is_zero(&self) -> bool {
        self.0.as_ref().iter().all(|&v| v == 0)
    }
}

impl<A: Slots> Semigroup for Sums<A> {
    fn plus_equals(&mut self, rhs: &Self) {
        for (slot, add) in self.0.as_mut().iter_mut().zip(rhs.0.as_ref()) {
            *slot = slot.wrapping_add(*add);
        }
    }
}

impl<A: Slots> Monoid for Sums<A> {
    fn zero() -> Self {
        Sums(A::default())
    }
}

impl<A: Slots> Abelian for Sums<A> {
    fn negate(&mut self) {
        for slot in self.0.as_mut() {
            *slot = slot.wrapping_neg();
        }
    }
}

/// What one worker has seen of one key in one window for its distinct and its min and max
/// columns: what decides whether an event changes them. The first distinct column's set is kept
/// inline and the rest behind one pointer: one (window, key) of the live-stream schema holds 40
/// bytes here besides its set (the state of every open window is made of these).
#[derive(Clone, Debug, Default)]
pub struct Seen {
    distinct: FxHashSet<Key>,
    more: Option<Box<MoreSeen>>,
}

/// The distinct sets after the first, and the extremes.
#[derive(Clone, Debug, Default)]
struct MoreSeen {
    distinct: Vec<FxHashSet<Key>>,
    extremes: Vec<Option<i64>>,
}

impl Seen {
    fn distinct(&mut self, group: usize) -> &mut FxHashSet<Key> {
        match group {
            0 => &mut self.distinct,
            _ => {
                let more = &mut self.more.get_or_insert_with(Box::default).distinct;
                if more.len() < group {
                    more.resize_with(group, FxHashSet::default);
                }
                &mut more[group - 1]
            }
        }
    }

    fn extreme(&mut self, group: usize) -> &mut Option<i64> {
        let extremes = &mut self.more.get_or_insert_with(Box::default).extremes;
        if extremes.len() <= group {
            extremes.resize(group + 1, None);
        }
        &mut extremes[group]
    }
}

/// Where an event's contribution goes: [`Schema::contribute`] calls these with the column's
/// index in [`Columns`].
pub struct Inputs<'a, A> {
    columns: &'a Columns,
    added: A,
    seen: &'a mut Seen,
}

impl<'a, A: Slots> Inputs<'a, A> {
    /// Inputs of one event to a (window, key) with what was `seen` of it.
    pub(crate) fn new(columns: &'a Columns, seen: &'a mut Seen) -> Inputs<'a, A> {
        Inputs { columns, added: A::default(), seen }
    }

    /// Adds `value` to a sum or running column.
    pub fn add(&mut self, column: usize, value: i64) {
        debug_assert!(matches!(self.columns.get(column).map(|c| c.kind), Some(Kind::Sum | Kind::Running { .. })));
        let slot = &mut self.added.as_mut()[self.columns.slot(column)];
        *slot = slot.wrapping_add(value);
    }

    /// Adds one to a sum column: a count.
    pub fn count(&mut self, column: usize) {
        self.add(column, 1);
    }

    /// Counts `value` in a distinct column, if the key's window has not seen it.
    pub fn distinct(&mut self, column: usize, value: &str) {
        debug_assert_eq!(self.columns.get(column).map(|c| c.kind), Some(Kind::Distinct));
        let seen = self.seen.distinct(self.columns.group(column));
        if !seen.contains(value) {
            seen.insert(Key::from(value));
            self.added.as_mut()[self.columns.slot(column)] += 1;
        }
    }

    /// Offers `value` to a min or max column: the column's slot moves by the change, so the sum
    /// of what was added stays the extreme itself.
    pub fn observe(&mut self, column: usize, value: i64) {
        let kind = self.columns.get(column).map(|c| c.kind);
        debug_assert!(matches!(kind, Some(Kind::Min | Kind::Max)));
        let slot = self.columns.slot(column);
        let extreme = self.seen.extreme(self.columns.group(column));
        let better = match (*extreme, kind) {
            (None, _) => {
                self.added.as_mut()[slot + 1] += 1; // it has a value now
                true
            }
            (Some(current), Some(Kind::Min)) => value < current,
            (Some(current), _) => value > current,
        };
        if better {
            let slots = self.added.as_mut();
            slots[slot] = slots[slot].wrapping_add(value.wrapping_sub(extreme.unwrap_or(0)));
            *extreme = Some(value);
        }
    }

    /// What the event added.
    pub(crate) fn added(&self) -> A {
        self.added
    }
}

/// A row of results: the values of one key's columns in one window. The built-in
/// [`crate::Row`] has a field per column; [`GenericRow`] serves any schema.
pub trait Row:
    Clone + Debug + PartialEq + Eq + Ord + Hash + Send + Sync + Serialize + DeserializeOwned + 'static
{
    /// A row from its parts, `values` in the order of the schema's columns.
    fn from_values(window_start: EventTime, window_end: EventTime, key: &str, values: &[Value]) -> Self;
    /// The window's start.
    fn window_start(&self) -> EventTime;
    /// The window's end.
    fn window_end(&self) -> EventTime;
    /// The key.
    fn key(&self) -> &str;
    /// The value of column `index`.
    fn value(&self, index: usize) -> Value;
}

/// A row of any schema: its values in the order of the columns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GenericRow {
    /// The window's start.
    pub window_start: EventTime,
    /// The window's end.
    pub window_end: EventTime,
    /// The key.
    pub key: Key,
    /// The values, in the order of the columns.
    pub values: Vec<Value>,
}

impl Row for GenericRow {
    fn from_values(window_start: EventTime, window_end: EventTime, key: &str, values: &[Value]) -> GenericRow {
        GenericRow { window_start, window_end, key: key.into(), values: values.to_vec() }
    }
    fn window_start(&self) -> EventTime {
        self.window_start
    }
    fn window_end(&self) -> EventTime {
        self.window_end
    }
    fn key(&self) -> &str {
        &self.key
    }
    fn value(&self, index: usize) -> Value {
        self.values.get(index).copied().flatten()
    }
}

/// The values of a (window, key) from its aggregate and the running totals of its running
/// columns (in [`Columns::running`] order), in the order of the columns.
pub fn values(columns: &Columns, slots: &[i64], running: &[i64]) -> Vec<Value> {
    let mut values = Vec::with_capacity(columns.len());
    values_into(columns, slots, running, &mut values);
    values
}

/// [`values`] into `values`, replacing what it held.
pub fn values_into(columns: &Columns, slots: &[i64], running: &[i64], values: &mut Vec<Value>) {
    values.clear();
    let mut runs = running.iter();
    values.extend(columns.iter().enumerate().map(|(index, column)| {
        let slot = columns.slot(index);
        match column.kind {
            Kind::Sum | Kind::Distinct => Some(slots[slot]),
            Kind::Min | Kind::Max => (slots[slot + 1] > 0).then_some(slots[slot]),
            Kind::Running { at_least_zero } => {
                let total = runs.next().copied().unwrap_or(0);
                Some(if at_least_zero { total.max(0) } else { total })
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Columns {
        Columns::new("t", "k", "ks")
            .unwrap()
            .column("n", Kind::Sum, Number::Integer, "")
            .unwrap()
            .column("users", Kind::Distinct, Number::Integer, "")
            .unwrap()
            .column("top", Kind::Max, Number::Integer, "")
            .unwrap()
            .column("low", Kind::Min, Number::Integer, "")
            .unwrap()
            .column("audience", Kind::Running { at_least_zero: true }, Number::Integer, "")
            .unwrap()
    }

    #[test]
    fn inputs_count_distinct_values_once_and_extremes_by_their_change() {
        let columns = columns();
        let mut seen = Seen::default();
        let mut total = Sums([0i64; 7]);
        for (user, value) in [("a", 5), ("b", 3), ("a", 9), ("c", -2)] {
            let mut inputs = Inputs::<[i64; 7]>::new(&columns, &mut seen);
            inputs.count(0);
            inputs.distinct(1, user);
            inputs.observe(2, value);
            inputs.observe(3, value);
            inputs.add(4, -1);
            total.plus_equals(&Sums(inputs.added()));
        }
        assert_eq!(values(&columns, &total.0, &[-4]), vec![Some(4), Some(3), Some(9), Some(-2), Some(0)]);
        // A retraction of everything added leaves nothing.
        let mut retraction = total;
        retraction.negate();
        total.plus_equals(&retraction);
        assert!(total.is_zero());
    }

    #[test]
    fn many_distinct_and_extreme_columns_keep_apart() {
        let mut columns = Columns::new("t", "k", "ks").unwrap();
        for (name, kind) in [("a", Kind::Distinct), ("b", Kind::Distinct), ("c", Kind::Distinct)] {
            columns = columns.column(name, kind, Number::Integer, "").unwrap();
        }
        for (name, kind) in [("lo", Kind::Min), ("hi", Kind::Max), ("lo2", Kind::Min)] {
            columns = columns.column(name, kind, Number::Integer, "").unwrap();
        }
        let mut seen = Seen::default();
        let mut total = Sums([0i64; 9]);
        for (user, value) in [("x", 4), ("y", -1), ("x", 9)] {
            let mut inputs = Inputs::<[i64; 9]>::new(&columns, &mut seen);
            inputs.distinct(0, user);
            inputs.distinct(1, "same");
            inputs.distinct(2, &value.to_string());
            inputs.observe(3, value);
            inputs.observe(4, value);
            inputs.observe(5, -value);
            total.plus_equals(&Sums(inputs.added()));
        }
        assert_eq!(values(&columns, &total.0, &[]), vec![Some(2), Some(1), Some(3), Some(-1), Some(9), Some(-9)]);
    }

    #[test]
    fn a_min_or_max_without_values_is_none() {
        assert_eq!(values(&columns(), &[2, 0, 0, 0, 0, 0, 0], &[7]), vec![Some(2), Some(0), None, None, Some(7)]);
    }

    #[test]
    fn sums_wrap_instead_of_overflowing() {
        let mut sums = Sums([i64::MAX]);
        sums.plus_equals(&Sums([1]));
        let mut back = Sums([1]);
        back.negate();
        sums.plus_equals(&back);
        assert_eq!(sums.0, [i64::MAX]);
    }
}
