//! The HTTP query API (spec §6), served by warp: `streamflow serve` on its own, or inside
//! `streamflow run` and the embedded example.
//!
//! Routes live in [`handlers`], their parameters in [`params`], the reads in [`store`], the
//! request counters and `/prometheus` in [`telemetry`], the live ranking in [`live`], the
//! dashboard's figures in [`status`] and its page in [`page`]; this module wires them, with a
//! timeout on every request, JSON for every refusal, `/openapi.json` made from the column
//! description, and on every answer the headers that say how fresh it is.

pub mod cache;
pub mod handlers;
pub mod live;
pub mod openapi;
pub mod page;
pub mod params;
pub mod status;
pub mod store;
pub mod telemetry;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use cache::AnswerCache;
use handlers::{error_reply, failure_reply, json_reply, Answer, Failure};
use params::Query;
pub use store::Store;
use store::Unavailable;
pub use telemetry::Telemetry;

/// How long a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A handler's answer: from the cache when an answer to `key` is fresh there, else computed
/// (and kept when it succeeds), or 503 when it takes longer than [`REQUEST_TIMEOUT`].
async fn within(cache: AnswerCache, key: String, handler: impl Future<Output = Answer>) -> Response {
    let answer = async {
        let timed_out = || Failure::Unavailable(Unavailable(format!("no answer within {REQUEST_TIMEOUT:?}")));
        tokio::time::timeout(REQUEST_TIMEOUT, handler).await.unwrap_or_else(|_| Err(timed_out()))
    };
    // Boxed: the answer's future, inside the cache's, is too large for a small stack.
    match Box::pin(cache.get_or_compute(key, Box::pin(answer))).await {
        Ok(body) => json_reply(body),
        Err(failure) => failure_reply(&failure),
    }
}

/// The routes, ready to serve; answers are kept for `cache_ttl` (zero keeps none). The routes
/// of rankings and of one key's rows are named after the store's table: `/streams/top`,
/// `/streams/{stream_id}/metrics`.
pub fn routes(
    store: Store,
    telemetry: Arc<Telemetry>,
    cache_ttl: Duration,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let columns = store.columns().clone();
    telemetry.with_routes(columns.keys(), columns.key());
    let answers = AnswerCache::new(cache_ttl, cache::DEFAULT_MAX_BYTES);
    telemetry.with_cache(answers.clone());
    let cache = warp::any().map(move || answers.clone());
    let store = warp::any().map(move || store.clone());
    let query = warp::query::<HashMap<String, String>>().map(Query::new);
    let with_telemetry = {
        let telemetry = Arc::clone(&telemetry);
        warp::any().map(move || Arc::clone(&telemetry))
    };
    let keys = columns.keys().to_owned();
    let document = Arc::new(serde_json::to_vec(&openapi::document(&columns)).unwrap_or_default());

    let health = warp::path!("health").and(store.clone()).then(|store: Store| async move {
        tokio::time::timeout(REQUEST_TIMEOUT, handlers::health(store)).await.unwrap_or_else(|_| {
            error_reply(StatusCode::SERVICE_UNAVAILABLE, format!("no answer within {REQUEST_TIMEOUT:?}"))
        })
    });
    let live = warp::path!("health" / "live").map(handlers::live);
    let ready = warp::path!("health" / "ready").and(store.clone()).and(with_telemetry.clone()).then(
        |store: Store, telemetry: Arc<Telemetry>| async move {
            tokio::time::timeout(REQUEST_TIMEOUT, handlers::ready(store, &telemetry)).await.unwrap_or_else(|_| {
                error_reply(StatusCode::SERVICE_UNAVAILABLE, format!("no answer within {REQUEST_TIMEOUT:?}"))
            })
        },
    );
    let metrics =
        warp::path!("metrics").and(store.clone()).and(query).and(cache.clone()).then(|store, query: Query, cache| {
            let key = query.key("/metrics");
            within(cache, key, handlers::metrics(store, query))
        });
    let latest = warp::path!("metrics" / "latest")
        .and(store.clone())
        .and(cache.clone())
        .then(|store, cache| within(cache, "/metrics/latest".to_owned(), handlers::latest(store)));
    let top = warp::path(keys.clone())
        .and(warp::path("top"))
        .and(warp::path::end())
        .and(store.clone())
        .and(query)
        .and(cache.clone())
        .then(|store, query: Query, cache| {
            let key = query.key("/top");
            within(cache, key, handlers::top(store, query))
        });
    let key_metrics = warp::path(keys)
        .and(warp::path::param::<String>())
        .and(warp::path("metrics"))
        .and(warp::path::end())
        .and(store.clone())
        .and(query)
        .and(cache.clone())
        .then(|id: String, store, query: Query, cache| {
            let key = query.key(&format!("/key/{}/{id}/metrics", id.len()));
            within(cache, key, handlers::key_metrics(store, id, query))
        });
    let top_live = warp::path(columns.keys().to_owned())
        .and(warp::path!("top" / "live"))
        .and(store.clone())
        .and(warp::query::<HashMap<String, String>>())
        .map(|store: Store, parameters: HashMap<String, String>| match live::check(&parameters, &store) {
            Ok(parameters) => {
                let events = live::events(store, parameters);
                warp::sse::reply(warp::sse::keep_alive().interval(Duration::from_secs(15)).stream(events))
                    .into_response()
            }
            Err(failure) => failure_reply(&failure),
        });
    let status = warp::path!("status").and(store.clone()).and(with_telemetry.clone()).and(cache.clone()).then(
        |store, telemetry: Arc<Telemetry>, cache| async move {
            within(cache, "/status".to_owned(), async move { status::status(store, &telemetry).await }).await
        },
    );
    let prometheus = warp::path!("prometheus").and(store.clone()).and(with_telemetry).then(telemetry::prometheus_route);
    let openapi = warp::path!("openapi.json").map(move || json_reply(bytes::Bytes::from(document.to_vec())));
    let index = warp::path::end().map(page::index);
    let assets = warp::path!("assets" / String).map(|name: String| page::file(&name));

    let answers = health
        .or(live)
        .unify()
        .or(ready)
        .unify()
        .or(latest)
        .unify()
        .or(metrics)
        .unify()
        .or(top)
        .unify()
        .or(key_metrics)
        .unify()
        .or(status)
        .unify()
        .or(openapi)
        .unify()
        .and(store.clone())
        .then(with_freshness);
    warp::get()
        .and(answers.or(top_live).unify().or(prometheus).unify().or(index).unify().or(assets).unify())
        .recover(rejected)
        .unify()
        .with(warp::log::custom(move |info| telemetry.observe(info.path(), info.status(), info.elapsed())))
}

/// The header of an answer's pipeline watermark: windows ending at or before it are final.
pub const WATERMARK_HEADER: &str = "streamflow-watermark";
/// The header of the time of the last commit of the rows an answer reads.
pub const LAST_COMMIT_HEADER: &str = "streamflow-last-commit";

/// `response` with the headers that say how fresh it is (none when the store cannot say).
async fn with_freshness(mut response: Response, store: Store) -> Response {
    let freshness = store.freshness().await;
    let headers = response.headers_mut();
    let times = [
        (WATERMARK_HEADER, freshness.watermark),
        (LAST_COMMIT_HEADER, freshness.last_commit.map(streamflow_core::EventTime::from)),
    ];
    for (name, time) in times {
        if let Some(value) = time.and_then(|t| warp::http::HeaderValue::from_str(&t.to_string()).ok()) {
            headers.insert(name, value);
        }
    }
    response
}

/// What warp refused before a handler ran, as JSON.
async fn rejected(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, error) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no such route".to_owned())
    } else if let Some(error) = rejection.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("the query string is not valid: {error}"))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        let refused = error_reply(StatusCode::METHOD_NOT_ALLOWED, "only GET is served".to_owned());
        return Ok(warp::reply::with_header(refused, "allow", "GET").into_response());
    } else {
        (StatusCode::BAD_REQUEST, format!("the request is not valid: {rejection:?}"))
    };
    Ok(error_reply(status, error))
}

/// The default time answers are kept: the default commit interval.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_millis(500);

/// Serves the API on `addr` until `shutdown` completes, then finishes the requests under way.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    telemetry: Arc<Telemetry>,
    cache_ttl: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, cache_ttl = ?cache_ttl, "Serving the HTTP API.");
    warp::serve(routes(store, telemetry, cache_ttl)).incoming(listener).graceful(shutdown).run().await;
    Ok(())
}
