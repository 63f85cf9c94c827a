//! Regression tests: one per defect found, each named after what must hold and saying where the
//! defect was reported; against a real PostgreSQL and, where Kafka is involved, a real broker
//! (tansu) and a third-party client (confluent-kafka).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use streamflow_testkit::{free_port, http_get, Postgres, Storage, Tansu};

/// Records of every kind the decoder refuses, and the worst a producer can send: U+0000 where
/// text is stored, lone surrogates, values of 1 MiB + 1 byte, 2,000-digit amounts; with good
/// events around them.
pub fn poison_lines() -> Vec<Vec<u8>> {
    let ts = "2025-12-20T18:00:30Z";
    let good =
        |stream: &str| format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"{stream}","user_id":"u1"}}"#);
    let mut lines: Vec<Vec<u8>> = vec![
        // The decoder's kinds, one each.
        format!(r#"{{"pad":"{}"}}"#, "x".repeat(1 << 20)).into_bytes(),
        b"{\"ts\":\"\xff\"}".to_vec(),
        b"{\"ts\":".to_vec(),
        b"".to_vec(),
        b"[1,2,3]".to_vec(),
        br#""a string""#.to_vec(),
        br#"{"event_type":"chat_message","stream_id":"s"}"#.to_vec(),
        br#"{"ts":1766255678,"event_type":"chat_message","stream_id":"s"}"#.to_vec(),
        format!(r#"{{"ts":"{ts}","stream_id":"s"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"raid","stream_id":"s"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":3,"stream_id":"s"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"chat_message"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":""}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"{}"}}"#, "s".repeat(129)).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s","user_id":7}}"#).into_bytes(),
        format!(r#"{{"event_id":{{}},"ts":"{ts}","event_type":"chat_message","stream_id":"s"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s","message_len":-1}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s","amount_usd":"12.50"}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s","amount_usd":-0.004}}"#).into_bytes(),
        format!(r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s","amount_usd":1000000000.004}}"#).into_bytes(),
        // U+0000 where text would be stored: a stream id, a refused record's event id and detail.
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s\u0000"}}"#).into_bytes(),
        format!(r#"{{"event_id":"e\u0000","ts":"{ts}","event_type":"ra\u0000id","stream_id":"s"}}"#).into_bytes(),
        br#"{"event_id":"e\u0000","ts":"x\u0000y","event_type":"chat_message","stream_id":"s"}"#.to_vec(),
        // Lone surrogates, escaped and as raw bytes.
        format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s\ud800"}}"#).into_bytes(),
        format!(r#"{{"event_id":"\udfff","ts":"{ts}","event_type":"chat_message","stream_id":"s"}}"#).into_bytes(),
        b"{\"ts\":\"2025-12-20T18:00:30Z\",\"event_type\":\"chat_message\",\"stream_id\":\"s\xed\xa0\x80\"}".to_vec(),
        // A value of 1 MiB + 1 byte, and one of exactly 1 MiB that is good.
        vec![b'x'; (1 << 20) + 1],
        {
            let mut line = good("big").into_bytes();
            let pad = (1 << 20) - line.len() - r#","pad":"""#.len();
            line.truncate(line.len() - 1);
            line.extend_from_slice(format!(r#","pad":"{}"}}"#, "p".repeat(pad)).as_bytes());
            assert_eq!(line.len(), 1 << 20);
            line
        },
        // 2,000-digit amounts: out of range, and exactly 100.00.
        format!(r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s","amount_usd":{}}}"#, "9".repeat(2_000))
            .into_bytes(),
        format!(
            r#"{{"ts":"{ts}","event_type":"donation","stream_id":"s","amount_usd":0.{}1e2002}}"#,
            "0".repeat(1_998)
        )
        .into_bytes(),
        // Late.
        br#"{"ts":"2025-12-20T18:30:00Z","event_type":"chat_message","stream_id":"s"}"#.to_vec(),
        br#"{"event_id":"late\u0000","ts":"2025-12-20T18:00:00Z","event_type":"chat_message","stream_id":"s"}"#
            .to_vec(),
    ];
    // Good events between every two.
    let mut mixed = Vec::new();
    for (i, line) in lines.drain(..).enumerate() {
        mixed.push(good(&format!("stream_{}", i % 3)).into_bytes());
        mixed.push(line);
    }
    mixed
}

/// `lines` as a JSON-lines file.
fn write_lines(dir: &Path, name: &str, lines: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = Vec::new();
    for line in lines {
        assert!(!line.contains(&b'\n'));
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stderr_of(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn query_i64(url: &str, sql: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.query_one(sql, &[]).unwrap().get(0)
}

/// Waits until `sql` counts something (the tables may not exist yet).
fn wait_until_counted(url: &str, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counted = postgres::Client::connect(url, postgres::NoTls)
            .ok()
            .and_then(|mut client| client.query_one(sql, &[]).ok())
            .is_some_and(|row| row.get::<_, i64>(0) > 0);
        if counted {
            return;
        }
        assert!(Instant::now() < deadline, "nothing came of {sql} in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue 10, item 1: a `stream_id` or `event_id` holding U+0000 made PostgreSQL refuse the whole
/// commit, and every restart read the same record again. No record may make a commit fail.
#[test]
fn no_record_can_make_a_commit_fail() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_lines(dir.path(), "poison.jsonl", &poison_lines());
    let (ok, stderr) = stderr_of(&mut replay_into(&input, &pg.url(), LATENESS));
    assert!(ok, "the replay stopped: {stderr}");
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LATENESS));
    let dead = dead_letters(&pg.url());
    assert_eq!(dead, reported_dead_letters(&input, LATENESS));
    for reason in ["too_large", "not_utf8", "not_json", "bad_stream_id", "amount_out_of_range", "late", "bad_ts"] {
        assert!(dead.contains_key(reason), "no {reason} among {dead:?}");
    }
    // Every record is counted once, accepted or refused, and a refused one is kept with its
    // bytes; its stored text holds no U+0000.
    let lines = poison_lines();
    let accepted = query_i64(&pg.url(), "SELECT sum(events)::int8 FROM stream_metrics_minute");
    assert_eq!(accepted + dead.values().sum::<i64>(), lines.len() as i64);
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    for row in client.query("SELECT \"offset\", payload FROM dead_letters", &[]).unwrap() {
        let offset: i64 = row.get(0);
        assert_eq!(row.get::<_, Vec<u8>>(1), lines[offset as usize], "the payload at {offset} changed");
    }
    let replaced: i64 = client
        .query_one("SELECT count(*) FROM dead_letters WHERE event_id LIKE '%' || U&'\\FFFD' || '%'", &[])
        .unwrap()
        .get(0);
    assert_eq!(replaced, 3, "event ids with U+0000 replaced");
}

/// Issue 10, item 10: on the original pipeline's database (its tables, no `schema_migrations`)
/// the migration failed half-way with "relation already exists".
#[test]
fn the_original_pipelines_tables_are_left_as_they_are() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE stream_metrics_minute (window_start timestamptz, stream_id text, events int,
                 donations_usd double precision, PRIMARY KEY (window_start, stream_id));
             CREATE TABLE stream_state (stream_id text PRIMARY KEY, active_viewers bigint, updated_at timestamptz);
             INSERT INTO stream_state VALUES ('stream_1001', 42, now());",
        )
        .unwrap();
    let input = events_file(dir.path(), 1_000);
    let (ok, stderr) = stderr_of(&mut replay_into(&input, &pg.url(), LATENESS));
    assert!(!ok);
    assert!(stderr.contains("did not create") && stderr.contains("stream_metrics_minute, stream_state"), "{stderr}");
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    let migrations: Option<String> =
        client.query_one("SELECT to_regclass('schema_migrations')::text", &[]).unwrap().get(0);
    assert_eq!(migrations, None, "the migration changed the database");
    assert_eq!(query_i64(&pg.url(), "SELECT active_viewers FROM stream_state"), 42);
}

/// Issue 10, item 3: a restart with another window size left 1-minute rows beside 5-minute ones,
/// and a lower lateness moved rows backwards. Such a resume is refused, saying what differs.
#[test]
fn a_resume_with_other_settings_is_refused_until_reset() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 20_000);
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    let table = table_csv(&pg.url());

    let (ok, stderr) = stderr_of(replay_into(&input, &pg.url(), LATENESS).args(["--window-seconds", "300"]));
    assert!(!ok);
    assert!(stderr.contains("window size (stored results: 60 s, this run: 300 s)"), "{stderr}");
    let (ok, stderr) = stderr_of(&mut replay_into(&input, &pg.url(), "60"));
    assert!(!ok);
    assert!(stderr.contains("allowed lateness (stored results: 600 s, this run: 60 s)"), "{stderr}");
    assert!(stderr.contains("streamflow reset"), "{stderr}");
    assert_eq!(table_csv(&pg.url()), table, "a refused run changed the table");

    // Reset, and the new settings start afresh.
    let (ok, stderr) = stderr_of(&mut streamflow(&["reset", "--database-url", &pg.url()]));
    assert!(!ok && stderr.contains("--yes"), "{stderr}");
    succeed(&mut streamflow(&["reset", "--database-url", &pg.url(), "--yes"]));
    assert_eq!(query_i64(&pg.url(), "SELECT count(*) FROM stream_metrics_minute"), 0);
    succeed(replay_into(&input, &pg.url(), LATENESS).args(["--window-seconds", "300"]));
    let five_minutes = {
        let args = ["replay", "--input", input.to_str().unwrap(), "--window-seconds", "300"];
        String::from_utf8(succeed(&mut streamflow(&args)).stdout).unwrap()
    };
    assert_eq!(table_csv(&pg.url()), five_minutes);
}

/// Issue 10, item 2: two replays under the default pipeline name inherited each other's
/// watermark and audience base. A pipeline's results come from one source.
#[test]
fn a_replay_of_another_source_under_the_same_name_is_refused() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = events_file(dir.path(), 20_000);
    succeed(&mut replay_into(&first, &pg.url(), LATENESS));
    let table = table_csv(&pg.url());
    let second = write_lines(dir.path(), "other.jsonl", &poison_lines());
    let (ok, stderr) = stderr_of(&mut replay_into(&second, &pg.url(), LATENESS));
    assert!(!ok);
    assert!(
        stderr.contains(r#"the source (stored results: "events-20000.jsonl", this run: "other.jsonl")"#),
        "{stderr}"
    );
    assert_eq!(table_csv(&pg.url()), table);
}

/// Issue 10, item 2: two pipelines wrote the same rows. The tables of a schema belong to one
/// pipeline; another one is refused, and runs in a schema of its own.
#[test]
fn two_pipelines_never_write_the_same_tables() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 20_000);
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    let table = table_csv(&pg.url());
    let (ok, stderr) = stderr_of(replay_into(&input, &pg.url(), LATENESS).args(["--pipeline-name", "backfill"]));
    assert!(!ok);
    assert!(stderr.contains(r#"hold the results of pipeline "streamflow""#), "{stderr}");
    assert_eq!(table_csv(&pg.url()), table);

    // In a schema of its own, the second pipeline has tables of its own.
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client.batch_execute("CREATE SCHEMA backfill").unwrap();
    let url = format!("{}?options=-csearch_path%3Dbackfill", pg.url());
    succeed(replay_into(&input, &url, "60").args(["--pipeline-name", "backfill"]));
    assert_eq!(table_csv(&url), expected_csv(&input, "60"));
    assert_eq!(table_csv(&pg.url()), table, "the first pipeline's rows changed");
}

/// Issue 10, item 2: two processes of one pipeline (a rolling deploy) interleaved their commits.
/// The second waits for the first, then resumes from what it committed.
#[test]
fn a_second_writer_of_a_pipeline_waits_for_the_first() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000_000);
    let reader = Reader::start(pg.url());
    let mut first =
        replay_into(&input, &pg.url(), LONG_LATENESS).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until_counted(&pg.url(), "SELECT count(*) FROM pipeline_checkpoints");
    let mut second = replay_into(&input, &pg.url(), LONG_LATENESS)
        .env("STREAMFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait(&mut first, Duration::from_secs(120)).success());
    assert!(wait(&mut second, Duration::from_secs(120)).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(second.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("Another process writes this pipeline; waiting for it to stop."), "{stderr}");
    assert!(stderr.contains("Took over the pipeline."), "{stderr}");
    assert!(reader.finish() > 10);
    assert_eq!(query_i64(&pg.url(), "SELECT generation FROM pipeline_checkpoints"), 2);
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LONG_LATENESS));
    assert_eq!(dead_letters(&pg.url()), reported_dead_letters(&input, LONG_LATENESS));
}

/// Issue 10, item 2: a writer whose pipeline another process claimed meanwhile (its session was
/// lost, say) must stop rather than overwrite the newer writer's checkpoint.
#[test]
fn a_writer_that_was_taken_over_from_stops() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000_000);
    let mut writer =
        replay_into(&input, &pg.url(), LONG_LATENESS).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_until_counted(&pg.url(), "SELECT count(*) FROM source_offsets");
    // What another process's claim does.
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client.execute("UPDATE pipeline_checkpoints SET generation = generation + 1", &[]).unwrap();
    let status = wait(&mut writer, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(writer.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("is written by another process"), "{stderr}");
}

// ---- Kafka ------------------------------------------------------------------------------------

/// Creates `topic` with `partitions`.
fn create_topic(broker: &Tansu, topic: &str, partitions: i32) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        client.controller_client().unwrap().create_topic(topic, partitions, 1, 5_000).await.unwrap();
    });
}

/// Produces `records` (key, value) to `partition` of `topic` with a client of its own.
fn produce_to(broker: &Tansu, topic: &str, partition: i32, records: Vec<(Option<&str>, String)>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![broker.address()]).build().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let partition_client = loop {
            // A partition just added may take a moment to appear in the metadata.
            client.list_topics().await.unwrap();
            match client.partition_client(topic, partition, UnknownTopicHandling::Retry).await {
                Ok(found) => break found,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("waiting for partition {partition}: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no partition {partition} of {topic}: {error}"),
            }
        };
        let records = records
            .into_iter()
            .map(|(key, value)| Record {
                key: key.map(|k| k.as_bytes().to_vec()),
                value: Some(value.into_bytes()),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        partition_client.produce(records, Compression::NoCompression).await.unwrap();
    });
}

/// `count` chat messages on `stream`, one a second from `start` seconds after 18:00.
fn chats(stream: &str, start: u32, count: u32) -> Vec<(Option<&str>, String)> {
    (start..start + count)
        .map(|s| {
            let ts = streamflow_core::EventTime::from_secs(1_766_253_600 + i64::from(s));
            (None, format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"{stream}"}}"#))
        })
        .collect()
}

fn run_on(broker: &Tansu, topic: &str, url: &str) -> Command {
    let mut command = streamflow(&["run", "--brokers", &broker.address(), "--topic", topic, "--database-url", url]);
    command.args(["--commit-interval-ms", "100", "--metadata-refresh-seconds", "1"]);
    command
}

/// Waits until the offsets committed for `partition` reach `offset`.
fn wait_for_partition(url: &str, partition: i32, offset: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let committed = postgres::Client::connect(url, postgres::NoTls)
            .ok()
            .and_then(|mut c| {
                c.query_opt("SELECT next_offset FROM source_offsets WHERE partition = $1", &[&partition]).ok()
            })
            .flatten()
            .map(|row| row.get::<_, i64>(0));
        if committed == Some(offset) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partition {partition} committed {committed:?}, not {offset}, in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn events_of(url: &str, stream: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query_one("SELECT coalesce(sum(events), 0)::int8 FROM stream_metrics_minute WHERE stream_id = $1", &[&stream])
        .unwrap()
        .get(0)
}

/// Issue 10, item 1, through Kafka: the records that could stop the Postgres pipeline, produced
/// to a topic and read by `streamflow run`, end as the replay of the same file ends.
#[test]
fn no_record_can_make_a_commit_fail_through_kafka() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = poison_lines();
    let input = write_lines(dir.path(), "poison.jsonl", &lines);
    create_topic(&broker, "poison", 1);
    succeed(&mut streamflow(&[
        "produce",
        "--brokers",
        &broker.address(),
        "--topic",
        "poison",
        "--input",
        input.to_str().unwrap(),
    ]));
    let pipeline = Running::spawn(run_on(&broker, "poison", &pg.url()).args(["--start-offsets", "earliest"]));
    wait_for_partition(&pg.url(), 0, lines.len() as i64, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LATENESS));
    assert_eq!(dead_letters(&pg.url()), reported_dead_letters(&input, LATENESS));
}

/// Issue 10, item 4: partitions added to a topic while the pipeline ran were never read.
#[test]
fn partitions_added_while_running_are_read_from_their_start() {
    let mut broker = Tansu::start(Storage::Sqlite).unwrap();
    let pg = Postgres::start().unwrap();
    create_topic(&broker, "grow", 2);
    produce_to(&broker, "grow", 0, chats("s0", 0, 100));
    produce_to(&broker, "grow", 1, chats("s1", 0, 100));
    let pipeline = Running::spawn(run_on(&broker, "grow", &pg.url()).args(["--start-offsets", "earliest"]));
    wait_for_partition(&pg.url(), 1, 100, Duration::from_secs(60));
    broker.add_partitions("grow", 3).unwrap();
    produce_to(&broker, "grow", 2, chats("s2", 50, 40));
    wait_for_partition(&pg.url(), 2, 40, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!((events_of(&pg.url(), "s0"), events_of(&pg.url(), "s1"), events_of(&pg.url(), "s2")), (100, 100, 40));
}

/// Issue 10, item 4: after a restart, a partition the checkpoint did not know started at the
/// end of its log (`latest`), and its backlog was lost.
#[test]
fn a_partition_new_since_the_last_run_starts_at_its_earliest_offset() {
    let mut broker = Tansu::start(Storage::Sqlite).unwrap();
    let pg = Postgres::start().unwrap();
    create_topic(&broker, "later", 2);
    produce_to(&broker, "later", 0, chats("s0", 0, 10));
    produce_to(&broker, "later", 1, chats("s1", 0, 10));
    // The first run starts at the end: only what comes next counts.
    let pipeline = Running::spawn(run_on(&broker, "later", &pg.url()).args(["--start-offsets", "latest"]));
    wait_for_partition(&pg.url(), 1, 10, Duration::from_secs(60));
    produce_to(&broker, "later", 0, chats("s0", 10, 5));
    wait_for_partition(&pg.url(), 0, 15, Duration::from_secs(60));
    pipeline.terminate();
    broker.add_partitions("later", 3).unwrap();
    produce_to(&broker, "later", 2, chats("s2", 20, 7));
    let pipeline = Running::spawn(run_on(&broker, "later", &pg.url()).args(["--start-offsets", "latest"]));
    wait_for_partition(&pg.url(), 2, 7, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!((events_of(&pg.url(), "s0"), events_of(&pg.url(), "s1"), events_of(&pg.url(), "s2")), (5, 0, 7));
}

/// Issue 10, item 5: the record key was ignored; spec §1 makes it the `stream_id` when the
/// value has none.
#[test]
fn the_record_key_stands_in_for_a_missing_stream_id() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    create_topic(&broker, "keyed", 1);
    let event = |stream: &str| {
        let stream = if stream.is_empty() { String::new() } else { format!(r#","stream_id":"{stream}""#) };
        format!(r#"{{"ts":"2025-12-20T18:00:10Z","event_type":"chat_message"{stream}}}"#)
    };
    produce_to(
        &broker,
        "keyed",
        0,
        vec![(Some("from_key"), event("")), (Some("ignored_key"), event("in_value")), (None, event(""))],
    );
    let pipeline = Running::spawn(run_on(&broker, "keyed", &pg.url()).args(["--start-offsets", "earliest"]));
    wait_for_partition(&pg.url(), 0, 3, Duration::from_secs(60));
    pipeline.terminate();
    assert_eq!((events_of(&pg.url(), "from_key"), events_of(&pg.url(), "in_value")), (1, 1));
    assert_eq!(events_of(&pg.url(), "ignored_key"), 0);
    assert_eq!(dead_letters(&pg.url()).get("missing_stream_id"), Some(&1));
}

/// Produces with confluent-kafka's transactional producer: a transaction left open, which
/// tansu aborts with a marker when the same transactional id starts again (tansu 0.6 serves no
/// EndTxn, so a producer can neither commit nor abort itself).
const TRANSACTION: &str = r#"
import sys
from confluent_kafka import Producer
conf = {"bootstrap.servers": sys.argv[1], "transactional.id": "streamflow-test"}
producer = Producer(conf)
producer.init_transactions(10)
producer.begin_transaction()
for i in range(5):
    producer.produce(sys.argv[2], key=b"s_aborted", partition=0,
        value=b'{"ts":"2025-12-20T18:00:20Z","event_type":"chat_message","stream_id":"s_aborted"}')
producer.flush(10)
Producer(conf).init_transactions(10)
"#;

/// Issue 10, item 7: at a transaction marker the fetcher looped without sleeping and the
/// partition never went idle, holding the watermark back for ever (with rskafka, a fetch holding
/// a marker could not be read at all). Markers take offsets and are passed over.
#[test]
fn transaction_markers_are_passed_and_the_partition_goes_idle() {
    use streamflow_core::kafka::records::{write_batch, BatchKind, Compression as Codec, Produced};
    use streamflow_core::kafka::{ClientConfig, KafkaClient, PartitionProducer};
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    create_topic(&broker, "txn", 2);
    produce_to(&broker, "txn", 0, chats("s0", 0, 20));
    produce_to(&broker, "txn", 1, chats("s1", 0, 20));
    streamflow_testkit::run_python(TRANSACTION, &[&broker.address(), "txn"]).unwrap();
    // Records, then a commit marker, written as a broker appends one (tansu takes a control
    // batch from a client; it checks transactional producer ids, so this one has none).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = KafkaClient::connect(ClientConfig::new(vec![broker.address()])).await.unwrap();
        let mut producer = PartitionProducer::new(client, "txn", 0);
        let records: Vec<Produced> = chats("s_committed", 30, 3)
            .into_iter()
            .map(|(_, value)| Produced { key: None, value: value.into_bytes(), timestamp_ms: 0 })
            .collect();
        let data = write_batch(&records, Codec::None, BatchKind::default()).unwrap();
        producer.produce_batch(data.into(), 1).await.unwrap();
        let marker = write_batch(&[], Codec::None, BatchKind { marker: Some(true), ..BatchKind::default() }).unwrap();
        producer.produce_batch(marker.into(), 1).await.unwrap();
    });
    // 20 records, 5 of the aborted transaction, its marker, 3 committed ones and their marker.
    let end = 20 + 5 + 1 + 3 + 1;
    let http = free_port();
    let mut command = run_on(&broker, "txn", &pg.url());
    command.args([
        "--start-offsets",
        "earliest",
        "--idle-timeout-seconds",
        "1",
        "--http-addr",
        &format!("127.0.0.1:{http}"),
    ]);
    let pipeline = Running::spawn(&mut command);
    wait_for_partition(&pg.url(), 0, end, Duration::from_secs(60));
    assert_eq!(events_of(&pg.url(), "s_committed"), 3);
    // Caught up at its end, after a marker, the partition goes idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, figures) = http_get(http, "/prometheus");
        if figures
            .lines()
            .any(|l| l.starts_with("streamflow_partition_idle{") && l.contains("partition=\"0\"") && l.ends_with(" 1"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "partition 0 never went idle:\n{figures}");
        std::thread::sleep(Duration::from_millis(200));
    }
    pipeline.terminate();
}

/// Issue 10, item 11: with the database down, a stop waits for the commit; a second SIGTERM
/// did nothing, and only SIGKILL stopped the process.
#[test]
fn a_second_signal_stops_at_once() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    let pg = Postgres::start().unwrap();
    create_topic(&broker, "signals", 1);
    produce_to(&broker, "signals", 0, chats("s0", 0, 50));
    let mut pipeline = Running::spawn(run_on(&broker, "signals", &pg.url()).args(["--start-offsets", "earliest"]));
    wait_for_partition(&pg.url(), 0, 50, Duration::from_secs(60));
    pg.stop().unwrap();
    produce_to(&broker, "signals", 0, chats("s0", 50, 50));
    std::thread::sleep(Duration::from_millis(500));
    let pid = pipeline.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(pipeline.0.try_wait().unwrap().is_none(), "the first signal must wait for the commit");
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait(&mut pipeline.0, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
}
