//! The window, lateness and audience rules of spec §2 and §3, one case at a time, through the
//! whole pipeline.

use streamflow_core::{
    EpochBatch, EventTime, GeneratorConfig, GeneratorSource, MemorySink, MemorySource, Pipeline, PipelineConfig,
    Reason, Row, RowChange, Sink, SinkError, WindowConfig,
};

fn at(text: &str) -> EventTime {
    EventTime::parse_rfc3339(text).unwrap()
}

fn event(ts: &str, kind: &str, stream: &str, user: Option<&str>) -> String {
    let user = user.map(|u| format!(r#","user_id":"{u}""#)).unwrap_or_default();
    format!(r#"{{"ts":"{ts}","event_type":"{kind}","stream_id":"{stream}"{user}}}"#)
}

/// Runs `lines` as partition 0 and returns the table.
fn run(lines: &[String], window: WindowConfig) -> streamflow_core::Table {
    let records: Vec<(u32, Vec<u8>)> = lines.iter().map(|l| (0, l.clone().into_bytes())).collect();
    let sink = MemorySink::new();
    let table = sink.table();
    let config = PipelineConfig { window, ..PipelineConfig::default() };
    Pipeline::new(config)
        .run(move |ctx| Ok(Box::new(MemorySource::new(records.clone(), ctx.worker, ctx.peers))), sink)
        .unwrap();
    table
}

fn row<'a>(rows: &'a [Row], window: &str, stream: &str) -> &'a Row {
    rows.iter().find(|r| r.window_start == at(window) && r.stream_id == stream).unwrap_or_else(|| {
        panic!("no row for {window} {stream} in {rows:#?}");
    })
}

#[test]
fn an_event_exactly_at_window_end_opens_the_next_window() {
    let lines = [
        event("2025-12-20T18:34:00Z", "chat_message", "s", None),
        event("2025-12-20T18:34:59.999999Z", "chat_message", "s", None),
        event("2025-12-20T18:35:00Z", "chat_message", "s", None),
    ];
    let rows = run(&lines, WindowConfig::default()).rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].window_start, rows[0].window_end, rows[0].events),
        (at("2025-12-20T18:34:00Z"), at("2025-12-20T18:35:00Z"), 2)
    );
    assert_eq!((rows[1].window_start, rows[1].events), (at("2025-12-20T18:35:00Z"), 1));
}

#[test]
fn time_zone_offsets_are_windowed_in_utc() {
    let lines = [
        event("2025-12-20T20:04:59.5+05:30", "chat_message", "s", None), // 14:34:59.5Z
        event("2025-12-20T09:34:10-05:00", "chat_message", "s", None),   // 14:34:10Z
        event("2025-12-20T14:35:00+00:00", "chat_message", "s", None),
    ];
    let rows = run(&lines, WindowConfig::default()).rows();
    assert_eq!(row(&rows, "2025-12-20T14:34:00Z", "s").events, 2);
    assert_eq!(row(&rows, "2025-12-20T14:35:00Z", "s").events, 1);
}

#[test]
fn lateness_at_the_boundary() {
    // 60 s windows, 600 s lateness: after 18:20:00 the watermark is 18:10:00.
    let lines = [
        event("2025-12-20T18:20:00Z", "chat_message", "s", None),
        event("2025-12-20T18:09:59.999999Z", "chat_message", "s", None), // [18:09, 18:10) ends at the watermark: late
        event("2025-12-20T18:10:00Z", "chat_message", "s", None),        // [18:10, 18:11) is still open
    ];
    let table = run(&lines, WindowConfig::default());
    let rows = table.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(row(&rows, "2025-12-20T18:10:00Z", "s").events, 1);
    let state = table.read();
    let late: Vec<_> = state.recent_dead_letters.iter().collect();
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].reason, late[0].partition, late[0].offset), (Reason::Late, 0, 1));
    assert_eq!(late[0].payload, lines[1].as_bytes());
}

#[test]
fn a_late_join_updates_every_later_open_window() {
    let lines = [
        event("2025-12-20T18:00:05Z", "viewer_join", "s", Some("u1")),
        event("2025-12-20T18:01:05Z", "chat_message", "s", Some("u1")),
        event("2025-12-20T18:02:05Z", "chat_message", "s", Some("u1")),
        // Late, but within the lateness: it joined before the chats.
        event("2025-12-20T18:00:30Z", "viewer_join", "s", Some("u2")),
        event("2025-12-20T18:01:40Z", "viewer_leave", "s", Some("u1")),
        // Beyond the lateness: refused, changes nothing.
        event("2025-12-20T17:40:00Z", "viewer_join", "s", Some("u3")),
    ];
    let table = run(&lines, WindowConfig::new(60, 300).unwrap());
    let rows = table.rows();
    let active = |w: &str| row(&rows, w, "s").active_viewers;
    assert_eq!(active("2025-12-20T18:00:00Z"), 2);
    assert_eq!(active("2025-12-20T18:01:00Z"), 1);
    assert_eq!(active("2025-12-20T18:02:00Z"), 1);
    let first = row(&rows, "2025-12-20T18:00:00Z", "s");
    assert_eq!((first.viewer_joins, first.net_viewer_delta, first.unique_viewers), (2, 2, 2));
    assert_eq!(row(&rows, "2025-12-20T18:01:00Z", "s").net_viewer_delta, -1);
    assert_eq!(table.dead_letter_counts().get(&Reason::Late), Some(&1));
}

#[test]
fn the_audience_does_not_go_below_zero() {
    let lines = [
        event("2025-12-20T18:00:05Z", "viewer_leave", "s", Some("u1")),
        event("2025-12-20T18:01:05Z", "viewer_join", "s", Some("u1")),
        event("2025-12-20T18:02:05Z", "viewer_join", "s", Some("u2")),
    ];
    let rows = run(&lines, WindowConfig::default()).rows();
    assert_eq!(row(&rows, "2025-12-20T18:00:00Z", "s").active_viewers, 0);
    assert_eq!(row(&rows, "2025-12-20T18:00:00Z", "s").net_viewer_delta, -1);
    // The running sum is -1 + 1 = 0, then 1: clamping shows at each window, not in the sum.
    assert_eq!(row(&rows, "2025-12-20T18:01:00Z", "s").active_viewers, 0);
    assert_eq!(row(&rows, "2025-12-20T18:02:00Z", "s").active_viewers, 1);
}

#[test]
fn unique_viewers_count_distinct_users_per_window_and_stream() {
    let lines = [
        event("2025-12-20T18:00:01Z", "chat_message", "a", Some("u1")),
        event("2025-12-20T18:00:02Z", "chat_message", "a", Some("u1")),
        event("2025-12-20T18:00:03Z", "donation", "a", Some("u2")).replace('}', r#","amount_usd":1.005}"#),
        event("2025-12-20T18:00:04Z", "chat_message", "a", None),
        event("2025-12-20T18:00:05Z", "chat_message", "b", Some("u1")),
    ];
    let rows = run(&lines, WindowConfig::default()).rows();
    let a = row(&rows, "2025-12-20T18:00:00Z", "a");
    assert_eq!((a.events, a.unique_viewers, a.donations_count, a.donations_usd.to_string()), (4, 2, 1, "1.01".into()));
    assert_eq!(row(&rows, "2025-12-20T18:00:00Z", "b").unique_viewers, 1);
}

#[test]
fn every_refused_record_keeps_its_place_reason_and_bytes() {
    let lines: Vec<String> = vec![
        "not json".into(),
        r#"{"event_id":"e-2","ts":"2025-12-20T18:00:00Z","event_type":"raid","stream_id":"s"}"#.into(),
        event("2025-12-20T18:00:00Z", "chat_message", "s", None),
        r#"{"ts":"2025-12-20T18:00:00Z","event_type":"donation","stream_id":"s","amount_usd":-1}"#.into(),
    ];
    let table = run(&lines, WindowConfig::default());
    let state = table.read();
    let letters: Vec<_> = state.recent_dead_letters.iter().map(|l| (l.offset, l.reason, l.event_id.clone())).collect();
    assert_eq!(
        letters,
        vec![
            (0, Reason::NotJson, None),
            (1, Reason::UnknownEventType, Some("e-2".into())),
            (3, Reason::AmountOutOfRange, None)
        ]
    );
    for letter in &state.recent_dead_letters {
        assert_eq!(letter.payload, lines[letter.offset as usize].as_bytes());
    }
}

/// Records the changes a sink is given.
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<RowChange>>>);

impl Sink for Recorder {
    fn apply(&mut self, batch: EpochBatch) -> Result<(), SinkError> {
        self.0.lock().unwrap().extend(batch.rows);
        Ok(())
    }
}

#[test]
fn a_window_is_final_once_the_watermark_passes_its_end() {
    let lines = [
        event("2025-12-20T18:00:05Z", "chat_message", "s", None),
        event("2025-12-20T18:01:05Z", "chat_message", "s", None),
    ];
    let records: Vec<(u32, Vec<u8>)> = lines.iter().map(|l| (0, l.clone().into_bytes())).collect();
    let recorder = Recorder::default();
    let changes = recorder.0.clone();
    // One record per epoch, no lateness: the second event closes the first window.
    let config = PipelineConfig {
        window: WindowConfig::new(60, 0).unwrap(),
        reading: streamflow_core::ReadPolicy { max_records: 1, records_per_activation: 1, ..Default::default() },
        ..PipelineConfig::default()
    };
    Pipeline::new(config)
        .run(move |ctx| Ok(Box::new(MemorySource::new(records.clone(), ctx.worker, ctx.peers))), recorder)
        .unwrap();
    let changes = changes.lock().unwrap();
    let first: Vec<_> = changes.iter().filter(|c| c.row().window_start == at("2025-12-20T18:00:00Z")).collect();
    assert_eq!(first.len(), 2, "{changes:#?}");
    assert!(matches!(first[0], RowChange::Update(row) if row.events == 1));
    assert!(matches!(first[1], RowChange::Final(row) if row.events == 1));
    let second: Vec<_> = changes.iter().filter(|c| c.row().window_start == at("2025-12-20T18:01:00Z")).collect();
    assert!(second.iter().all(|c| !c.is_final()), "the last window stays open: {changes:#?}");
}

#[test]
fn any_number_of_workers_gives_the_same_table() {
    let generator = GeneratorConfig {
        events: Some(20_000),
        streams: 7,
        partitions: 4,
        event_rate: 5.0,
        late_ratio: 0.02,
        bad_ratio: 0.02,
        ..GeneratorConfig::default()
    };
    let tables: Vec<_> = (1..=3)
        .map(|workers| {
            let generator = generator.clone();
            let sink = MemorySink::new();
            let table = sink.table();
            Pipeline::new(PipelineConfig { workers, ..PipelineConfig::default() })
                .run(move |ctx| Ok(Box::new(GeneratorSource::new(&generator, ctx.worker, ctx.peers)?)), sink)
                .unwrap();
            (table.rows(), table.dead_letter_counts())
        })
        .collect();
    assert!(tables[0].0.len() > 100);
    assert!(tables[0].1.get(&Reason::Late).is_some_and(|&n| n > 100));
    assert_eq!(tables[0], tables[1]);
    assert_eq!(tables[0], tables[2]);
}
