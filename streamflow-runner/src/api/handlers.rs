//! The routes of spec §6, one handler each. Handlers answer JSON; a bad parameter is a 400
//! naming it, an unavailable database a 503.

use serde::Serialize;
use streamflow_core::Row;
use warp::http::StatusCode;
use warp::reply::{json, with_status, Response};

use warp::Reply;

use super::params::{stream_from_path, BadParameter, By, MetricsParams, Query, RangeParams, TopParams};
use super::store::{Order, Ranked, Store, Unavailable};

/// A row as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RowBody {
    /// RFC 3339, UTC.
    pub window_start: String,
    /// RFC 3339, UTC.
    pub window_end: String,
    /// The stream.
    pub stream_id: String,
    /// Accepted events.
    pub events: u64,
    /// `chat_message` events.
    pub chat_messages: u64,
    /// `donation` events.
    pub donations_count: u64,
    /// Their exact sum, with two decimals.
    #[schema(value_type = f64)]
    pub donations_usd: Box<serde_json::value::RawValue>,
    /// `viewer_join` events.
    pub viewer_joins: u64,
    /// `viewer_leave` events.
    pub viewer_leaves: u64,
    /// Joins minus leaves.
    pub net_viewer_delta: i64,
    /// Distinct users.
    pub unique_viewers: u64,
    /// The running audience at the window's end.
    pub active_viewers: u64,
}

impl From<&Row> for RowBody {
    fn from(row: &Row) -> RowBody {
        RowBody {
            window_start: row.window_start.to_string(),
            window_end: row.window_end.to_string(),
            stream_id: row.stream_id.to_string(),
            events: row.events,
            chat_messages: row.chat_messages,
            donations_count: row.donations_count,
            donations_usd: serde_json::value::RawValue::from_string(row.donations_usd.to_string())
                .expect("a decimal number is JSON"),
            viewer_joins: row.viewer_joins,
            viewer_leaves: row.viewer_leaves,
            net_viewer_delta: row.net_viewer_delta,
            unique_viewers: row.unique_viewers,
            active_viewers: row.active_viewers,
        }
    }
}

fn rows(rows: &[Row]) -> Vec<RowBody> {
    rows.iter().map(RowBody::from).collect()
}

/// `{"ok": …}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// Whether the database answers.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{"error": …}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong; a bad parameter is named.
    pub error: String,
}

/// The answer of `/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsBody {
    /// The newest window start in the table (of `stream_id`, when given), whatever the range.
    pub latest_window_start: Option<String>,
    /// Newest first.
    pub rows: Vec<RowBody>,
}

/// The answer of `/metrics/latest`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestBody {
    /// Each stream's newest window, by stream.
    pub rows: Vec<RowBody>,
}

/// The answer of `/streams/top`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopBody {
    /// What the streams are ranked by.
    pub by: By,
    /// Minutes of windows counted.
    pub minutes: i64,
    /// The first window start counted.
    pub from: String,
    /// The end of the range, exclusive.
    pub to: String,
    /// Best first; ties by stream.
    pub streams: Vec<Ranked>,
}

/// The answer of `/streams/{stream_id}/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamMetricsBody {
    /// The stream.
    pub stream_id: String,
    /// The first window start counted (RFC 3339).
    pub from: String,
    /// The end of the range, exclusive (RFC 3339).
    pub to: String,
    /// Oldest first.
    pub rows: Vec<RowBody>,
}

/// Why a request failed.
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

/// Whether the database answers.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "The database answers", body = HealthBody),
    (status = 503, description = "The database does not answer", body = HealthBody),
))]
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

/// Rows of the last `minutes` before `at`, newest first.
#[utoipa::path(get, path = "/metrics", params(MetricsParams), responses(
    (status = 200, body = MetricsBody),
    (status = 400, description = "A bad parameter, named", body = ErrorBody),
    (status = 503, description = "The database does not answer", body = ErrorBody),
))]
pub async fn metrics(store: Store, query: Query) -> Result<MetricsBody, Failure> {
    let params = MetricsParams::parse(&query)?;
    let stream = params.stream_id.as_deref();
    let found = store.rows(params.range.from, params.range.to, stream, Order::NewestFirst, params.limit).await?;
    let latest = store.latest_window(stream).await?;
    Ok(MetricsBody { latest_window_start: latest.map(|t| t.to_string()), rows: rows(&found) })
}

/// Each stream's newest window.
#[utoipa::path(get, path = "/metrics/latest", responses(
    (status = 200, body = LatestBody),
    (status = 503, description = "The database does not answer", body = ErrorBody),
))]
pub async fn latest(store: Store) -> Result<LatestBody, Failure> {
    Ok(LatestBody { rows: rows(&store.latest_per_stream().await?) })
}

/// Streams ranked over the last `minutes` before `at`.
#[utoipa::path(get, path = "/streams/top", params(TopParams), responses(
    (status = 200, body = TopBody),
    (status = 400, description = "A bad parameter, named", body = ErrorBody),
    (status = 503, description = "The database does not answer", body = ErrorBody),
))]
pub async fn top(store: Store, query: Query) -> Result<TopBody, Failure> {
    let params = TopParams::parse(&query)?;
    let streams = store.top(params.range.from, params.range.to, params.by, params.n).await?;
    Ok(TopBody {
        by: params.by,
        minutes: params.minutes,
        from: params.range.from.to_string(),
        to: params.range.to.to_string(),
        streams,
    })
}

/// The most rows `/streams/{stream_id}/metrics` answers: a week of one-minute windows.
const MAX_ROWS: i64 = super::params::MAX_MINUTES;

/// One stream's windows in a time range, oldest first (at most 10,080).
#[utoipa::path(get, path = "/streams/{stream_id}/metrics", params(
    ("stream_id" = String, Path, description = "The stream"),
    RangeParams,
), responses(
    (status = 200, body = StreamMetricsBody),
    (status = 400, description = "A bad parameter, named", body = ErrorBody),
    (status = 503, description = "The database does not answer", body = ErrorBody),
))]
pub async fn stream_metrics(store: Store, stream_id: String, query: Query) -> Result<StreamMetricsBody, Failure> {
    let stream_id = stream_from_path(&stream_id)?;
    let params = RangeParams::parse(&query)?;
    let (from, to) = (params.range.from, params.range.to);
    let found = store.rows(from, to, Some(&stream_id), Order::OldestFirst, MAX_ROWS).await?;
    Ok(StreamMetricsBody {
        stream_id,
        from: params.range.from.to_string(),
        to: params.range.to.to_string(),
        rows: rows(&found),
    })
}
