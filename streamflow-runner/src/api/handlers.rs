//! The routes of spec §6, one handler each, their answers spelled out from the column
//! description. Handlers answer JSON; a bad parameter is a 400 naming it, an unavailable
//! database a 503.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use streamflow_core::schema::{Columns, GenericRow, Number};
use warp::http::StatusCode;
use warp::reply::{json, with_status, Response};
use warp::Reply;

use super::params::{key_from_path, BadParameter, MetricsParams, Query, RangeParams, TopParams};
use super::store::{Order, Ranked, Store, Unavailable};

/// A value of a column as JSON: an integer, a decimal with exactly its scale's digits, or null.
struct ValueJson(Number, Option<i64>);

impl Serialize for ValueJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (_, None) => serializer.serialize_none(),
            (Number::Integer, Some(value)) => serializer.serialize_i64(value),
            (number, Some(value)) => {
                let raw = RawValue::from_string(number.format(value)).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
        }
    }
}

/// A row as the API shows it: its window, its key, then each column by name.
pub struct RowJson<'a> {
    columns: &'a Columns,
    row: &'a GenericRow,
}

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.columns.len() + 3))?;
        map.serialize_entry("window_start", &self.row.window_start.to_string())?;
        map.serialize_entry("window_end", &self.row.window_end.to_string())?;
        map.serialize_entry(self.columns.key(), self.row.key.as_str())?;
        for (i, column) in self.columns.iter().enumerate() {
            map.serialize_entry(&column.name, &ValueJson(column.number, self.row.values.get(i).copied().flatten()))?;
        }
        map.end()
    }
}

fn rows<'a>(columns: &'a Columns, rows: &'a [GenericRow]) -> Vec<RowJson<'a>> {
    rows.iter().map(|row| RowJson { columns, row }).collect()
}

/// A ranked key as the API shows it: the key, and the value under its column's name.
struct RankedJson<'a> {
    key: &'a str,
    column: &'a str,
    value: ValueJson,
    key_name: &'a str,
}

impl Serialize for RankedJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(self.key_name, self.key)?;
        map.serialize_entry(self.column, &self.value)?;
        map.end()
    }
}

/// `{"ok": …}`.
#[derive(Debug, Serialize)]
pub struct HealthBody {
    /// Whether the database answers.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `/health/ready`.
#[derive(Debug, Serialize)]
pub struct ReadyBody {
    /// Whether the process is ready: its database answers and its pipeline, if it runs one
    /// into PostgreSQL, commits.
    pub ok: bool,
    /// Whether the API's database answers.
    pub database: bool,
    /// Whether the sink's last commit attempt reached PostgreSQL; null without a pipeline
    /// writing into PostgreSQL in this process.
    pub committing: Option<bool>,
    /// What is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{"error": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// What went wrong; a bad parameter is named.
    pub error: String,
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// A parameter is wrong: 400.
    Bad(BadParameter),
    /// The database does not answer: 503.
    Unavailable(Unavailable),
}

impl From<BadParameter> for Failure {
    fn from(error: BadParameter) -> Failure {
        Failure::Bad(error)
    }
}

impl From<Unavailable> for Failure {
    fn from(error: Unavailable) -> Failure {
        Failure::Unavailable(error)
    }
}

/// A JSON body as an answer.
pub fn json_reply(body: bytes::Bytes) -> Response {
    warp::reply::with_header(body.to_vec(), "content-type", "application/json").into_response()
}

/// A failure as a 400 or a 503.
pub fn failure_reply(failure: &Failure) -> Response {
    match failure {
        Failure::Bad(error) => error_reply(StatusCode::BAD_REQUEST, error.0.clone()),
        Failure::Unavailable(error) => error_reply(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

/// `{"error": …}` with `status`.
pub fn error_reply(status: StatusCode, error: String) -> Response {
    with_status(json(&ErrorBody { error }), status).into_response()
}

/// `GET /health`: whether the database answers.
pub async fn health(store: Store) -> Response {
    match store.health().await {
        Ok(()) => json(&HealthBody { ok: true, error: None }).into_response(),
        Err(error) => with_status(
            json(&HealthBody { ok: false, error: Some(error.to_string()) }),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response(),
    }
}

/// `GET /health/live`: the process answers. Nothing else is asked, so that a liveness probe
/// never restarts a pipeline that waits for its database to come back.
pub fn live() -> Response {
    json(&HealthBody { ok: true, error: None }).into_response()
}

/// `GET /health/ready`: the database answers and the pipeline of this process, if any, commits
/// — 503 otherwise, so that a load balancer sends no queries here.
pub async fn ready(store: Store, telemetry: &super::Telemetry) -> Response {
    let database = store.health().await;
    let committing = telemetry.postgres().map(|stats| stats.database_up.load(std::sync::atomic::Ordering::Relaxed));
    let error = match (&database, committing) {
        (Err(error), _) => Some(error.to_string()),
        (Ok(()), Some(false)) => Some("the pipeline cannot commit to its database; it retries".to_owned()),
        (Ok(()), _) => None,
    };
    let body = ReadyBody { ok: error.is_none(), database: database.is_ok(), committing, error };
    let status = if body.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    with_status(json(&body), status).into_response()
}

/// An answer, as JSON bytes.
pub type Answer = Result<bytes::Bytes, Failure>;

fn body(value: &impl Serialize) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// `GET /metrics`: rows of the last `minutes` before `at`, newest first.
pub async fn metrics(store: Store, query: Query) -> Answer {
    let columns = store.columns();
    let params = MetricsParams::parse(&query, columns)?;
    let key = params.key.as_deref();
    let found = store.rows(params.range.from, params.range.to, key, Order::NewestFirst, params.limit).await?;
    let latest = store.latest_window(key).await?;
    #[derive(Serialize)]
    struct Body<'a> {
        latest_window_start: Option<String>,
        rows: Vec<RowJson<'a>>,
    }
    Ok(body(&Body { latest_window_start: latest.map(|t| t.to_string()), rows: rows(columns, &found) }))
}

/// `GET /metrics/latest`: each key's newest window.
pub async fn latest(store: Store) -> Answer {
    let found = store.latest_per_key().await?;
    #[derive(Serialize)]
    struct Body<'a> {
        rows: Vec<RowJson<'a>>,
    }
    Ok(body(&Body { rows: rows(store.columns(), &found) }))
}

/// `GET /streams/top`: keys ranked over the last `minutes` before `at`.
pub async fn top(store: Store, query: Query) -> Answer {
    let columns = store.columns();
    let params = TopParams::parse(&query, columns)?;
    let ranked: Vec<Ranked> = store.top(params.range.from, params.range.to, params.by, params.n).await?;
    let column = columns.get(params.by.column).expect("a ranked column");
    #[derive(Serialize)]
    struct Body<'a> {
        by: &'a str,
        minutes: i64,
        from: String,
        to: String,
        rows: Vec<RankedJson<'a>>,
    }
    let rows = ranked
        .iter()
        .map(|(key, value)| RankedJson {
            key,
            column: &column.name,
            value: ValueJson(column.number, *value),
            key_name: columns.key(),
        })
        .collect();
    Ok(body(&Body {
        by: &column.name,
        minutes: params.minutes,
        from: params.range.from.to_string(),
        to: params.range.to.to_string(),
        rows,
    }))
}

/// The most rows `/streams/{stream_id}/metrics` answers: a week of one-minute windows.
const MAX_ROWS: i64 = super::params::MAX_MINUTES;

/// `GET /streams/{stream_id}/metrics`: one key's windows in a time range, oldest first.
pub async fn key_metrics(store: Store, key: String, query: Query) -> Answer {
    let columns = store.columns();
    let key = key_from_path(columns.key(), &key)?;
    let params = RangeParams::parse(&query)?;
    let (from, to) = (params.range.from, params.range.to);
    let found = store.rows(from, to, Some(&key), Order::OldestFirst, MAX_ROWS).await?;
    struct Body<'a> {
        key_name: &'a str,
        key: &'a str,
        from: String,
        to: String,
        rows: Vec<RowJson<'a>>,
    }
    impl Serialize for Body<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(4))?;
            map.serialize_entry(self.key_name, self.key)?;
            map.serialize_entry("from", &self.from)?;
            map.serialize_entry("to", &self.to)?;
            map.serialize_entry("rows", &self.rows)?;
            map.end()
        }
    }
    Ok(body(&Body {
        key_name: columns.key(),
        key: &key,
        from: from.to_string(),
        to: to.to_string(),
        rows: rows(columns, &found),
    }))
}
