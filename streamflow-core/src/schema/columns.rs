//! The column description: the one list of a row's columns that everything spelling out a row
//! is built from — the PostgreSQL table and its upsert, reading rows back, the CSV, the API's
//! JSON, its rankings and its OpenAPI schema.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a column's values are written: whole numbers, or exact decimals kept as integers of the
/// smallest unit (`Decimal { scale: 2 }` keeps cents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Number {
    /// A whole number.
    Integer,
    /// An exact decimal with `scale` digits after the point, kept as a scaled integer.
    Decimal {
        /// Digits after the decimal point (at most 9).
        scale: u8,
    },
}

impl Number {
    /// `value` as text: `42`, or `12.50` for a decimal of scale 2.
    pub fn format(self, value: i64) -> String {
        match self {
            Number::Integer => value.to_string(),
            Number::Decimal { scale: 0 } => value.to_string(),
            Number::Decimal { scale } => {
                let unit = 10u64.pow(u32::from(scale));
                let sign = if value < 0 { "-" } else { "" };
                let abs = value.unsigned_abs();
                format!("{sign}{}.{:0width$}", abs / unit, abs % unit, width = usize::from(scale))
            }
        }
    }

    /// The PostgreSQL type of the column.
    pub fn sql_type(self) -> String {
        match self {
            Number::Integer => "bigint".into(),
            Number::Decimal { scale } => format!("numeric(18,{scale})"),
        }
    }
}

/// What a column computes over the events of one key in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// The sum of what each event adds: a count (each adds 1), a count of the events matching
    /// a rule, a sum of integers or of exact decimals.
    Sum,
    /// How many distinct values the events carry, counted where the key lives.
    Distinct,
    /// The least value the events carry; none when no event carries one.
    Min,
    /// The largest value the events carry; none when no event carries one.
    Max,
    /// A sum that runs on across windows: the key's total over every event before the window's
    /// end (spec §3's `active_viewers`), optionally never below zero.
    Running {
        /// Whether the total is shown as at least 0.
        at_least_zero: bool,
    },
}

impl Kind {
    /// The slots of the aggregate the column takes: min and max keep whether they saw a value.
    fn slots(self) -> usize {
        match self {
            Kind::Min | Kind::Max => 2,
            _ => 1,
        }
    }
}

/// One column of a row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// Its name: lower case, digits and `_`, starting with a letter (it is a SQL identifier).
    pub name: String,
    /// What it computes.
    pub kind: Kind,
    /// How its values are written.
    pub number: Number,
    /// What it means, for the API's description.
    pub doc: String,
    /// Whether the API ranks keys by it (`/streams/top?by=`).
    pub ranked: bool,
}

/// The columns of a row, with the names of its table and key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    table: String,
    key: String,
    keys: String,
    state_table: Option<String>,
    columns: Vec<Column>,
    /// The first slot of each column in the aggregate.
    slots: Vec<usize>,
    /// Each column's place among the columns of its group: the distinct ones, or the min and
    /// max ones.
    groups: Vec<usize>,
}

/// Whether `name` can be a SQL identifier without quoting: `[a-z][a-z0-9_]*`, at most 63 bytes.
fn identifier(name: &str) -> Result<(), Error> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::configuration(format!(
            "{name:?} cannot name a table or a column: use lower case letters, digits and _, starting with a letter"
        )))
    }
}

impl Columns {
    /// A description of rows of `table`, grouped by `key` (a column of its own, `stream_id`),
    /// whose values are named, in the plural, `keys` (`streams`: the API's routes). Columns are
    /// added with [`Columns::column`].
    pub fn new(table: &str, key: &str, keys: &str) -> Result<Columns, Error> {
        identifier(table)?;
        identifier(key)?;
        identifier(keys)?;
        Ok(Columns {
            table: table.into(),
            key: key.into(),
            keys: keys.into(),
            state_table: None,
            columns: Vec::new(),
            slots: Vec::new(),
            groups: Vec::new(),
        })
    }

    /// This description with one more column.
    pub fn column(mut self, name: &str, kind: Kind, number: Number, doc: &str) -> Result<Columns, Error> {
        identifier(name)?;
        if let Number::Decimal { scale } = number {
            if scale > 9 {
                return Err(Error::configuration(format!("the column {name} has a scale of {scale}; at most 9")));
            }
        }
        let reserved = ["window_start", "window_end", "is_final", "updated_at", self.key.as_str()];
        if reserved.contains(&name) || self.columns.iter().any(|c| c.name == name) {
            return Err(Error::configuration(format!("the column {name} is named twice")));
        }
        self.slots.push(self.slot_count());
        let group = match kind {
            Kind::Distinct => self.distinct().count(),
            Kind::Min | Kind::Max => self.extremes().count(),
            _ => 0,
        };
        self.groups.push(group);
        self.columns.push(Column { name: name.into(), kind, number, doc: doc.into(), ranked: true });
        Ok(self)
    }

    /// This description, the API ranking keys by none of `names`.
    pub fn unranked(mut self, names: &[&str]) -> Result<Columns, Error> {
        for name in names {
            let column = self
                .columns
                .iter_mut()
                .find(|c| c.name == *name)
                .ok_or_else(|| Error::configuration(format!("no column {name} to leave unranked")))?;
            column.ranked = false;
        }
        Ok(self)
    }

    /// This description with a table of each key's running columns as of its newest window
    /// (`stream_state` of spec §3).
    pub fn with_state_table(mut self, table: &str) -> Result<Columns, Error> {
        identifier(table)?;
        self.state_table = Some(table.into());
        Ok(self)
    }

    /// The results table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key's column.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What the keys are, in the plural (`streams`).
    pub fn keys(&self) -> &str {
        &self.keys
    }

    /// The table of each key's running columns as of its newest window, if any.
    pub fn state_table(&self) -> Option<&str> {
        self.state_table.as_deref()
    }

    /// The columns, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Column> + '_ {
        self.columns.iter()
    }

    /// How many columns there are.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Column `index`.
    pub fn get(&self, index: usize) -> Option<&Column> {
        self.columns.get(index)
    }

    /// The index of the column named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The slots of the aggregate all columns take.
    pub fn slot_count(&self) -> usize {
        self.columns.iter().map(|c| c.kind.slots()).sum()
    }

    /// The first slot of column `index`.
    pub fn slot(&self, index: usize) -> usize {
        self.slots[index]
    }

    /// Column `index`'s place among the distinct columns, or among the min and max ones.
    pub(crate) fn group(&self, index: usize) -> usize {
        self.groups[index]
    }

    /// The columns the API ranks keys by, in order.
    pub fn ranked(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns.iter().enumerate().filter(|(_, c)| c.ranked).map(|(i, _)| i)
    }

    /// The ranking of the API when none is asked for: by the first running column, else by the
    /// first ranked one.
    pub fn default_ranking(&self) -> Option<usize> {
        self.ranked().find(|&i| matches!(self.columns[i].kind, Kind::Running { .. })).or_else(|| self.ranked().next())
    }

    /// The indices of the running columns, in order.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns.iter().enumerate().filter(|(_, c)| matches!(c.kind, Kind::Running { .. })).map(|(i, _)| i)
    }

    /// The indices of the distinct columns, in order.
    pub fn distinct(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == Kind::Distinct).map(|(i, _)| i)
    }

    /// The indices of the min and max columns, in order.
    pub fn extremes(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns.iter().enumerate().filter(|(_, c)| matches!(c.kind, Kind::Min | Kind::Max)).map(|(i, _)| i)
    }

    /// The description as one line, stored with the results: a run whose columns differ from
    /// the stored ones is refused (see [`crate::checkpoint::Settings`]).
    pub fn fingerprint(&self) -> String {
        let mut text = format!("{}({})", self.table, self.key);
        for column in &self.columns {
            let kind = match column.kind {
                Kind::Sum => "sum".to_owned(),
                Kind::Distinct => "distinct".to_owned(),
                Kind::Min => "min".to_owned(),
                Kind::Max => "max".to_owned(),
                Kind::Running { at_least_zero: true } => "running>=0".to_owned(),
                Kind::Running { at_least_zero: false } => "running".to_owned(),
            };
            let _ = write!(text, " {}:{kind}", column.name);
            if let Number::Decimal { scale } = column.number {
                let _ = write!(text, "/{scale}");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_identifiers_and_slots_follow_the_kinds() {
        assert!(Columns::new("Orders", "product_id", "products").is_err());
        assert!(Columns::new("orders_minute", "product id", "products").is_err());
        let columns = Columns::new("orders_minute", "product_id", "products")
            .unwrap()
            .column("orders", Kind::Sum, Number::Integer, "Orders.")
            .unwrap()
            .column("max_order", Kind::Max, Number::Decimal { scale: 2 }, "The largest order.")
            .unwrap()
            .column("customers", Kind::Distinct, Number::Integer, "Distinct customers.")
            .unwrap();
        assert_eq!((columns.slot(0), columns.slot(1), columns.slot(2), columns.slot_count()), (0, 1, 3, 4));
        assert!(columns.clone().column("orders", Kind::Sum, Number::Integer, "").is_err());
        assert!(columns.clone().column("product_id", Kind::Sum, Number::Integer, "").is_err());
        assert_eq!(columns.fingerprint(), "orders_minute(product_id) orders:sum max_order:max/2 customers:distinct");
    }

    #[test]
    fn numbers_are_written_exactly() {
        let cents = Number::Decimal { scale: 2 };
        assert_eq!(
            (cents.format(1250), cents.format(5), cents.format(-5), cents.format(0)),
            ("12.50".into(), "0.05".into(), "-0.05".into(), "0.00".into())
        );
        assert_eq!(Number::Decimal { scale: 3 }.format(1_234_567), "1234.567");
        assert_eq!(Number::Integer.format(-42), "-42");
        assert_eq!((Number::Integer.sql_type(), cents.sql_type()), ("bigint".into(), "numeric(18,2)".into()));
    }
}
