//! A [`Schema`] described rather than implemented: the event's decoding (JSON through serde, or
//! a function of one's own), its time and key, and each column by its kind and a closure giving
//! each event's input. Rows are [`GenericRow`]s.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Columns, GenericRow, Inputs, Kind, Number, Schema};
use crate::dead_letter::Refusal;
use crate::error::Error;
use crate::time::EventTime;

/// The most slots a declared schema's columns take: a sum, a distinct and a running column take
/// one each, a min or a max two.
pub const MAX_SLOTS: usize = 16;

type Decode<E> = Box<dyn Fn(Option<&[u8]>, &[u8]) -> Result<E, Refusal> + Send + Sync>;
type Check<E> = Box<dyn Fn(&E) -> Result<(), Refusal> + Send + Sync>;
type KeyOf<E> = Box<dyn for<'e> Fn(&'e E) -> &'e str + Send + Sync>;
type TextOf<E> = Box<dyn for<'e> Fn(&'e E) -> Option<&'e str> + Send + Sync>;
type NumberOf<E> = Box<dyn Fn(&E) -> Option<i64> + Send + Sync>;

/// What each event gives a column.
enum Input<E> {
    Add(Box<dyn Fn(&E) -> i64 + Send + Sync>),
    Distinct(TextOf<E>),
    Observe(NumberOf<E>),
}

/// A schema described by its parts.
///
/// # Examples
/// ```
/// use streamflow_core::schema::Declared;
/// use streamflow_core::EventTime;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Sale {
///     #[serde(with = "streamflow_core::time::rfc3339")]
///     ts: EventTime,
///     shop: String,
///     amount: u32,
/// }
///
/// let schema = Declared::json(|sale: &Sale| sale.ts)
///     .key("shop", |sale| sale.shop.as_str())
///     .count("sales")
///     .sum("amount", |sale| i64::from(sale.amount))
///     .build("sales_minute", "shops")
///     .unwrap();
/// assert_eq!(streamflow_core::schema::Schema::columns(&schema).fingerprint(), "sales_minute(shop) sales:sum amount:sum");
/// ```
pub struct Declared<E> {
    columns: Columns,
    decode: Decode<E>,
    time: Box<dyn Fn(&E) -> EventTime + Send + Sync>,
    key: KeyOf<E>,
    inputs: Vec<Input<E>>,
}

/// A [`Declared`] schema being described.
pub struct Description<E> {
    decode: Decode<E>,
    checks: Vec<Check<E>>,
    time: Box<dyn Fn(&E) -> EventTime + Send + Sync>,
    key: Option<(String, KeyOf<E>)>,
    columns: Vec<(String, Kind, Number, String, Input<E>)>,
}

impl<E: DeserializeOwned + 'static> Declared<E> {
    /// Events decoded from JSON objects through serde (each broken rule a reason, see
    /// [`super::json::decode`]), happening at `time`.
    pub fn json(time: impl Fn(&E) -> EventTime + Send + Sync + 'static) -> Description<E> {
        Declared::decoded_by(|_key, payload| super::json::decode(payload), time)
    }
}

impl<E: 'static> Declared<E> {
    /// Events decoded by `decode` from a record's key and payload, happening at `time`.
    pub fn decoded_by(
        decode: impl Fn(Option<&[u8]>, &[u8]) -> Result<E, Refusal> + Send + Sync + 'static,
        time: impl Fn(&E) -> EventTime + Send + Sync + 'static,
    ) -> Description<E> {
        Description {
            decode: Box::new(decode),
            checks: Vec::new(),
            time: Box::new(time),
            key: None,
            columns: Vec::new(),
        }
    }
}

impl<E: 'static> Description<E> {
    /// Rows are grouped by `key`, a column named `name`.
    pub fn key(mut self, name: &str, key: impl for<'e> Fn(&'e E) -> &'e str + Send + Sync + 'static) -> Description<E> {
        self.key = Some((name.to_owned(), Box::new(key)));
        self
    }

    /// A rule of its own each decoded event must follow, or be refused with the reason given.
    pub fn check(mut self, rule: impl Fn(&E) -> Result<(), Refusal> + Send + Sync + 'static) -> Description<E> {
        self.checks.push(Box::new(rule));
        self
    }

    fn column(mut self, name: &str, kind: Kind, number: Number, input: Input<E>) -> Description<E> {
        self.columns.push((name.to_owned(), kind, number, String::new(), input));
        self
    }

    /// The events of the key's window.
    pub fn count(self, name: &str) -> Description<E> {
        self.column(name, Kind::Sum, Number::Integer, Input::Add(Box::new(|_| 1)))
    }

    /// The events of the key's window for which `rule` holds.
    pub fn count_if(self, name: &str, rule: impl Fn(&E) -> bool + Send + Sync + 'static) -> Description<E> {
        self.column(name, Kind::Sum, Number::Integer, Input::Add(Box::new(move |e| i64::from(rule(e)))))
    }

    /// The sum of an integer of each event.
    pub fn sum(self, name: &str, value: impl Fn(&E) -> i64 + Send + Sync + 'static) -> Description<E> {
        self.column(name, Kind::Sum, Number::Integer, Input::Add(Box::new(value)))
    }

    /// The exact sum of a decimal of each event, given as an integer of `scale` decimals (cents
    /// for 2).
    pub fn decimal_sum(
        self,
        name: &str,
        scale: u8,
        value: impl Fn(&E) -> i64 + Send + Sync + 'static,
    ) -> Description<E> {
        self.column(name, Kind::Sum, Number::Decimal { scale }, Input::Add(Box::new(value)))
    }

    /// How many distinct values the events carry (an event without one counts for none).
    pub fn distinct(
        self,
        name: &str,
        value: impl for<'e> Fn(&'e E) -> Option<&'e str> + Send + Sync + 'static,
    ) -> Description<E> {
        self.column(name, Kind::Distinct, Number::Integer, Input::Distinct(Box::new(value)))
    }

    /// The least value the events carry.
    pub fn min(
        self,
        name: &str,
        number: Number,
        value: impl Fn(&E) -> Option<i64> + Send + Sync + 'static,
    ) -> Description<E> {
        self.column(name, Kind::Min, number, Input::Observe(Box::new(value)))
    }

    /// The largest value the events carry.
    pub fn max(
        self,
        name: &str,
        number: Number,
        value: impl Fn(&E) -> Option<i64> + Send + Sync + 'static,
    ) -> Description<E> {
        self.column(name, Kind::Max, number, Input::Observe(Box::new(value)))
    }

    /// A total that runs on across windows: the key's sum of `value` over every event before the
    /// window's end; shown as at least 0 with `at_least_zero`.
    pub fn running_sum(
        self,
        name: &str,
        number: Number,
        at_least_zero: bool,
        value: impl Fn(&E) -> i64 + Send + Sync + 'static,
    ) -> Description<E> {
        self.column(name, Kind::Running { at_least_zero }, number, Input::Add(Box::new(value)))
    }

    /// The schema, whose rows go to the table `table`, its keys named `keys` in the plural (the
    /// API's routes: `/{keys}/top`).
    pub fn build(self, table: &str, keys: &str) -> Result<Declared<E>, Error> {
        let (key_name, key) = self.key.ok_or_else(|| Error::configuration("a declared schema needs a key"))?;
        let mut columns = Columns::new(table, &key_name, keys)?;
        let mut inputs = Vec::new();
        for (name, kind, number, doc, input) in self.columns {
            columns = columns.column(&name, kind, number, &doc)?;
            inputs.push(input);
        }
        if columns.running().next().is_some() {
            columns = columns.with_state_table(&format!("{table}_state"))?;
        }
        if columns.slot_count() > MAX_SLOTS {
            return Err(Error::configuration(format!(
                "the columns take {} slots; a declared schema has {MAX_SLOTS} (a min or a max takes two)",
                columns.slot_count()
            )));
        }
        let decode = self.decode;
        let checks = self.checks;
        let decode: Decode<E> = Box::new(move |record_key, payload| {
            let event = decode(record_key, payload)?;
            checks.iter().try_for_each(|check| check(&event))?;
            Ok(event)
        });
        Ok(Declared { columns, decode, time: self.time, key, inputs })
    }
}

impl<E> Schema for Declared<E>
where
    E: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    type Event = E;
    type Row = GenericRow;
    type Slots = [i64; MAX_SLOTS];

    fn columns(&self) -> &Columns {
        &self.columns
    }

    fn decode(&self, key: Option<&[u8]>, payload: &[u8]) -> Result<E, Refusal> {
        (self.decode)(key, payload)
    }

    fn time(&self, event: &E) -> EventTime {
        (self.time)(event)
    }

    fn key<'e>(&self, event: &'e E) -> &'e str {
        (self.key)(event)
    }

    fn contribute(&self, event: &E, inputs: &mut Inputs<'_, Self::Slots>) {
        for (column, input) in self.inputs.iter().enumerate() {
            match input {
                Input::Add(value) => inputs.add(column, value(event)),
                Input::Distinct(value) => {
                    if let Some(value) = value(event) {
                        inputs.distinct(column, value);
                    }
                }
                Input::Observe(value) => {
                    if let Some(value) = value(event) {
                        inputs.observe(column, value);
                    }
                }
            }
        }
    }
}
