//! The query parameters of the routes: parsed and checked before anything is asked of the
//! store, each refusal naming the parameter (spec §6). No route builds SQL from request text:
//! values are bound, and `by` picks one of six fixed statements.

use std::collections::HashMap;

use streamflow_core::{EventTime, Row};

/// A parameter the request got wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParameter(pub String);

/// The longest window range a request may span: a week, in minutes.
pub const MAX_MINUTES: i64 = 10_080;

/// What `/streams/top` ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The newest window's running audience.
    ActiveViewers,
    /// The sum of donations.
    DonationsUsd,
    /// The number of donations.
    DonationsCount,
    /// The number of chat messages.
    ChatMessages,
    /// The number of events.
    Events,
    /// The sum of each window's distinct viewers.
    UniqueViewers,
}

impl By {
    const ALL: [By; 6] =
        [By::ActiveViewers, By::DonationsUsd, By::DonationsCount, By::ChatMessages, By::Events, By::UniqueViewers];

    /// The name used in requests and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            By::ActiveViewers => "active_viewers",
            By::DonationsUsd => "donations_usd",
            By::DonationsCount => "donations_count",
            By::ChatMessages => "chat_messages",
            By::Events => "events",
            By::UniqueViewers => "unique_viewers",
        }
    }

    fn parse(text: &str) -> Result<By, BadParameter> {
        By::ALL.into_iter().find(|by| by.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = By::ALL.iter().map(|b| b.as_str()).collect();
            BadParameter(format!("by must be one of {}, not {text:?}", names.join(", ")))
        })
    }

    /// The row's value for this ranking (donations in cents).
    pub fn of(self, row: &Row) -> i64 {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match self {
            By::ActiveViewers => count(row.active_viewers),
            By::DonationsUsd => row.donations_usd.0,
            By::DonationsCount => count(row.donations_count),
            By::ChatMessages => count(row.chat_messages),
            By::Events => count(row.events),
            By::UniqueViewers => count(row.unique_viewers),
        }
    }

    /// The ranking's statement: `$1`, `$2` the window range, `$3` how many.
    pub fn ranking_sql(self) -> &'static str {
        macro_rules! summed {
            ($column:literal) => {
                concat!(
                    "SELECT stream_id, sum(",
                    $column,
                    ")::int8 FROM stream_metrics_minute WHERE window_start >= $1 AND window_start < $2 ",
                    "GROUP BY stream_id ORDER BY 2 DESC, stream_id LIMIT $3"
                )
            };
        }
        match self {
            By::ActiveViewers => {
                "SELECT stream_id, active_viewers FROM (
                     SELECT DISTINCT ON (stream_id) stream_id, active_viewers FROM stream_metrics_minute
                     WHERE window_start >= $1 AND window_start < $2 ORDER BY stream_id, window_start DESC
                 ) newest ORDER BY 2 DESC, stream_id LIMIT $3"
            }
            By::DonationsUsd => summed!("donations_usd * 100"),
            By::DonationsCount => summed!("donations_count"),
            By::ChatMessages => summed!("chat_messages"),
            By::Events => summed!("events"),
            By::UniqueViewers => summed!("unique_viewers"),
        }
    }
}

/// A request's query parameters.
pub struct Query(HashMap<String, String>);

impl Query {
    /// The parameters of a request.
    pub fn new(parameters: HashMap<String, String>) -> Query {
        Query(parameters)
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

    fn integer(&self, name: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, BadParameter> {
        let Some(text) = self.0.get(name) else { return Ok(default) };
        match text.trim().parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(BadParameter(format!(
                "{name} must be a whole number from {} to {}, not {text:?}",
                range.start(),
                range.end()
            ))),
        }
    }

    fn time(&self, name: &str) -> Result<Option<EventTime>, BadParameter> {
        self.0
            .get(name)
            .map(|text| {
                EventTime::parse_rfc3339(text).map_err(|_| {
                    BadParameter(format!("{name} must be an RFC 3339 time such as 2025-12-20T18:34:00Z, not {text:?}"))
                })
            })
            .transpose()
    }

    fn stream(&self, name: &str) -> Result<Option<String>, BadParameter> {
        self.0.get(name).map(|id| checked_stream(name, id.clone())).transpose()
    }
}

/// A window range counted back from `at`: windows starting in `[at - minutes, at)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first window start counted.
    pub from: EventTime,
    /// Window starts before this are counted.
    pub to: EventTime,
}

impl Range {
    fn back_from(query: &Query) -> Result<(Range, i64), BadParameter> {
        let minutes = query.integer("minutes", 10, 1..=MAX_MINUTES)?;
        let to = query.time("at")?.unwrap_or_else(EventTime::now);
        Ok((Range { from: to.plus_micros(-minutes * 60_000_000), to }, minutes))
    }
}

/// `GET /metrics`.
#[derive(Debug, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Minutes of windows, counted back from `at` (1 to 10080).
    #[param(default = 10, minimum = 1, maximum = 10080)]
    pub minutes: i64,
    /// The most rows (1 to 1000).
    #[param(default = 100, minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// Only this stream.
    pub stream_id: Option<String>,
    /// The end of the range (RFC 3339); default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<EventTime>,
    /// The window range the parameters describe.
    #[param(ignore)]
    pub range: Range,
}

impl MetricsParams {
    /// Parses and checks the parameters.
    pub fn parse(query: &Query) -> Result<MetricsParams, BadParameter> {
        let (range, minutes) = Range::back_from(query)?;
        Ok(MetricsParams {
            minutes,
            limit: query.integer("limit", 100, 1..=1000)?,
            stream_id: query.stream("stream_id")?,
            at: Some(range.to),
            range,
        })
    }
}

/// `GET /streams/top`.
#[derive(Debug, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// Minutes of windows, counted back from `at` (1 to 10080).
    #[param(default = 10, minimum = 1, maximum = 10080)]
    pub minutes: i64,
    /// What to rank by: the newest `active_viewers`, or a sum of another column.
    #[param(inline, default = "active_viewers")]
    pub by: By,
    /// How many streams (1 to 1000); `limit` is accepted as its alias.
    #[param(default = 10, minimum = 1, maximum = 1000)]
    pub n: i64,
    /// The end of the range (RFC 3339); default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<EventTime>,
    /// The window range the parameters describe.
    #[param(ignore)]
    pub range: Range,
}

impl TopParams {
    /// Parses and checks the parameters.
    pub fn parse(query: &Query) -> Result<TopParams, BadParameter> {
        let (range, minutes) = Range::back_from(query)?;
        let by = query.0.get("by").map_or(Ok(By::ActiveViewers), |text| By::parse(text))?;
        let name = if query.0.contains_key("n") { "n" } else { "limit" };
        Ok(TopParams { minutes, by, n: query.integer(name, 10, 1..=1000)?, at: Some(range.to), range })
    }
}

/// `GET /streams/{stream_id}/metrics`.
#[derive(Debug, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// The first window start (RFC 3339); default: an hour before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<EventTime>,
    /// The end of the range, exclusive (RFC 3339); default: now. At most a week after `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<EventTime>,
    /// The window range the parameters describe.
    #[param(ignore)]
    pub range: Range,
}

impl RangeParams {
    /// Parses and checks the parameters.
    pub fn parse(query: &Query) -> Result<RangeParams, BadParameter> {
        let to = query.time("to")?.unwrap_or_else(EventTime::now);
        let from = query.time("from")?.unwrap_or(to.plus_micros(-3_600_000_000));
        if from >= to {
            return Err(BadParameter("from must be before to".into()));
        }
        if to.micros() - from.micros() > MAX_MINUTES * 60_000_000 {
            return Err(BadParameter(format!("from and to may be at most {MAX_MINUTES} minutes apart")));
        }
        Ok(RangeParams { from: Some(from), to: Some(to), range: Range { from, to } })
    }
}

/// A stream id taken from the path.
pub fn stream_from_path(id: &str) -> Result<String, BadParameter> {
    let decoded =
        percent_decode(id).ok_or_else(|| BadParameter("stream_id is not valid percent-encoded UTF-8".into()))?;
    checked_stream("stream_id", decoded)
}

/// A stream id as the events allow it (spec §1): 1 to 128 bytes, and no NUL, which no stored
/// id can hold.
fn checked_stream(name: &str, id: String) -> Result<String, BadParameter> {
    if id.is_empty() || id.len() > 128 {
        return Err(BadParameter(format!("{name} must be 1 to 128 bytes long")));
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

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_and_aliases() {
        let top = TopParams::parse(&query(&[("at", "2025-12-20T18:10:00Z")])).unwrap();
        assert_eq!((top.minutes, top.by, top.n), (10, By::ActiveViewers, 10));
        assert_eq!(top.range.from, EventTime::parse_rfc3339("2025-12-20T18:00:00Z").unwrap());
        assert_eq!(TopParams::parse(&query(&[("limit", "3")])).unwrap().n, 3);
        assert_eq!(TopParams::parse(&query(&[("limit", "3"), ("n", "4")])).unwrap().n, 4);
    }

    #[test]
    fn each_refusal_names_its_parameter() {
        let refused = |pairs: &[(&str, &str)]| TopParams::parse(&query(pairs)).unwrap_err().0;
        assert!(refused(&[("by", "bitrate")]).starts_with("by must be one of"));
        assert!(refused(&[("minutes", "0")]).starts_with("minutes"));
        assert!(refused(&[("minutes", "10081")]).starts_with("minutes"));
        assert!(refused(&[("minutes", "ten")]).starts_with("minutes"));
        assert!(refused(&[("n", "1001")]).starts_with("n "));
        assert!(refused(&[("limit", "0")]).starts_with("limit"));
        assert!(refused(&[("at", "yesterday")]).starts_with("at"));
        let range = |pairs: &[(&str, &str)]| RangeParams::parse(&query(pairs)).unwrap_err().0;
        assert!(range(&[("from", "2025-12-20T18:00:00Z"), ("to", "2025-12-20T17:00:00Z")]).starts_with("from"));
        assert!(range(&[("from", "2025-01-01T00:00:00Z"), ("to", "2025-12-20T17:00:00Z")]).contains("at most"));
        assert!(MetricsParams::parse(&query(&[("stream_id", "")])).is_err());
    }

    #[test]
    fn path_ids_are_percent_decoded() {
        assert_eq!(stream_from_path("stream_1001").unwrap(), "stream_1001");
        assert_eq!(stream_from_path("a%20b%27c").unwrap(), "a b'c");
        assert!(stream_from_path("%zz").is_err());
        assert!(stream_from_path("%ff").is_err());
        assert!(stream_from_path("%2").is_err());
    }
}
