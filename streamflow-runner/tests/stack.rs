//! The local stack of `scripts/`: up, smoke, down, up again (resuming without loss: every record
//! of the topic counted exactly once), and reset wiping the state.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use streamflow_testkit::free_port;

struct Stack {
    state: tempfile::TempDir,
    pg: u16,
    kafka: u16,
    http: u16,
}

impl Stack {
    fn script(&self, name: &str) -> Command {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut command = Command::new(root.join("scripts").join(name));
        command
            .env("STREAMFLOW_STATE", self.state.path().join("state"))
            .env("STREAMFLOW_PG_PORT", self.pg.to_string())
            .env("STREAMFLOW_KAFKA_PORT", self.kafka.to_string())
            .env("STREAMFLOW_HTTP_PORT", self.http.to_string())
            .env("STREAMFLOW_GENERATOR_RATE", "200")
            .env("STREAMFLOW_BIN", binary());
        command
    }

    fn run(&self, name: &str) -> String {
        let output = self.script(name).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "scripts/{name} failed:\n{text}");
        text
    }

    fn url(&self) -> String {
        format!("postgres://rt:rt@127.0.0.1:{}/realtime", self.pg)
    }

    fn query(&self, sql: &str) -> i64 {
        let mut client = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        client.query_one(sql, &[]).unwrap().get(0)
    }

    /// The sum of the partitions' ends of log.
    fn end_of_log(&self) -> i64 {
        let brokers = format!("127.0.0.1:{}", self.kafka);
        let output = succeed(&mut streamflow(&["offsets", "--brokers", &brokers]));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| line.split('\t').nth(1).unwrap().parse::<i64>().unwrap())
            .sum()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.script("down.sh").output();
    }
}

#[test]
fn up_smoke_down_up_again_without_loss_and_reset() {
    let stack = Stack { state: tempfile::tempdir().unwrap(), pg: free_port(), kafka: free_port(), http: free_port() };
    stack.run("up.sh");
    std::thread::sleep(Duration::from_secs(2));
    stack.run("smoke.sh");
    stack.run("doctor.sh");
    let committed = stack.query("SELECT sum(next_offset)::int8 FROM source_offsets");
    let rows = stack.query("SELECT count(*) FROM stream_metrics_minute");
    stack.run("down.sh");
    let state = stack.state.path().join("state");
    for part in ["pipeline", "generator", "kafka"] {
        assert!(!state.join(format!("{part}.pid")).exists(), "{part} still has a pid file");
    }

    // Up again: the pipeline resumes from what it committed.
    stack.run("up.sh");
    std::thread::sleep(Duration::from_secs(2));
    stack.run("smoke.sh");
    assert!(stack.query("SELECT sum(next_offset)::int8 FROM source_offsets") > committed);
    assert!(stack.query("SELECT count(*) FROM stream_metrics_minute") >= rows);

    // With the generator stopped, every record of the log is counted exactly once.
    let generator = std::fs::read_to_string(state.join("generator.pid")).unwrap();
    assert!(Command::new("kill").arg(generator.trim()).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    let end = stack.end_of_log();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.query("SELECT sum(next_offset)::int8 FROM source_offsets") < end {
        assert!(Instant::now() < deadline, "the pipeline did not catch up with the log");
        std::thread::sleep(Duration::from_millis(100));
    }
    let counted = stack.query("SELECT (SELECT coalesce(sum(events), 0) FROM stream_metrics_minute)::int8")
        + stack.query("SELECT count(*) FROM dead_letters");
    assert_eq!(counted, end, "records in the log and records counted differ");

    stack.run("reset.sh");
    assert!(!state.exists(), "reset left {}", state.display());
}
