//! The dashboard page in headless Chromium (Debian's `chromium`, driven by puppeteer-core from
//! npm, as `scripts/install-test-deps.sh` installs them), over a real pipeline: Kafka (tansu) →
//! `streamflow run` → PostgreSQL, the page served by the same process. The table shows the
//! numbers of `/streams/top`, the chart draws, a new commit shows within 2 s, the console stays
//! clean, and the page is usable at 1280×800 and at 390×844. Without Chromium the test says so
//! and passes, unless `STREAMFLOW_REQUIRE_TOOLS` is set (the README's test command sets it).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use streamflow_testkit::{free_port, http_get, tools_dir, wait_for_port, Postgres, Storage, Tansu};

const TOPIC: &str = "stream.events";

/// Chromium and puppeteer-core, when both are installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("STREAMFLOW_CHROMIUM").map(PathBuf::from).or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from).into_iter().find(|p| p.exists())
    })?;
    let puppeteer = tools_dir().join("node/node_modules/puppeteer-core");
    (chromium.exists() && puppeteer.join("package.json").exists()).then_some((chromium, puppeteer))
}

fn committed(url: &str) -> i64 {
    let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) else { return 0 };
    client
        .query_one("SELECT coalesce(sum(next_offset), 0)::int8 FROM source_offsets", &[])
        .map(|row| row.get(0))
        .unwrap_or(0)
}

#[test]
fn the_dashboard_shows_the_ranking_live_in_chromium() {
    let Some((chromium, puppeteer)) = browser() else {
        assert!(
            std::env::var_os("STREAMFLOW_REQUIRE_TOOLS").is_none(),
            "Chromium or puppeteer-core is missing: run scripts/install-test-deps.sh"
        );
        eprintln!("skipped: no Chromium or no puppeteer-core (scripts/install-test-deps.sh installs them)");
        return;
    };
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    // Four minutes of events up to a little before now, so that the last ten minutes hold them.
    let start = rfc3339(std::time::SystemTime::now() - Duration::from_secs(240));
    let mut generate = streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]);
    generate.args(["--count", "3000", "--partitions", "2", "--streams", "3", "--start", &start]);
    generate.args(["--event-rate", "20", "--rate", "0", "--bad-ratio", "0.01"]);
    succeed(&mut generate);
    let http = free_port();
    let mut run = streamflow(&["run", "--brokers", &broker.address(), "--topic", TOPIC, "--database-url", &pg.url()]);
    run.args(["--start-offsets", "earliest", "--commit-interval-ms", "100", "--idle-timeout-seconds", "0"]);
    let _pipeline = Running::spawn(run.args(["--http-addr", &format!("127.0.0.1:{http}")]));
    wait_for_port(http, Duration::from_secs(30)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(&pg.url()) < 3000 {
        assert!(Instant::now() < deadline, "the events were not committed");
        std::thread::sleep(Duration::from_millis(100));
    }

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard.cjs");
    let mut node = Command::new("node")
        .arg(&script)
        .arg(&puppeteer)
        .arg(&chromium)
        .arg(format!("http://127.0.0.1:{http}/"))
        .arg(&screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut to_page = node.stdin.take().unwrap();
    let mut from_page = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut next = |kind: &str| -> Value {
        let line = from_page.next().unwrap_or_else(|| panic!("the page script ended before {kind}")).unwrap();
        let rest = line.strip_prefix(&format!("{kind} ")).unwrap_or_else(|| panic!("expected {kind}, got {line}"));
        serde_json::from_str(rest).unwrap()
    };

    // The table shows what /streams/top answers, for the page's own choice of ranking.
    let shown = next("READY");
    let (by, minutes) = (shown["by"].as_str().unwrap().to_owned(), shown["minutes"].as_i64().unwrap());
    let (status, top) = http_get(http, &format!("/streams/top?by={by}&minutes={minutes}&n=20"));
    assert_eq!(status, 200, "{top}");
    let top: Value = serde_json::from_str(&top).unwrap();
    let expected: Vec<(String, f64)> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["stream_id"].as_str().unwrap().to_owned(), row[&by].as_f64().unwrap()))
        .collect();
    let rows: Vec<(String, f64)> = shown["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row[0].as_str().unwrap().to_owned(), row[1].as_f64().unwrap()))
        .collect();
    assert_eq!(rows, expected, "the page's table and /streams/top differ");
    assert!(!rows.is_empty());
    for row in shown["rows"].as_array().unwrap() {
        let text = row[2].as_str().unwrap().replace(',', "");
        assert_eq!(text.parse::<f64>().unwrap(), row[1].as_f64().unwrap(), "a value is shown as {:?}", row[2]);
    }
    let chart = &shown["chart"];
    assert!(chart["width"].as_i64().unwrap() > 200 && chart["drawn"].as_i64().unwrap() > 1000, "{chart}");
    assert!(chart["series"].as_i64().unwrap() >= 4, "{chart}");
    assert!(shown["figures"]["records read"].as_str().is_some(), "{}", shown["figures"]);

    // A commit: a new viewer joins the last stream of the ranking.
    let (stream, value) = rows.last().cloned().unwrap();
    let line = format!(
        r#"{{"ts":"{}","event_type":"viewer_join","stream_id":"{stream}","user_id":"user_dashboard"}}"#,
        rfc3339(std::time::SystemTime::now())
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("join.jsonl");
    std::fs::write(&input, line + "\n").unwrap();
    let expected_value = if by == "active_viewers" { value + 1.0 } else { value };
    writeln!(to_page, "EXPECT {stream} {}", expected_value as i64).unwrap();
    succeed(streamflow(&["produce", "--brokers", &broker.address(), "--topic", TOPIC, "--input"]).arg(&input));
    let took = next("UPDATED").as_f64().unwrap();
    assert!(took < 2000.0, "the commit showed on the page after {took} ms");

    let narrow = next("NARROW");
    assert!(narrow["overflow"].as_f64().unwrap() <= 0.0, "the page scrolls sideways at 390 px: {narrow}");
    for part in ["ranking", "chart", "health"] {
        assert_eq!(narrow[part], Value::Bool(true), "{part} is not usable at 390×844: {narrow}");
    }
    let done = next("DONE");
    assert_eq!(done["errors"], serde_json::json!([]), "the page logged errors");
    assert!(node.wait().unwrap().success());
    eprintln!("the page showed a new commit after {took} ms; screenshot: {}", screenshot.display());
}
