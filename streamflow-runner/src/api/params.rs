//! The query parameters of the routes: parsed and checked before anything is asked of the
//! store, each refusal naming the parameter (spec §6); an empty parameter counts as absent. No
//! route builds SQL from request text: values are bound, and `by` picks a column of the
//! description by name.

use std::collections::HashMap;

use streamflow_core::schema::{Columns, Kind};
use streamflow_core::EventTime;

/// A parameter the request got wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParameter(pub String);

/// The longest window range a request may span: a week, in minutes.
pub const MAX_MINUTES: i64 = 10_080;
/// The default and the bounds of `minutes`.
pub const MINUTES: (i64, i64, i64) = (10, 1, MAX_MINUTES);
/// The default and the bounds of `/metrics`'s `limit`.
pub const LIMIT: (i64, i64, i64) = (100, 1, 1000);
/// The default and the bounds of `/streams/top`'s `n`.
pub const TOP: (i64, i64, i64) = (10, 1, 1000);
/// The longest key a request may name, in characters. No stored key is longer than 128 bytes,
/// but a longer one is answered with no rows rather than refused, so that the description's
/// `maxLength` (in characters) is the server's only rule.
pub const MAX_KEY_CHARS: usize = 1024;
/// The range of `/streams/{id}/metrics` when one end is not given: an hour.
pub const DEFAULT_RANGE_MINUTES: i64 = 60;

/// A request's query parameters; an empty value is taken as not given.
pub struct Query(HashMap<String, String>);

impl Query {
    /// The parameters of a request.
    pub fn new(parameters: HashMap<String, String>) -> Query {
        Query(parameters.into_iter().filter(|(_, value)| !value.is_empty()).collect())
    }

    /// The parameters in one canonical order after `route`: the key of an answer.
    pub fn key(&self, route: &str) -> String {
        let mut pairs: Vec<(&String, &String)> = self.0.iter().collect();
        pairs.sort();
        let mut key = route.to_owned();
        for (name, value) in pairs {
            key.push_str(&format!("&{}={}", name.len(), name));
            key.push_str(&format!("{}={value}", value.len()));
        }
        key
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn integer(&self, name: &str, (default, min, max): (i64, i64, i64)) -> Result<i64, BadParameter> {
        let Some(text) = self.get(name) else { return Ok(default) };
        match text.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(BadParameter(format!("{name} must be a whole number from {min} to {max}, not {text:?}"))),
        }
    }

    fn time(&self, name: &str) -> Result<Option<EventTime>, BadParameter> {
        self.get(name)
            .map(|text| {
                EventTime::parse_rfc3339(text).map_err(|_| {
                    BadParameter(format!("{name} must be an RFC 3339 time such as 2025-12-20T18:34:00Z, not {text:?}"))
                })
            })
            .transpose()
    }

    fn key_value(&self, name: &str) -> Result<Option<String>, BadParameter> {
        self.get(name).map(|id| checked_key(name, id.to_owned())).transpose()
    }
}

/// A window range: windows starting in `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first window start counted.
    pub from: EventTime,
    /// Window starts before this are counted.
    pub to: EventTime,
}

impl Range {
    /// `minutes` counted back from `at` (default now).
    fn back_from(query: &Query) -> Result<(Range, i64), BadParameter> {
        let minutes = query.integer("minutes", MINUTES)?;
        let to = query.time("at")?.unwrap_or_else(EventTime::now);
        Ok((Range { from: to.plus_micros(-minutes * 60_000_000), to }, minutes))
    }
}

/// `GET /metrics`.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricsParams {
    /// The windows counted.
    pub range: Range,
    /// The most rows.
    pub limit: i64,
    /// Only this key.
    pub key: Option<String>,
}

impl MetricsParams {
    /// Parses and checks the parameters; the key is named as the description names it.
    pub fn parse(query: &Query, columns: &Columns) -> Result<MetricsParams, BadParameter> {
        let (range, _) = Range::back_from(query)?;
        Ok(MetricsParams { range, limit: query.integer("limit", LIMIT)?, key: query.key_value(columns.key())? })
    }
}

/// What `/streams/top` ranks by: a ranked column, and how its windows make one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct By {
    /// The column's index in the description.
    pub column: usize,
}

/// How the windows of a range make one value of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// Summed.
    Sum,
    /// The newest window's.
    Newest,
    /// The least.
    Min,
    /// The largest.
    Max,
}

impl Ranking {
    /// How a column of `kind` is ranked: sums and distinct counts are summed over the windows;
    /// a running total is the newest window's; a min or max is the range's.
    pub fn of(kind: Kind) -> Ranking {
        match kind {
            Kind::Sum | Kind::Distinct => Ranking::Sum,
            Kind::Running { .. } => Ranking::Newest,
            Kind::Min => Ranking::Min,
            Kind::Max => Ranking::Max,
        }
    }
}

impl By {
    fn parse(query: &Query, columns: &Columns) -> Result<By, BadParameter> {
        let names = || columns.ranked().map(|i| columns.get(i).expect("a column").name.clone()).collect::<Vec<_>>();
        match query.get("by") {
            None => columns
                .default_ranking()
                .map(|column| By { column })
                .ok_or_else(|| BadParameter("by: there is nothing to rank by".into())),
            Some(name) => columns
                .index_of(name)
                .filter(|&i| columns.get(i).is_some_and(|c| c.ranked))
                .map(|column| By { column })
                .ok_or_else(|| BadParameter(format!("by must be one of {}, not {name:?}", names().join(", ")))),
        }
    }
}

/// `GET /streams/top`.
#[derive(Debug, PartialEq, Eq)]
pub struct TopParams {
    /// Minutes of windows counted.
    pub minutes: i64,
    /// What to rank by.
    pub by: By,
    /// How many keys.
    pub n: i64,
    /// The windows counted.
    pub range: Range,
}

impl TopParams {
    /// Parses and checks the parameters.
    pub fn parse(query: &Query, columns: &Columns) -> Result<TopParams, BadParameter> {
        let (range, minutes) = Range::back_from(query)?;
        let by = By::parse(query, columns)?;
        let name = if query.get("n").is_some() { "n" } else { "limit" };
        Ok(TopParams { minutes, by, n: query.integer(name, TOP)?, range })
    }
}

/// `GET /streams/{stream_id}/metrics`.
#[derive(Debug, PartialEq, Eq)]
pub struct RangeParams {
    /// The windows counted.
    pub range: Range,
}

impl RangeParams {
    /// Parses and checks the parameters: `from` and `to`, an hour apart when only one is given,
    /// the hour before now when neither is. A range that ends before it starts holds no window;
    /// a range longer than a week is answered with its first week of windows.
    pub fn parse(query: &Query) -> Result<RangeParams, BadParameter> {
        let hour = DEFAULT_RANGE_MINUTES * 60_000_000;
        let (from, to) = match (query.time("from")?, query.time("to")?) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from.plus_micros(hour)),
            (None, Some(to)) => (to.plus_micros(-hour), to),
            (None, None) => {
                let now = EventTime::now();
                (now.plus_micros(-hour), now)
            }
        };
        Ok(RangeParams { range: Range { from, to } })
    }
}

/// A key taken from the path.
pub fn key_from_path(name: &str, id: &str) -> Result<String, BadParameter> {
    let decoded =
        percent_decode(id).ok_or_else(|| BadParameter(format!("{name} is not valid percent-encoded UTF-8")))?;
    checked_key(name, decoded)
}

/// A key a request may name: 1 to [`MAX_KEY_CHARS`] characters, and no NUL, which no stored key
/// can hold.
fn checked_key(name: &str, id: String) -> Result<String, BadParameter> {
    if id.is_empty() || id.chars().count() > MAX_KEY_CHARS {
        return Err(BadParameter(format!("{name} must be 1 to {MAX_KEY_CHARS} characters long")));
    }
    if id.contains('\0') {
        return Err(BadParameter(format!("{name} must not contain NUL")));
    }
    Ok(id)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'%' => return None,
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamflow_core::LiveStreams;

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn columns() -> &'static Columns {
        LiveStreams::columns()
    }

    #[test]
    fn defaults_and_aliases() {
        let top = TopParams::parse(&query(&[("at", "2025-12-20T18:10:00Z")]), columns()).unwrap();
        assert_eq!(
            (top.minutes, columns().get(top.by.column).unwrap().name.as_str(), top.n),
            (10, "active_viewers", 10)
        );
        assert_eq!(top.range.from, EventTime::parse_rfc3339("2025-12-20T18:00:00Z").unwrap());
        assert_eq!(TopParams::parse(&query(&[("limit", "3")]), columns()).unwrap().n, 3);
        assert_eq!(TopParams::parse(&query(&[("limit", "3"), ("n", "4")]), columns()).unwrap().n, 4);
        // An empty parameter counts as absent.
        assert_eq!(MetricsParams::parse(&query(&[("stream_id", ""), ("limit", "")]), columns()).unwrap().limit, 100);
    }

    #[test]
    fn each_refusal_names_its_parameter() {
        let refused = |pairs: &[(&str, &str)]| TopParams::parse(&query(pairs), columns()).unwrap_err().0;
        assert!(refused(&[("by", "bitrate")]).starts_with("by must be one of"));
        // Columns the spec does not rank by are refused too.
        assert!(refused(&[("by", "viewer_joins")]).starts_with("by must be one of"));
        assert!(refused(&[("minutes", "0")]).starts_with("minutes"));
        assert!(refused(&[("minutes", "10081")]).starts_with("minutes"));
        assert!(refused(&[("minutes", "ten")]).starts_with("minutes"));
        assert!(refused(&[("n", "1001")]).starts_with("n "));
        assert!(refused(&[("limit", "0")]).starts_with("limit"));
        assert!(refused(&[("at", "yesterday")]).starts_with("at"));
        let range = |pairs: &[(&str, &str)]| RangeParams::parse(&query(pairs)).unwrap_err().0;
        assert!(range(&[("from", "yesterday")]).starts_with("from"));
        assert!(MetricsParams::parse(&query(&[("stream_id", &"s".repeat(1025))]), columns()).is_err());
        assert!(MetricsParams::parse(&query(&[("stream_id", "a\0b")]), columns()).is_err());
    }

    #[test]
    fn one_end_of_a_range_gives_the_hour_from_or_to_it() {
        let at = |text: &str| EventTime::parse_rfc3339(text).unwrap();
        let from = RangeParams::parse(&query(&[("from", "2020-01-01T00:00:00Z")])).unwrap().range;
        assert_eq!((from.from, from.to), (at("2020-01-01T00:00:00Z"), at("2020-01-01T01:00:00Z")));
        let to = RangeParams::parse(&query(&[("to", "2020-01-01T00:00:00Z")])).unwrap().range;
        assert_eq!((to.from, to.to), (at("2019-12-31T23:00:00Z"), at("2020-01-01T00:00:00Z")));
    }

    #[test]
    fn path_ids_are_percent_decoded() {
        assert_eq!(key_from_path("stream_id", "stream_1001").unwrap(), "stream_1001");
        assert_eq!(key_from_path("stream_id", "a%20b%27c").unwrap(), "a b'c");
        assert!(key_from_path("stream_id", "%zz").is_err());
        assert!(key_from_path("stream_id", "%ff").is_err());
        assert!(key_from_path("stream_id", "%2").is_err());
    }
}
