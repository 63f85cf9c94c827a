//! `GET /streams/top/live`: the ranking of `/streams/top` as Server-Sent Events, sent again
//! whenever a commit changes it. Each `top` event's data is `{"top": <the answer of
//! /streams/top>, "freshness": {…}}`; while the database does not answer, one `unavailable`
//! event says why, and the stream goes on once it answers again. Comments keep the connection
//! alive through proxies.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{self, Stream};
use warp::sse::Event;

use super::handlers::{self, Failure};
use super::params::{Query, TopParams};
use super::status::FreshnessJson;
use super::store::Store;

/// How often the store is asked whether a commit happened.
const POLL: Duration = Duration::from_millis(250);
/// How often the ranking is computed again without a commit: its range moves with the clock.
const RECOMPUTE: Duration = Duration::from_secs(5);

/// The parameters of a live ranking, checked as `/streams/top` checks them; `at` is the clock.
pub fn check(parameters: &HashMap<String, String>, store: &Store) -> Result<HashMap<String, String>, Failure> {
    let mut live = parameters.clone();
    live.remove("at");
    TopParams::parse(&Query::new(live.clone()), store.columns())?;
    Ok(live)
}

struct Watch {
    store: Store,
    parameters: HashMap<String, String>,
    sent: Option<bytes::Bytes>,
    last_commit: Option<SystemTime>,
    computed: Option<Instant>,
    unavailable: bool,
}

/// The events of a live ranking of `parameters` (as [`check`] gave them), computed by a task
/// of their own that ends when the client goes.
pub fn events(store: Store, parameters: HashMap<String, String>) -> impl Stream<Item = Result<Event, Infallible>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
    let watch = Watch { store, parameters, sent: None, last_commit: None, computed: None, unavailable: false };
    tokio::spawn(async move {
        let mut watch = watch;
        while let Some(event) = next(&mut watch).await {
            if sender.send(event).await.is_err() {
                break;
            }
        }
    });
    stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|event| event.map(Ok)))
}

/// The next event of `watch`: when a commit changed the ranking, or the database stopped
/// answering.
async fn next(watch: &mut Watch) -> Option<Event> {
    {
        loop {
            if watch.computed.is_some() {
                tokio::time::sleep(POLL).await;
            }
            let freshness = watch.store.freshness().await;
            let stale = watch.computed.is_none_or(|at| at.elapsed() >= RECOMPUTE);
            if freshness.last_commit == watch.last_commit && !stale && !watch.unavailable {
                continue;
            }
            watch.computed = Some(Instant::now());
            match handlers::top(watch.store.clone(), Query::new(watch.parameters.clone())).await {
                Ok(top) => {
                    watch.unavailable = false;
                    watch.last_commit = freshness.last_commit;
                    if watch.sent.as_ref() == Some(&top) {
                        continue;
                    }
                    let freshness = serde_json::to_string(&FreshnessJson::of(freshness)).unwrap_or_default();
                    let data = format!(r#"{{"top":{},"freshness":{freshness}}}"#, String::from_utf8_lossy(&top));
                    watch.sent = Some(top);
                    return Some(Event::default().event("top").data(data));
                }
                Err(Failure::Unavailable(error)) if !watch.unavailable => {
                    watch.unavailable = true;
                    // The next answer is sent whatever it is: the client may have shown the outage.
                    watch.sent = None;
                    let data = serde_json::json!({"error": error.to_string()}).to_string();
                    return Some(Event::default().event("unavailable").data(data));
                }
                Err(_) => continue,
            }
        }
    }
}
