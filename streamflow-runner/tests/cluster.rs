//! Timely's cluster mode with real processes of the `streamflow` binary on loopback: two
//! processes of one worker compute what one process of two workers computes, byte for byte; a
//! process killed or stopped makes the other stop within seconds, naming it; restarting both
//! resumes exactly.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use streamflow_testkit::{free_port, Postgres, Storage, Tansu};

const TOPIC: &str = "stream.events";

/// The flags of process `process` of two on `ports`, one worker each.
fn cluster(process: usize, ports: [u16; 2]) -> Vec<String> {
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    ["--workers", "1", "--processes", "2", "--process", &process.to_string(), "--hosts", &hosts]
        .map(String::from)
        .to_vec()
}

fn ports() -> [u16; 2] {
    [free_port(), free_port()]
}

/// Starts `command` with its standard error kept.
fn start(command: &mut Command) -> Running {
    Running(command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("streamflow starts"))
}

/// Waits for `process` to end within `timeout`: its status, its standard error and how long it
/// took.
fn ended(process: &mut Running, timeout: Duration) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    let status = wait(&mut process.0, timeout);
    let mut stderr = String::new();
    std::io::Read::read_to_string(process.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr, started.elapsed())
}

#[test]
fn a_replay_over_two_processes_is_byte_identical_to_one_process_of_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 60_000);
    let path = input.to_str().unwrap();
    let alone = succeed(&mut streamflow(&["replay", "--input", path, "--workers", "2"])).stdout;

    let ports = ports();
    let spawn = |process: usize| {
        streamflow(&["replay", "--input", path])
            .args(cluster(process, ports))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (zero, one) = (spawn(0), spawn(1));
    let (zero, one) = (zero.wait_with_output().unwrap(), one.wait_with_output().unwrap());
    assert!(zero.status.success(), "{}", String::from_utf8_lossy(&zero.stderr));
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert!(zero.stdout == alone, "the cluster's CSV differs from one process's");
    assert!(one.stdout.is_empty(), "process 1 wrote to standard output");
    assert!(String::from_utf8_lossy(&alone).lines().count() > 100);
}

#[test]
fn processes_with_other_settings_refuse_to_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000);
    let path = input.to_str().unwrap();
    let ports = ports();
    let spawn = |process: usize, window: &str| {
        start(streamflow(&["replay", "--input", path, "--window-seconds", window]).args(cluster(process, ports)))
    };
    for mut process in [spawn(0, "60"), spawn(1, "300")] {
        let (status, stderr, _) = ended(&mut process, Duration::from_secs(30));
        assert!(!status.success());
        assert!(stderr.contains(r#"window size (s) (this process: "#), "{stderr}");
    }
}

#[test]
fn connecting_has_a_deadline() {
    let ports = ports();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000);
    let mut command = streamflow(&["replay", "--input", input.to_str().unwrap()]);
    let mut alone = start(command.args(cluster(1, ports)).args(["--connect-timeout-seconds", "2"]));
    let (status, stderr, took) = ended(&mut alone, Duration::from_secs(20));
    assert!(!status.success());
    assert!(stderr.contains("cannot reach process 0"), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// The seeded events of the Kafka tests, into a topic of four partitions, `rate` a second (0:
/// at once).
fn produce(broker: &Tansu, count: u64, rate: u32) -> Command {
    let mut command = streamflow(&["generate", "--brokers", &broker.address(), "--topic", TOPIC]);
    command.args(["--count", &count.to_string(), "--partitions", "4", "--streams", "6", "--seed", "11"]);
    command.args(["--start", "2025-12-20T18:00:00Z", "--event-rate", "20", "--rate", &rate.to_string()]);
    command.args(["--late-ratio", "0.01", "--bad-ratio", "0.01"]);
    command
}

fn run(broker: &Tansu, url: &str) -> Command {
    let mut command = streamflow(&["run", "--brokers", &broker.address(), "--topic", TOPIC, "--database-url", url]);
    command.args(["--commit-interval-ms", "100", "--idle-timeout-seconds", "0", "--start-offsets", "earliest"]);
    command
}

fn committed(url: &str) -> i64 {
    let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) else { return 0 };
    client
        .query_one("SELECT coalesce(sum(next_offset), 0)::int8 FROM source_offsets", &[])
        .map(|row| row.get(0))
        .unwrap_or(0)
}

fn wait_for_offsets(url: &str, count: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while committed(url) != count as i64 {
        assert!(Instant::now() < deadline, "only {} of {count} records committed after {timeout:?}", committed(url));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every table the pipeline writes, each row as text, without the times rows were written at
/// and the generation of the writer.
fn tables(url: &str) -> Vec<(String, Vec<String>)> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let names = [
        "stream_metrics_minute",
        "stream_state",
        "source_offsets",
        "dead_letters",
        "pipeline_checkpoints",
        "stream_checkpoints",
    ];
    names
        .iter()
        .map(|table| {
            let columns: Vec<String> = client
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                     WHERE table_schema = 'public' AND table_name = $1
                       AND column_name NOT LIKE '%\\_at' AND column_name NOT IN ('id', 'generation')
                     ORDER BY ordinal_position",
                    &[table],
                )
                .unwrap()
                .iter()
                .map(|row| format!("\"{}\"", row.get::<_, String>(0)))
                .collect();
            assert!(!columns.is_empty(), "no table {table}");
            let rows = client
                .query(&format!("SELECT ROW({})::text FROM {table} ORDER BY 1", columns.join(", ")), &[])
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            (table.to_string(), rows)
        })
        .collect()
}

fn assert_same_tables(got: &str, expected: &str) {
    for ((table, got), (_, expected)) in tables(got).into_iter().zip(tables(expected)) {
        assert!(!expected.is_empty() || table == "stream_checkpoints", "{table} is empty");
        assert_same_rows(&got.join("\n"), &expected.join("\n"));
    }
}

#[test]
fn a_run_over_two_processes_survives_kill_9_and_writes_the_tables_of_one_process() {
    const EVENTS: u64 = 120_000;
    let broker = Tansu::start(Storage::Memory).unwrap();
    let ports = ports();
    let spawn = |pg: &Postgres, process: usize| start(run(&broker, &pg.url()).args(cluster(process, ports)));

    // While the events arrive, kill -9 either process of two: the other stops, naming it, and
    // both started again go on.
    let mut generator = Running::spawn(&mut produce(&broker, EVENTS, 15_000));
    let pg = Postgres::start().unwrap();
    for (victim, progress) in [(1usize, 15_000), (0, 50_000)] {
        let mut processes = [spawn(&pg, 0), spawn(&pg, 1)];
        let started = Instant::now();
        while committed(&pg.url()) < progress {
            assert!(started.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
        processes[victim].0.kill().unwrap();
        let (status, stderr, took) = ended(&mut processes[1 - victim], Duration::from_secs(30));
        assert!(!status.success(), "the survivor exited cleanly: {stderr}");
        assert!(stderr.contains(&format!("lost process {victim}")), "{stderr}");
        assert!(took < Duration::from_secs(10), "the survivor took {took:?} to stop");
    }
    assert!(wait(&mut generator.0, Duration::from_secs(120)).success());
    let (zero, one) = (spawn(&pg, 0), spawn(&pg, 1));
    wait_for_offsets(&pg.url(), EVENTS, Duration::from_secs(120));
    one.terminate(); // a stop asked of either process stops both, everything committed
    let mut zero = zero;
    let (status, stderr, _) = ended(&mut zero, Duration::from_secs(30));
    assert!(status.success(), "{stderr}");

    // One process of two workers over the same topic: the same tables.
    let reference = Postgres::start().unwrap();
    let alone = Running::spawn(run(&broker, &reference.url()).args(["--workers", "2"]));
    wait_for_offsets(&reference.url(), EVENTS, Duration::from_secs(120));
    alone.terminate();
    assert_same_tables(&pg.url(), &reference.url());

    // And two processes run without a failure too.
    let clean = Postgres::start().unwrap();
    let (zero, one) = (spawn(&clean, 0), spawn(&clean, 1));
    wait_for_offsets(&clean.url(), EVENTS, Duration::from_secs(120));
    zero.terminate();
    drop(one);
    assert_same_tables(&clean.url(), &reference.url());
}

#[test]
fn a_silent_process_is_lost_after_the_peer_timeout() {
    let broker = Tansu::start(Storage::Memory).unwrap();
    succeed(&mut produce(&broker, 2_000, 0));
    let pg = Postgres::start().unwrap();
    let ports = ports();
    let spawn = |process: usize| {
        start(run(&broker, &pg.url()).args(cluster(process, ports)).args(["--peer-timeout-seconds", "3"]))
    };
    let (mut zero, one) = (spawn(0), spawn(1));
    wait_for_offsets(&pg.url(), 2_000, Duration::from_secs(60));
    let pid = one.0.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let (status, stderr, took) = ended(&mut zero, Duration::from_secs(30));
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    drop(one);
    assert!(!status.success());
    assert!(stderr.contains("lost process 1") && stderr.contains("sent nothing"), "{stderr}");
    assert!(took < Duration::from_secs(8), "detected after {took:?}");
}
