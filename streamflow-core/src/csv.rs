//! Rows as CSV (RFC 4180): the window, the key, then the columns in the order of their
//! description, decimals exact (`12.50`), a min or max without values empty.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::schema::{Columns, Row};

/// The header line: `window_start,window_end,<key>,<columns…>`.
pub fn header(columns: &Columns) -> String {
    let mut names = vec!["window_start", "window_end", columns.key()];
    names.extend(columns.iter().map(|c| c.name.as_str()));
    names.join(",")
}

/// Writes the header and `rows`, in the order given.
pub fn write_rows<R: Row>(out: &mut impl Write, columns: &Columns, rows: &[R]) -> io::Result<()> {
    writeln!(out, "{}", header(columns))?;
    for row in rows {
        write!(out, "{},{},{}", row.window_start(), row.window_end(), field(row.key()))?;
        for (index, column) in columns.iter().enumerate() {
            match row.value(index) {
                Some(value) => write!(out, ",{}", column.number.format(value))?,
                None => write!(out, ",")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A CSV field, quoted when it must be.
pub fn field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GenericRow, Kind, Number};
    use crate::time::EventTime;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("stream_1001"), "stream_1001");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn rows_follow_the_description() {
        let columns = Columns::new("orders_minute", "product_id", "products")
            .unwrap()
            .column("orders", Kind::Sum, Number::Integer, "")
            .unwrap()
            .column("max_order", Kind::Max, Number::Decimal { scale: 2 }, "")
            .unwrap();
        let start = EventTime::parse_rfc3339("2025-12-20T18:00:00Z").unwrap();
        let end = start.plus_micros(60_000_000);
        let rows = [
            GenericRow::from_values(start, end, "p,1", &[Some(3), Some(1250)]),
            GenericRow::from_values(start, end, "p2", &[Some(0), None]),
        ];
        let mut out = Vec::new();
        write_rows(&mut out, &columns, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "window_start,window_end,product_id,orders,max_order\n\
             2025-12-20T18:00:00Z,2025-12-20T18:01:00Z,\"p,1\",3,12.50\n\
             2025-12-20T18:00:00Z,2025-12-20T18:01:00Z,p2,0,\n"
        );
    }
}
