//! `streamflow generate` and `streamflow run` against a real Kafka-protocol broker (tansu) and
//! a real PostgreSQL: the original's smoke test, automated; exactness against `streamflow replay`
//! over the same events; and kill -9, a broker restart and a database restart in the middle.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use streamflow_testkit::{http_get, Postgres, Storage, Tansu};

const EVENTS: u64 = 200_000;
const TOPIC: &str = "stream.events";

/// The flags that fix the events: Kafka and `--output` get the same ones.
fn seeded(count: u64) -> Vec<String> {
    let flags = [
        "--count",
        &count.to_string(),
        "--partitions",
        "4",
        "--streams",
        "6",
        "--seed",
        "11",
        "--start",
        "2025-12-20T18:00:00Z",
        "--event-rate",
        "20",
        "--late-ratio",
        "0.01",
        "--bad-ratio",
        "0.01",
    ];
    flags.iter().map(|s| s.to_string()).collect()
}

/// Produces the seeded events at `rate` a second (0: at once).
fn produce(broker: &Tansu, count: u64, rate: u32) -> Command {
    let mut command = streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]);
    command.args(seeded(count)).args(["--rate", &rate.to_string(), "--compression", "lz4"]);
    command
}

/// The same events in a file, for `streamflow replay`.
fn seeded_file(dir: &Path, count: u64) -> std::path::PathBuf {
    let path = dir.join("events.jsonl");
    succeed(streamflow(&["generate", "--output", path.to_str().unwrap()]).args(seeded(count)));
    path
}

fn run(broker: &Tansu, url: &str) -> Command {
    let mut command = streamflow(&["run", "--brokers", &broker.address(), "--topic", TOPIC, "--database-url", url]);
    command.args(["--commit-interval-ms", "100", "--idle-timeout-seconds", "0"]);
    command
}

/// The pipeline reading the topic from its start.
fn run_from_earliest(broker: &Tansu, url: &str) -> Command {
    let mut command = run(broker, url);
    command.args(["--start-offsets", "earliest"]);
    command
}

fn query_i64(url: &str, sql: &str) -> Option<i64> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).ok()?;
    client.query_one(sql, &[]).ok()?.get::<_, Option<i64>>(0)
}

/// Waits until the committed offsets account for `count` records.
fn wait_for_offsets(url: &str, count: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let committed = query_i64(url, "SELECT sum(next_offset)::int8 FROM source_offsets").unwrap_or(0);
        if committed == count as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "only {committed} of {count} records committed after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_exact(url: &str, events: &Path) {
    assert_same_rows(&table_csv(url), &expected_csv(events, LATENESS));
    assert_eq!(dead_letters(url), reported_dead_letters(events, LATENESS));
}

#[test]
fn the_pipeline_over_kafka_equals_a_replay_of_the_same_events() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    succeed(&mut produce(&broker, EVENTS, 0));
    let pipeline = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), EVENTS, Duration::from_secs(120));
    pipeline.terminate();
    let events = seeded_file(dir.path(), EVENTS);
    assert_exact(&pg.url(), &events);
    let late = dead_letters(&pg.url())["late"];
    assert!(late > 1_000, "{late} late events");
}

/// The consumer group's offsets as confluent-kafka's admin client reads them: partition → offset.
const GROUP_OFFSETS: &str = r#"
import sys
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(sys.argv[2])])[sys.argv[2]]
for tp in sorted(future.result(timeout=30).topic_partitions, key=lambda tp: tp.partition):
    print(tp.topic, tp.partition, tp.offset)
"#;

/// Issue 13: after each commit the pipeline commits the same offsets under a consumer group
/// named after it, so that Kafka's own tools (here confluent-kafka's admin client) see its lag.
#[test]
fn the_committed_offsets_are_the_consumer_groups_too() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    succeed(&mut produce(&broker, 20_000, 0));
    let pipeline = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), 20_000, Duration::from_secs(120));
    pipeline.terminate();
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let stored: Vec<String> = client
        .query("SELECT partition, next_offset FROM source_offsets ORDER BY partition", &[])
        .unwrap()
        .iter()
        .map(|row| format!("{TOPIC} {} {}", row.get::<_, i32>(0), row.get::<_, i64>(1)))
        .collect();
    let group = streamflow_testkit::run_python(GROUP_OFFSETS, &[&broker.address(), "streamflow"]).unwrap();
    assert_eq!(group.lines().collect::<Vec<_>>(), stored);
}

#[test]
fn kill_9_while_the_generator_writes_ends_with_the_exact_table() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let generator = Running::spawn(&mut produce(&broker, EVENTS, 20_000));
    let reader = Reader::start(pg.url());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for _ in 0..6 {
        let pipeline = Running::spawn(run_from_earliest(&broker, &pg.url()).stderr(Stdio::null()));
        std::thread::sleep(Duration::from_millis(rng.random_range(700..2_000)));
        pipeline.kill();
    }
    let mut generator = generator;
    assert!(wait(&mut generator.0, Duration::from_secs(120)).success());
    let pipeline = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), EVENTS, Duration::from_secs(120));
    pipeline.terminate();
    assert!(reader.finish() > 10);
    assert_exact(&pg.url(), &seeded_file(dir.path(), EVENTS));
}

#[test]
fn a_broker_restart_and_a_database_restart_during_a_run_end_exact() {
    let mut broker = Tansu::start(Storage::Sqlite).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    succeed(&mut produce(&broker, EVENTS, 0));
    let pipeline = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    std::thread::sleep(Duration::from_millis(1_500));
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.start_again().unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    pg.stop().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    pg.start_again().unwrap();
    wait_for_offsets(&pg.url(), EVENTS, Duration::from_secs(180));
    pipeline.terminate();
    assert_exact(&pg.url(), &seeded_file(dir.path(), EVENTS));
}

/// The high watermarks of the topic's partitions.
fn end_offsets(runtime: &tokio::runtime::Runtime, broker: &Tansu) -> BTreeMap<i32, i64> {
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        let topics = client.list_topics().await.unwrap();
        let partitions = &topics.iter().find(|t| t.name == TOPIC).unwrap().partitions;
        let mut ends = BTreeMap::new();
        for &partition in partitions {
            let partition_client =
                client.partition_client(TOPIC, partition, UnknownTopicHandling::Retry).await.unwrap();
            let (_, high_watermark) = partition_client.fetch_records(0, 1..2, 0).await.unwrap();
            ends.insert(partition, high_watermark);
        }
        ends
    })
}

#[test]
fn smoke_what_the_original_smoke_test_checks() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Live events, their times following the clock, as the original's generator makes them.
    let mut generator = streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]);
    generator.args(["--partitions", "4", "--rate", "500"]);
    let _generator = Running::spawn(&mut generator);
    let http = streamflow_testkit::free_port();
    let mut pipeline = run(&broker, &pg.url());
    pipeline.args(["--start-offsets", "latest", "--http-addr", &format!("127.0.0.1:{http}")]);
    let pipeline = Running::spawn(&mut pipeline);

    // The topic exists, and the generator's offsets advance.
    let deadline = Instant::now() + Duration::from_secs(30);
    let topics = loop {
        let topics: Vec<String> = runtime.block_on(async {
            let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
            client.list_topics().await.unwrap().into_iter().map(|t| t.name).collect()
        });
        if topics.iter().any(|t| t == TOPIC) || Instant::now() > deadline {
            break topics;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(topics.iter().any(|t| t == TOPIC), "{topics:?}");
    let before: i64 = end_offsets(&runtime, &broker).values().sum();
    std::thread::sleep(Duration::from_secs(1));
    let after: i64 = end_offsets(&runtime, &broker).values().sum();
    assert!(after > before, "the offsets did not advance: {before} then {after}");

    // Rows appear in Postgres.
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_i64(&pg.url(), "SELECT count(*) FROM stream_metrics_minute").unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no rows in Postgres after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A donation of a known amount, now, on a stream of its own, shows up in its window exactly.
    let now = streamflow_core::EventTime::now();
    let payload = format!(
        r#"{{"event_id":"smoke-1","ts":"{now}","event_type":"donation","stream_id":"smoke_stream","user_id":"u1","amount_usd":123.45}}"#
    );
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        let partition = client.partition_client(TOPIC, 0, UnknownTopicHandling::Retry).await.unwrap();
        let record = Record {
            key: Some(b"smoke_stream".to_vec()),
            value: Some(payload.into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        partition.produce(vec![record], Compression::NoCompression).await.unwrap();
    });
    let window = streamflow_core::WindowConfig::default().start_of(now);
    let deadline = Instant::now() + Duration::from_secs(30);
    let row = loop {
        let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
        let row = client
            .query_opt(
                "SELECT donations_usd::text, donations_count, window_start = $1 FROM stream_metrics_minute
                 WHERE stream_id = 'smoke_stream'",
                &[&std::time::SystemTime::from(window)],
            )
            .unwrap();
        if let Some(row) = row {
            break (row.get::<_, String>(0), row.get::<_, i64>(1), row.get::<_, bool>(2));
        }
        assert!(Instant::now() < deadline, "the donation did not arrive in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row, ("123.45".to_owned(), 1, true));

    // The API answers, and ranks the donation.
    assert_eq!(http_get(http, "/health"), (200, r#"{"ok":true}"#.to_owned()));
    let (status, top) = http_get(http, "/streams/top?by=donations_usd&minutes=5&n=1000");
    assert_eq!(status, 200, "{top}");
    assert!(top.contains(r#"{"stream_id":"smoke_stream","donations_usd":123.45}"#), "{top}");
    pipeline.terminate();
}

/// `count` chat messages of `stream` at `minute` past 18:00 on the seeded day, as JSON lines.
fn chats_file(dir: &Path, name: &str, stream: &str, minute: u32, count: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    let lines: String = (0..count)
        .map(|i| {
            format!(
                "{{\"ts\":\"2025-12-20T18:{minute:02}:{:02}Z\",\"event_type\":\"chat_message\",\"stream_id\":\"{stream}\",\"user_id\":\"u{i}\"}}\n",
                i % 60
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// Creates the topic, of two partitions.
fn create_topic(broker: &Tansu) {
    use streamflow_core::kafka::{ClientConfig, KafkaClient};
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = KafkaClient::connect(ClientConfig::new(vec![broker.address()])).await.unwrap();
        client.create_topic(TOPIC, 2, 1).await.unwrap();
    });
}

fn produce_file(broker: &Tansu, path: &Path) {
    succeed(&mut streamflow(&[
        "produce",
        "--brokers",
        &broker.address(),
        "--topic",
        TOPIC,
        "--input",
        path.to_str().unwrap(),
    ]));
}

fn events_of_stream(url: &str, stream: &str) -> i64 {
    query_i64(
        url,
        &format!("SELECT coalesce(sum(events), 0)::int8 FROM stream_metrics_minute WHERE stream_id = '{stream}'"),
    )
    .unwrap_or(0)
}

/// Issue 13: `--start-offsets` takes a time: a first run starts at the first record produced at
/// or after it, by Kafka timestamp.
#[test]
fn a_time_as_start_offsets_starts_at_the_records_from_then() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_topic(&broker);
    produce_file(&broker, &chats_file(dir.path(), "before.jsonl", "before", 0, 300));
    std::thread::sleep(Duration::from_millis(1200));
    let from = rfc3339(std::time::SystemTime::now());
    std::thread::sleep(Duration::from_millis(200));
    produce_file(&broker, &chats_file(dir.path(), "after.jsonl", "after", 1, 200));
    let pipeline = Running::spawn(run(&broker, &pg.url()).args(["--start-offsets", &from]));
    wait_for_offsets(&pg.url(), 500, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!((events_of_stream(&pg.url(), "before"), events_of_stream(&pg.url(), "after")), (0, 200));
}

/// Issue 13: `streamflow offsets reset` moves a stopped pipeline forward (records between are
/// skipped, its open windows made final as they stand), refuses to move it back, and without
/// `--yes` only says what it would do.
#[test]
fn offsets_reset_moves_a_stopped_pipeline_forward_only() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_topic(&broker);
    produce_file(&broker, &chats_file(dir.path(), "a.jsonl", "read", 0, 300));
    let first = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), 300, Duration::from_secs(60));
    first.terminate();
    let table = table_csv(&pg.url());
    produce_file(&broker, &chats_file(dir.path(), "b.jsonl", "skipped", 30, 400));

    let reset = |to: &str, yes: bool| {
        let mut command = streamflow(&["offsets", "reset", "--brokers", &broker.address(), "--topic", TOPIC]);
        command.args(["--database-url", &pg.url(), "--to", to]);
        if yes {
            command.arg("--yes");
        }
        command.output().unwrap()
    };
    let dry = reset("latest", false);
    assert!(dry.status.success() && String::from_utf8_lossy(&dry.stderr).contains("Nothing was changed"));
    assert_eq!(query_i64(&pg.url(), "SELECT sum(next_offset)::int8 FROM source_offsets"), Some(300));
    let moved = reset("latest", true);
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    assert_eq!(query_i64(&pg.url(), "SELECT sum(next_offset)::int8 FROM source_offsets"), Some(700));
    let back = reset("earliest", true);
    assert!(!back.status.success() && String::from_utf8_lossy(&back.stderr).contains("twice"));

    produce_file(&broker, &chats_file(dir.path(), "c.jsonl", "after", 59, 100));
    let second = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), 800, Duration::from_secs(60));
    second.terminate();
    assert_eq!(events_of_stream(&pg.url(), "skipped"), 0);
    assert_eq!(events_of_stream(&pg.url(), "after"), 100);
    // The rows read before the reset are as they were, and final.
    let kept: Vec<&str> = table.lines().skip(1).collect();
    let now = table_csv(&pg.url());
    assert!(kept.iter().all(|row| now.lines().any(|line| line == *row)), "{table}\n{now}");
    assert_eq!(
        query_i64(&pg.url(), "SELECT count(*) FROM stream_metrics_minute WHERE stream_id = 'read' AND NOT is_final"),
        Some(0)
    );
}

/// Issue 13: `dead-letters list` shows what was refused, `export` writes it as JSON lines,
/// and `redrive` produces the lines — here corrected by a plain text edit — back to the
/// topic, where the running pipeline counts them.
#[test]
fn dead_letters_are_listed_exported_and_redriven_once_corrected() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_topic(&broker);
    let good = chats_file(dir.path(), "good.jsonl", "good", 0, 50);
    let bad = dir.path().join("bad.jsonl");
    let bad_lines: String = (0..7)
        .map(|i| format!("{{\"ts\":\"yesterday\",\"event_type\":\"chat_message\",\"stream_id\":\"fixed\",\"user_id\":\"u{i}\"}}\n"))
        .chain(["{\"ts\":\"2025-12-20T18:00:09Z\",\"event_type\":\"chat_message\"}\n".to_owned()])
        .collect();
    std::fs::write(&bad, bad_lines).unwrap();
    produce_file(&broker, &good);
    produce_file(&broker, &bad);
    let pipeline = Running::spawn(&mut run_from_earliest(&broker, &pg.url()));
    wait_for_offsets(&pg.url(), 58, Duration::from_secs(60));

    let dead_letters = |action: &str, extra: &[&str]| {
        let mut command = streamflow(&["dead-letters", action, "--database-url", &pg.url()]);
        command.args(extra);
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = dead_letters("list", &[]);
    assert_eq!(listed.lines().filter(|line| line.contains("\tbad_ts\t")).count(), 7, "{listed}");
    assert_eq!(listed.lines().filter(|line| line.contains("\tmissing_stream_id\t")).count(), 1, "{listed}");
    assert_eq!(dead_letters("list", &["--reason", "bad_ts", "--limit", "3"]).lines().count(), 1 + 3);

    let exported = dead_letters("export", &["--reason", "bad_ts"]);
    let lines: Vec<serde_json::Value> = exported.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    for line in &lines {
        assert_eq!(line["reason"], "bad_ts");
        assert_eq!(line["topic"], TOPIC);
        assert!(line["partition"].is_u64() && line["offset"].is_i64(), "{line}");
        assert!(line["payload"].as_str().unwrap().contains("\"ts\":\"yesterday\""), "{line}");
    }
    let fixed = dir.path().join("fixed.jsonl");
    std::fs::write(&fixed, exported.replace("\\\"ts\\\":\\\"yesterday\\\"", "\\\"ts\\\":\\\"2025-12-20T18:00:30Z\\\""))
        .unwrap();
    let redriven = streamflow(&["dead-letters", "redrive", "--input", fixed.to_str().unwrap()])
        .args(["--brokers", &broker.address(), "--topic", TOPIC])
        .output()
        .unwrap();
    assert!(redriven.status.success(), "{}", String::from_utf8_lossy(&redriven.stderr));
    assert!(String::from_utf8_lossy(&redriven.stderr).contains("7 records produced"));

    wait_for_offsets(&pg.url(), 65, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!(events_of_stream(&pg.url(), "fixed"), 7);
    assert_eq!(events_of_stream(&pg.url(), "good"), 50);
    // A line that is not a dead letter is refused with its number, before anything is produced.
    std::fs::write(&fixed, "{\"reason\":\"bad_ts\"}\n").unwrap();
    let refused = streamflow(&["dead-letters", "redrive", "--input", fixed.to_str().unwrap()])
        .args(["--brokers", &broker.address(), "--topic", TOPIC])
        .output()
        .unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("line 1"));
}

/// `GET /prometheus` of a running pipeline, parsed: each series' type, and its sample lines.
fn scrape(http: u16) -> (BTreeMap<String, String>, String) {
    let (status, body) = http_get(http, "/prometheus");
    assert_eq!(status, 200, "{body}");
    let types = body
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect();
    (types, body)
}

/// Issue 13: every series of docs/metrics.md is served, of its documented type, and nothing
/// undocumented is; the exposition passes `promtool check metrics`; per-partition series carry
/// the topic; freshness and the last commit are observed. And health: during a database outage
/// the process stays live (a liveness probe must not restart it) and is not ready.
#[test]
fn prometheus_serves_every_documented_series_and_health_tells_live_from_ready() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_topic(&broker);
    let http = streamflow_testkit::free_port();
    let pipeline =
        Running::spawn(run_from_earliest(&broker, &pg.url()).args(["--http-addr", &format!("127.0.0.1:{http}")]));
    produce_file(&broker, &chats_file(dir.path(), "a.jsonl", "s", 0, 300));
    wait_for_offsets(&pg.url(), 300, Duration::from_secs(60));
    // A request of each kind, so that the API's series have samples too.
    for path in ["/health", "/streams/top", "/nowhere"] {
        http_get(http, path);
    }
    std::thread::sleep(Duration::from_millis(300));

    let documented = documented_series();
    let (types, body) = scrape(http);
    for (name, kind) in &documented {
        assert_eq!(types.get(name), Some(kind), "docs/metrics.md: {name} is a {kind}; /prometheus:\n{body}");
    }
    for name in types.keys() {
        assert!(documented.contains_key(name), "{name} is served but not in docs/metrics.md");
    }
    assert!(body.contains(&format!("streamflow_records_read_total{{topic=\"{TOPIC}\",partition=\"0\"}}")), "{body}");
    assert!(body.contains("streamflow_build_info{version=\""), "{body}");
    let sample = |name: &str| -> f64 {
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample of {name}:\n{body}"))
    };
    assert!(sample("streamflow_freshness_seconds_count") >= 1.0, "{body}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let since_commit = now - sample("streamflow_last_commit_timestamp_seconds");
    assert!((0.0..60.0).contains(&since_commit), "{since_commit}");
    assert!(sample("process_resident_memory_bytes") > 1e6 && sample("process_cpu_seconds_total") > 0.0);
    assert_eq!(sample("streamflow_sink_db_up"), 1.0);
    if let Ok(mut lint) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        lint.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
        let linted = lint.wait_with_output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&linted.stdout), String::from_utf8_lossy(&linted.stderr));
        assert!(linted.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
    } else {
        assert!(std::env::var_os("STREAMFLOW_REQUIRE_TOOLS").is_none(), "promtool is missing");
    }

    assert_eq!(http_get(http, "/health/ready"), (200, r#"{"ok":true,"database":true,"committing":true}"#.to_owned()));
    pg.stop().unwrap();
    produce_file(&broker, &chats_file(dir.path(), "b.jsonl", "s", 1, 10));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get(http, "/health/ready");
        if status == 503 && body.contains("\"committing\":false") {
            break;
        }
        assert!(Instant::now() < deadline, "still {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(http_get(http, "/health/live"), (200, r#"{"ok":true}"#.to_owned()));
    let (_, body) = scrape(http);
    assert!(body.contains("streamflow_sink_db_up 0") && body.contains("streamflow_db_up 0"), "{body}");
    pg.start_again().unwrap();
    wait_for_offsets(&pg.url(), 310, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(http, "/health/ready").0 != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        std::thread::sleep(Duration::from_millis(200));
    }
    pipeline.terminate();
}
