//! What the end-to-end tests share: the `streamflow` binary, seeded event files, and the tables
//! read back in the CSV format of `streamflow replay`.
#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const STREAMFLOW: &str = env!("CARGO_BIN_EXE_streamflow");

/// The `streamflow` binary to test: this build's, or the one `STREAMFLOW_TEST_BIN` names (an
/// older build, to see a regression test fail where the defect was).
pub fn binary() -> String {
    std::env::var("STREAMFLOW_TEST_BIN").unwrap_or_else(|_| STREAMFLOW.to_owned())
}

pub fn streamflow(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args).env("STREAMFLOW_LOG", "warn");
    command
}

pub fn succeed(command: &mut Command) -> Output {
    let output = command.output().expect("streamflow runs");
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A seeded file of `count` events with late and malformed ones among them.
pub fn events_file(dir: &Path, count: u64) -> PathBuf {
    let path = dir.join(format!("events-{count}.jsonl"));
    succeed(streamflow(&["generate", "--output", path.to_str().unwrap(), "--count", &count.to_string()]).args([
        "--streams",
        "5",
        "--late-ratio",
        "0.01",
        "--bad-ratio",
        "0.01",
        "--seed",
        "7",
    ]));
    path
}

/// The default lateness, and a long one: three hours of event time (216,000 events of the
/// generator) that a restart must read again to rebuild the open windows, over many epochs.
pub const LATENESS: &str = "600";
pub const LONG_LATENESS: &str = "10800";

/// The CSV of a replay in memory: the expected table.
pub fn expected_csv(input: &Path, lateness: &str) -> String {
    let args = ["replay", "--input", input.to_str().unwrap(), "--lateness-seconds", lateness];
    String::from_utf8(succeed(&mut streamflow(&args)).stdout).unwrap()
}

pub fn replay_into(input: &Path, url: &str, lateness: &str) -> Command {
    let mut command = streamflow(&["replay", "--input", input.to_str().unwrap(), "--database-url", url]);
    command.args(["--commit-interval-ms", "50", "--lateness-seconds", lateness]);
    command
}

/// `stream_metrics_minute` in the CSV format of `streamflow replay`.
pub fn table_csv(url: &str) -> String {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut csv = String::from(
        "window_start,window_end,stream_id,events,chat_messages,donations_count,donations_usd,\
         viewer_joins,viewer_leaves,net_viewer_delta,unique_viewers,active_viewers\n",
    );
    let rows = client
        .query(
            "SELECT window_start, window_end, stream_id, events, chat_messages, donations_count,
                    donations_usd::text, viewer_joins, viewer_leaves, net_viewer_delta, unique_viewers, active_viewers
             FROM stream_metrics_minute ORDER BY window_start, stream_id",
            &[],
        )
        .unwrap();
    for row in rows {
        let time = |i: usize| rfc3339(row.get::<_, SystemTime>(i));
        let int = |i: usize| row.get::<_, i64>(i).to_string();
        let fields = [
            time(0),
            time(1),
            row.get::<_, String>(2),
            int(3),
            int(4),
            int(5),
            row.get::<_, String>(6),
            int(7),
            int(8),
            int(9),
            int(10),
            int(11),
        ];
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    csv
}

pub fn rfc3339(time: SystemTime) -> String {
    let micros = time.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    streamflow_core::EventTime(micros).to_string()
}

/// Dead letters by reason, in the table.
pub fn dead_letters(url: &str) -> HashMap<String, i64> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query("SELECT reason, count(*) FROM dead_letters GROUP BY reason", &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Dead letters by reason, as a replay in memory reports them on stderr.
pub fn reported_dead_letters(input: &Path, lateness: &str) -> HashMap<String, i64> {
    let args = ["replay", "--input", input.to_str().unwrap(), "--lateness-seconds", lateness];
    let output = succeed(&mut streamflow(&args));
    String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("dead letters\t"))
        .map(|rest| {
            let (reason, count) = rest.split_once('\t').unwrap();
            (reason.to_owned(), count.parse().unwrap())
        })
        .collect()
}

/// Watches the table while a run goes on: no row's `events` may ever go down.
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Reader {
    pub fn start(url: String) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen: HashMap<(SystemTime, String), i64> = HashMap::new();
            let mut polls = 0;
            while !stopping.load(Ordering::Relaxed) {
                let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                while !stopping.load(Ordering::Relaxed) {
                    let Ok(rows) =
                        client.query("SELECT window_start, stream_id, events FROM stream_metrics_minute", &[])
                    else {
                        break;
                    };
                    for row in rows {
                        let key = (row.get(0), row.get(1));
                        let events: i64 = row.get(2);
                        let before = seen.insert(key.clone(), events).unwrap_or(0);
                        assert!(events >= before, "events of {key:?} went down from {before} to {events}");
                    }
                    polls += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            polls
        });
        Reader { stop, thread }
    }

    pub fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the reader saw no counter go down")
    }
}

pub fn wait(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the replay did not finish in {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts two CSV tables are equal, reporting the rows that differ rather than both tables.
pub fn assert_same_rows(got: &str, expected: &str) {
    if got == expected {
        return;
    }
    let got_rows: std::collections::BTreeSet<&str> = got.lines().collect();
    let expected_rows: std::collections::BTreeSet<&str> = expected.lines().collect();
    let missing: Vec<&&str> = expected_rows.difference(&got_rows).take(10).collect();
    let extra: Vec<&&str> = got_rows.difference(&expected_rows).take(10).collect();
    panic!(
        "the tables differ ({} rows against {} expected)\nexpected, not found:\n{}\nfound, not expected:\n{}",
        got_rows.len(),
        expected_rows.len(),
        missing.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"),
        extra.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"),
    );
}

/// A child process killed when dropped, so that a failing test leaves nothing running.
pub struct Running(pub Child);

impl Running {
    pub fn spawn(command: &mut Command) -> Running {
        Running(command.stdout(Stdio::null()).spawn().expect("streamflow starts"))
    }

    /// SIGTERM, and waits: the run must stop cleanly.
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait(&mut self.0, Duration::from_secs(60));
        assert!(status.success(), "streamflow run did not stop cleanly: {status}");
    }

    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The series docs/metrics.md describes, with their types: the first two cells of each table
/// row that names a `streamflow_` or `process_` series.
pub fn documented_series() -> std::collections::BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.get(2)?;
            (name.starts_with("streamflow_") || name.starts_with("process_"))
                .then(|| (name.to_owned(), kind.to_string()))
        })
        .collect()
}
