//! The yardstick of `scripts/bench-compare.sh`: what one thread of a hand-written program does
//! with a JSON-lines file of the seed's events — serde_json with borrowed strings, one
//! `HashMap` entry per (window, stream) — computing the rows `streamflow replay` computes for
//! a file without late or malformed events, written as the same CSV.
//!
//!   cargo bench --bench hand_loop -- FILE > rows.csv     (events/s on standard error)

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use serde::Deserialize;

#[derive(Deserialize)]
struct Event<'a> {
    ts: &'a str,
    event_type: &'a str,
    stream_id: &'a str,
    #[serde(default)]
    user_id: Option<&'a str>,
    #[serde(default)]
    amount_usd: Option<f64>,
}

#[derive(Default)]
struct Window {
    events: u64,
    chats: u64,
    donations: u64,
    cents: i64,
    joins: u64,
    leaves: u64,
    users: HashSet<String>,
}

const WINDOW_MICROS: i64 = 60_000_000;

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("hand_loop: give the events file (cargo bench --bench hand_loop -- FILE)");
        return;
    };
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&path).expect("the events file"));
    let mut windows: HashMap<(i64, String), Window> = HashMap::new();
    let mut line = String::new();
    let mut read = 0u64;
    while reader.read_line(&mut line).expect("readable") > 0 {
        read += 1;
        let event: Event = serde_json::from_str(line.trim_end()).expect("a valid event");
        let ts = chrono::DateTime::parse_from_rfc3339(event.ts).expect("an RFC 3339 ts").timestamp_micros();
        let window = ts.div_euclid(WINDOW_MICROS) * WINDOW_MICROS;
        let key = (window, event.stream_id);
        // Borrowed lookups first: a key is allocated once per (window, stream).
        let entry = match windows.get_mut(&key as &dyn Key) {
            Some(entry) => entry,
            None => windows.entry((window, event.stream_id.to_owned())).or_default(),
        };
        entry.events += 1;
        match event.event_type {
            "chat_message" => entry.chats += 1,
            "donation" => {
                entry.donations += 1;
                entry.cents += (event.amount_usd.unwrap_or(0.0) * 100.0).round() as i64;
            }
            "viewer_join" => entry.joins += 1,
            "viewer_leave" => entry.leaves += 1,
            _ => {}
        }
        if let Some(user) = event.user_id {
            if !entry.users.contains(user) {
                entry.users.insert(user.to_owned());
            }
        }
        line.clear();
    }
    let mut rows: Vec<((i64, String), Window)> = windows.into_iter().collect();
    rows.sort_by(|a, b| (&a.0 .1, a.0 .0).cmp(&(&b.0 .1, b.0 .0)));
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "window_start,window_end,stream_id,events,chat_messages,donations_count,donations_usd,viewer_joins,viewer_leaves,net_viewer_delta,unique_viewers,active_viewers").unwrap();
    let mut audience: HashMap<String, i64> = HashMap::new();
    let time = |micros: i64| chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
    for ((window, stream), w) in &rows {
        let net = w.joins as i64 - w.leaves as i64;
        let running = audience.entry(stream.clone()).or_default();
        *running += net;
        writeln!(
            out,
            "{},{},{stream},{},{},{},{}.{:02},{},{},{net},{},{}",
            time(*window),
            time(window + WINDOW_MICROS),
            w.events,
            w.chats,
            w.donations,
            w.cents / 100,
            w.cents % 100,
            w.joins,
            w.leaves,
            w.users.len(),
            (*running).max(0)
        )
        .unwrap();
    }
    out.flush().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("hand_loop: {read} events in {seconds:.2} s: {:.0} events/s", read as f64 / seconds);
}

/// A `(window, stream)` key looked up without allocating its `String`.
trait Key {
    fn key(&self) -> (i64, &str);
}

impl Key for (i64, String) {
    fn key(&self) -> (i64, &str) {
        (self.0, &self.1)
    }
}

impl Key for (i64, &str) {
    fn key(&self) -> (i64, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn Key + 'a> for (i64, String) {
    fn borrow(&self) -> &(dyn Key + 'a) {
        self
    }
}

impl PartialEq for dyn Key + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn Key + '_ {}

impl std::hash::Hash for dyn Key + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
