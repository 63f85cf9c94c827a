//! The HTTP API against a real PostgreSQL filled by a replay of a known file: every route's
//! numbers, computed again here from the replay's CSV; every refusal of spec §6; injection
//! attempts in every parameter; random parameters (no answer is a 5xx); 503 without a database.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use serde_json::Value;
use streamflow_runner::api::{routes, Store, Telemetry};
use streamflow_testkit::Postgres;
use warp::http::StatusCode;

/// A row of the replay's CSV.
#[derive(Clone, Debug)]
struct CsvRow {
    window_start: String,
    stream_id: String,
    values: BTreeMap<&'static str, String>,
}

const COLUMNS: [&str; 9] = [
    "events",
    "chat_messages",
    "donations_count",
    "donations_usd",
    "viewer_joins",
    "viewer_leaves",
    "net_viewer_delta",
    "unique_viewers",
    "active_viewers",
];

fn parse_csv(csv: &str) -> Vec<CsvRow> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            CsvRow {
                window_start: fields[0].to_owned(),
                stream_id: fields[2].to_owned(),
                values: COLUMNS.iter().zip(&fields[3..]).map(|(c, v)| (*c, v.to_string())).collect(),
            }
        })
        .collect()
}

/// A database filled by a replay, and the rows the replay printed.
struct Fixture {
    _pg: Postgres,
    url: String,
    rows: Vec<CsvRow>,
    runtime: tokio::runtime::Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    succeed(streamflow(&["generate", "--output", input.to_str().unwrap()]).args([
        "--count",
        "30000",
        "--streams",
        "7",
        "--start",
        "2025-12-20T18:00:00Z",
        "--seed",
        "3",
        "--late-ratio",
        "0.01",
    ]));
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    let rows = parse_csv(&expected_csv(&input, LATENESS));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store =
        runtime.block_on(async { Store::postgres(&pg.url(), streamflow_core::LiveStreams::columns()).unwrap() });
    Fixture { url: pg.url(), _pg: pg, rows, runtime, store, _dir: dir }
}

impl Fixture {
    fn get(&self, path: &str) -> (StatusCode, Value) {
        // No cache: every request asks the database.
        let filter = routes(self.store.clone(), Arc::new(Telemetry::default()), std::time::Duration::ZERO);
        let response = self.runtime.block_on(warp::test::request().path(path).reply(&filter));
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status(), body)
    }

    fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    fn count_rows(&self) -> i64 {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        client.query_one("SELECT count(*) FROM stream_metrics_minute", &[]).unwrap().get(0)
    }
}

/// The CSV row's fields as the API shows them.
fn as_json(row: &CsvRow) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("window_start".into(), row.window_start.clone().into());
    object.insert("stream_id".into(), row.stream_id.clone().into());
    for (column, value) in &row.values {
        object.insert(column.to_string(), serde_json::from_str::<Value>(value).unwrap());
    }
    Value::Object(object)
}

fn without_window_end(rows: &Value) -> Vec<Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row.as_object_mut().unwrap().remove("window_end");
            row
        })
        .collect()
}

fn in_range<'a>(rows: &'a [CsvRow], from: &str, to: &str) -> Vec<&'a CsvRow> {
    rows.iter().filter(|r| r.window_start.as_str() >= from && r.window_start.as_str() < to).collect()
}

#[test]
fn every_route_answers_the_numbers_of_the_replay() {
    let f = fixture();
    assert_eq!(f.ok("/health"), serde_json::json!({"ok": true}));

    // /metrics: the last 10 minutes before `at`, newest first, then by stream.
    let at = "2025-12-20T18:20:00Z";
    let body = f.ok(&format!("/metrics?at={at}&limit=1000"));
    let mut expected: Vec<&CsvRow> = in_range(&f.rows, "2025-12-20T18:10:00Z", at);
    expected.sort_by(|a, b| b.window_start.cmp(&a.window_start).then_with(|| a.stream_id.cmp(&b.stream_id)));
    assert_eq!(without_window_end(&body["rows"]), expected.iter().map(|r| as_json(r)).collect::<Vec<_>>());
    let newest = f.rows.iter().map(|r| r.window_start.clone()).max().unwrap();
    assert_eq!(body["latest_window_start"], Value::from(newest.clone()));

    // `minutes`, `limit` and `stream_id`.
    let body = f.ok(&format!("/metrics?at={at}&minutes=3&limit=5&stream_id=stream_1003"));
    let expected: Vec<Value> = in_range(&f.rows, "2025-12-20T18:17:00Z", at)
        .into_iter()
        .rev()
        .filter(|r| r.stream_id == "stream_1003")
        .take(5)
        .map(as_json)
        .collect();
    assert_eq!(without_window_end(&body["rows"]), expected);
    assert_eq!(f.ok(&format!("/metrics?at={at}&limit=2"))["rows"].as_array().unwrap().len(), 2);

    // /metrics/latest: each stream's newest window.
    let body = f.ok("/metrics/latest");
    let mut latest: BTreeMap<&str, &CsvRow> = BTreeMap::new();
    for row in &f.rows {
        latest.insert(&row.stream_id, row);
    }
    assert_eq!(without_window_end(&body["rows"]), latest.values().map(|r| as_json(r)).collect::<Vec<_>>());

    // /streams/top by each measure.
    for by in ["active_viewers", "donations_usd", "donations_count", "chat_messages", "events", "unique_viewers"] {
        for (minutes, n) in [(10, 3), (30, 10), (1, 1)] {
            let to = "2025-12-20T18:30:00Z";
            let from = format!("2025-12-20T18:{:02}:00Z", 30 - minutes);
            let mut values: BTreeMap<&str, (String, f64)> = BTreeMap::new();
            for row in in_range(&f.rows, &from, to) {
                let value: f64 = row.values[by].parse().unwrap();
                let entry = values.entry(&row.stream_id).or_insert((row.window_start.clone(), 0.0));
                if by == "active_viewers" {
                    if row.window_start >= entry.0 {
                        *entry = (row.window_start.clone(), value);
                    }
                } else {
                    entry.1 += value;
                }
            }
            let mut ranked: Vec<(&str, f64)> = values.into_iter().map(|(s, (_, v))| (s, v)).collect();
            ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then_with(|| a.0.cmp(b.0)));
            ranked.truncate(n);
            let body = f.ok(&format!("/streams/top?by={by}&minutes={minutes}&n={n}&at={to}"));
            let got: Vec<(String, f64)> = body["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["stream_id"].as_str().unwrap().to_owned(), s[by].as_f64().unwrap()))
                .collect();
            let want: Vec<(String, f64)> =
                ranked.iter().map(|(s, v)| (s.to_string(), (v * 100.0).round() / 100.0)).collect();
            assert_eq!(got, want, "by={by} minutes={minutes} n={n}");
            assert_eq!((body["by"].as_str(), body["from"].as_str()), (Some(by), Some(from.as_str())));
        }
    }
    // `limit` is an alias of `n`; the default ranks by active viewers.
    let body = f.ok("/streams/top?limit=2&at=2025-12-20T18:30:00Z");
    assert_eq!((body["by"].as_str(), body["rows"].as_array().unwrap().len()), (Some("active_viewers"), 2));

    // /streams/{id}/metrics: a range, oldest first.
    let (from, to) = ("2025-12-20T18:05:00Z", "2025-12-20T18:12:00Z");
    let body = f.ok(&format!("/streams/stream_1002/metrics?from={from}&to={to}"));
    let expected: Vec<Value> =
        in_range(&f.rows, from, to).into_iter().filter(|r| r.stream_id == "stream_1002").map(as_json).collect();
    assert_eq!(expected.len(), 7);
    assert_eq!(without_window_end(&body["rows"]), expected);
    assert_eq!(
        f.ok("/streams/nobody/metrics?from=2025-12-20T18:00:00Z&to=2025-12-20T19:00:00Z")["rows"],
        serde_json::json!([])
    );
}

#[test]
fn every_bad_parameter_is_a_400_naming_it() {
    let f = fixture();
    let refusals = [
        ("/streams/top?by=bitrate", "by"),
        ("/streams/top?minutes=0", "minutes"),
        ("/streams/top?minutes=10081", "minutes"),
        ("/streams/top?minutes=-5", "minutes"),
        ("/streams/top?minutes=1.5", "minutes"),
        ("/streams/top?n=0", "n"),
        ("/streams/top?n=1001", "n"),
        ("/streams/top?limit=abc", "limit"),
        ("/streams/top?at=2025-12-20", "at"),
        ("/metrics?minutes=99999999999999999999", "minutes"),
        ("/metrics?limit=0", "limit"),
        ("/metrics?at=now", "at"),
        ("/streams/s/metrics?from=yesterday", "from"),
        ("/streams/s/metrics?to=2025-13-01T00:00:00Z", "to"),
    ];
    for (path, parameter) in refusals {
        let (status, body) = f.get(path);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{path}: no error in {body}"));
        assert!(error.starts_with(parameter), "{path}: {error:?} does not name {parameter}");
    }
    // What the description cannot forbid is answered (spec §6): an empty parameter counts as
    // absent, a range that ends before it starts holds nothing, a long one everything in it.
    let at = "2025-12-20T18:20:00Z";
    assert_eq!(f.ok(&format!("/metrics?at={at}&stream_id=")), f.ok(&format!("/metrics?at={at}")));
    assert_eq!(f.ok(&format!("/streams/top?at={at}&by=&n=")), f.ok(&format!("/streams/top?at={at}")));
    let backwards = f.ok("/streams/stream_1001/metrics?from=2025-12-20T19:00:00Z&to=2025-12-20T18:00:00Z");
    assert_eq!(backwards["rows"], serde_json::json!([]));
    let long = f.ok("/streams/stream_1001/metrics?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z");
    assert_eq!(long["rows"].as_array().unwrap().len(), f.rows.iter().filter(|r| r.stream_id == "stream_1001").count());
}

#[test]
fn injection_attempts_are_refused_or_taken_as_data() {
    let f = fixture();
    let before = f.count_rows();
    let attacks = [
        "'; DROP TABLE stream_metrics_minute; --",
        "stream_1001' OR '1'='1",
        "1; DELETE FROM stream_state",
        "$1",
        "\0",
        "nul\0byte",
        "%00",
        "stream_1001%27--",
        "active_viewers; DROP TABLE dead_letters",
    ];
    for attack in attacks {
        let encoded: String = attack.bytes().map(|b| format!("%{b:02X}")).collect();
        for path in [
            format!("/metrics?stream_id={encoded}"),
            format!("/metrics?minutes={encoded}"),
            format!("/metrics?limit={encoded}"),
            format!("/metrics?at={encoded}"),
            format!("/streams/top?by={encoded}"),
            format!("/streams/top?n={encoded}"),
            format!("/streams/top?minutes={encoded}"),
            format!("/streams/top?at={encoded}"),
            format!("/streams/{encoded}/metrics"),
            format!("/streams/s/metrics?from={encoded}"),
            format!("/streams/s/metrics?to={encoded}"),
        ] {
            let (status, body) = f.get(&path);
            match status {
                StatusCode::OK => assert!(body["rows"].as_array().is_some_and(|r| r.is_empty()), "{path}: {body}"),
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => assert!(body["error"].is_string(), "{path}"),
                other => panic!("{path}: {other} {body}"),
            }
        }
    }
    assert_eq!(f.count_rows(), before, "the table changed");
    assert_eq!(f.ok("/health"), serde_json::json!({"ok": true}));
}

/// Issue 14: every answer says how fresh it is: the watermark and the last commit the
/// pipeline stored, as headers the description declares.
#[test]
fn every_answer_says_how_fresh_it_is() {
    let f = fixture();
    let mut client = postgres::Client::connect(&f.url, postgres::NoTls).unwrap();
    let row = client.query_one("SELECT closed_through, updated_at FROM pipeline_checkpoints", &[]).unwrap();
    let stored = |i: usize| rfc3339(row.get::<_, std::time::SystemTime>(i));
    let filter = routes(f.store.clone(), Arc::new(Telemetry::default()), std::time::Duration::ZERO);
    for path in ["/health", "/metrics", "/metrics/latest", "/streams/top", "/streams/stream_1001/metrics", "/status"] {
        let response = f.runtime.block_on(warp::test::request().path(path).reply(&filter));
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("streamflow-watermark"), Some(stored(0)), "{path}");
        assert_eq!(header("streamflow-last-commit"), Some(stored(1)), "{path}");
    }
    let status = f.ok("/status");
    assert_eq!(status["freshness"]["watermark"], Value::from(stored(0)));
    assert_eq!(status["freshness"]["last_commit"], Value::from(stored(1)));
    assert!(status["dead_letters"]["late"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(status["pipeline"], Value::Null, "no pipeline runs in this process");
    let openapi = f.ok("/openapi.json");
    let headers = &openapi["paths"]["/streams/top"]["get"]["responses"]["200"]["headers"];
    assert!(headers["Streamflow-Watermark"].is_object() && headers["Streamflow-Last-Commit"].is_object());
}

/// Issue 15: the freshness every answer carries is read once per `FRESHNESS_TTL`, not once per
/// answer (a second query per answer halved what the cached API served). A commit between two
/// answers inside the interval is not seen by the second; after the interval it is.
#[test]
fn the_freshness_is_read_once_per_interval_not_once_per_answer() {
    use std::time::{Duration, Instant};
    use streamflow_runner::api::store::FRESHNESS_TTL;

    let f = fixture();
    let mut client = postgres::Client::connect(&f.url, postgres::NoTls).unwrap();
    let mut commit = || {
        client.execute("UPDATE pipeline_checkpoints SET updated_at = updated_at + interval '1 second'", &[]).unwrap()
    };
    // A slow machine may take longer than the interval between the two reads: then again.
    let kept = (0..5).any(|_| {
        std::thread::sleep(FRESHNESS_TTL);
        let started = Instant::now();
        let first = f.runtime.block_on(f.store.freshness());
        commit();
        let second = f.runtime.block_on(f.store.freshness());
        assert!(first.last_commit.is_some(), "the replay committed");
        started.elapsed() < FRESHNESS_TTL && second == first
    });
    assert!(kept, "every answer read the freshness again");
    std::thread::sleep(FRESHNESS_TTL + Duration::from_millis(20));
    let before = f.runtime.block_on(f.store.freshness());
    commit();
    std::thread::sleep(FRESHNESS_TTL + Duration::from_millis(20));
    let after = f.runtime.block_on(f.store.freshness());
    assert_eq!(
        after.last_commit,
        before.last_commit.map(|t| t + Duration::from_secs(1)),
        "a new commit is seen after the interval"
    );
}

/// The events of a Server-Sent Events answer, read from a raw connection: (event, data).
struct Events(std::io::BufReader<std::net::TcpStream>);

impl Events {
    fn open(port: u16, path: &str) -> Events {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_lowercase().contains("content-type: text/event-stream"), "{head}");
        Events(reader)
    }

    /// The next event (comments and chunk sizes skipped).
    fn next(&mut self) -> (String, Value) {
        use std::io::BufRead;
        let (mut event, mut data) = (None, None);
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "the stream ended");
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(text) = line.strip_prefix("data:") {
                data = Some(serde_json::from_str(text.trim()).unwrap());
            } else if line.is_empty() {
                if let (Some(event), Some(data)) = (event.take(), data.take()) {
                    return (event, data);
                }
            }
        }
    }
}

/// Issue 14: the ranking as Server-Sent Events — one event at once, one more when a commit
/// changes it, and through a database restart an `unavailable` event, then the ranking again.
#[test]
fn the_live_ranking_follows_commits_and_a_database_restart() {
    let f = fixture();
    let port = streamflow_testkit::free_port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let server = streamflow_runner::api::serve(
        addr,
        f.store.clone(),
        Arc::new(Telemetry::default()),
        std::time::Duration::ZERO,
        std::future::pending(),
    );
    f.runtime.spawn(server);
    streamflow_testkit::wait_for_port(port, std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(streamflow_testkit::http_get(port, "/streams/top/live?by=bitrate").0, 400);

    let mut events = Events::open(port, "/streams/top/live?by=donations_usd&minutes=5");
    let (event, data) = events.next();
    assert_eq!(event, "top");
    // The replayed history lies in the past: nothing in the last five minutes yet.
    assert_eq!(data["top"]["rows"], serde_json::json!([]), "{data}");
    assert!(data["freshness"]["last_commit"].is_string(), "{data}");

    // A commit of a row in the current minute, as a pipeline makes it.
    let mut client = postgres::Client::connect(&f.url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "INSERT INTO stream_metrics_minute (window_start, window_end, stream_id, events, chat_messages,
                 donations_count, donations_usd, viewer_joins, viewer_leaves, net_viewer_delta, unique_viewers,
                 active_viewers)
             VALUES (date_trunc('minute', now()), date_trunc('minute', now()) + interval '1 minute', 'live_stream',
                     1, 0, 1, 42.50, 0, 0, 0, 1, 0);
             UPDATE pipeline_checkpoints SET updated_at = now();",
        )
        .unwrap();
    let started = std::time::Instant::now();
    let (event, data) = events.next();
    assert_eq!(event, "top");
    assert_eq!(data["top"]["rows"], serde_json::json!([{"stream_id": "live_stream", "donations_usd": 42.5}]));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());

    // The database goes away: the stream says so, and goes on when it is back.
    f._pg.stop().unwrap();
    let (event, data) = events.next();
    assert_eq!(event, "unavailable");
    assert!(data["error"].as_str().unwrap().contains("database"), "{data}");
    f._pg.start_again().unwrap();
    let (event, data) = events.next();
    assert_eq!(event, "top");
    assert_eq!(data["top"]["rows"][0]["stream_id"], "live_stream");
}

#[test]
fn health_is_503_and_routes_answer_503_quickly_without_the_database() {
    let f = fixture();
    f._pg.stop().unwrap();
    for path in ["/health", "/health/ready", "/metrics", "/metrics/latest", "/streams/top", "/streams/s/metrics"] {
        let started = std::time::Instant::now();
        let (status, body) = f.get(path);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{path} took {:?}", started.elapsed());
        if path.starts_with("/health") {
            assert_eq!(body["ok"], Value::Bool(false));
        }
        assert!(body["error"].as_str().is_some_and(|e| e.contains("database")), "{path}: {body}");
    }
    // Alive all the same: a liveness probe must not restart the process for an outage.
    assert_eq!(f.ok("/health/live"), serde_json::json!({"ok": true}));
    f._pg.start_again().unwrap();
    assert_eq!(f.ok("/health"), serde_json::json!({"ok": true}));
    assert_eq!(f.ok("/health/ready"), serde_json::json!({"ok": true, "database": true, "committing": null}));
}

#[test]
fn openapi_describes_every_route() {
    let f = fixture();
    let doc = f.ok("/openapi.json");
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for route in
        ["/health", "/metrics", "/metrics/latest", "/streams/top", "/streams/{stream_id}/metrics", "/prometheus"]
    {
        assert!(paths.contains(&route), "{route} is missing from {paths:?}");
    }
    let top = &doc["paths"]["/streams/top"]["get"]["parameters"];
    let names: Vec<&str> = top.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["minutes", "by", "n", "at"]);
}

#[test]
fn no_parameters_make_a_5xx() {
    let f = fixture();
    let strategy = (
        prop::sample::select(vec!["/metrics", "/streams/top", "/streams/s1/metrics", "/metrics/latest"]),
        prop::collection::vec(
            prop::sample::select(vec!["minutes", "limit", "n", "by", "at", "from", "to", "stream_id", "x"]),
            0..4,
        ),
        prop::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (0i64..20_000).prop_map(|n| n.to_string()),
                "\\PC{0,40}",
                "[\\x00-\\x1f'\";%]{0,8}",
                Just("2025-12-20T18:00:00Z".to_owned()),
                Just("9999-12-31T23:59:59.999999999+23:59".to_owned()),
                Just("0000-01-01T00:00:00-23:59".to_owned()),
            ],
            4,
        ),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 400, ..ProptestConfig::default() });
    runner
        .run(&strategy, |(route, names, values)| {
            let query: Vec<String> = names
                .iter()
                .zip(&values)
                .map(|(name, value)| {
                    let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
                    format!("{name}={encoded}")
                })
                .collect();
            let path = format!("{route}?{}", query.join("&"));
            let (status, body) = f.get(&path);
            prop_assert!(status.as_u16() < 500, "{} {}: {}", path, status, body);
            Ok(())
        })
        .unwrap();
}
