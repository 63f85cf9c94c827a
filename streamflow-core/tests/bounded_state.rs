//! Closed windows leave memory: over 48 hours of event time the aggregate holds no more than the
//! windows the lateness keeps open, plus those the epochs in flight span, however long it runs;
//! and the alignment that keeps it so never stalls the pipeline.

use streamflow_core::source::Polled;
use streamflow_core::{
    EventTime, GeneratorConfig, GeneratorSource, MemorySink, Offset, PartitionId, Pipeline, PipelineConfig, ReadPolicy,
    RecordBatch, Source, SourceError, WindowConfig,
};

const STREAMS: u32 = 3;

/// Runs `hours` of event time at one event a second; the peak of (window, stream) pairs held,
/// and the rows written.
fn run(hours: u64, reading: &ReadPolicy) -> (i64, usize) {
    let generator = GeneratorConfig {
        events: Some(hours * 3600),
        event_rate: 1.0,
        streams: STREAMS,
        partitions: 3,
        ..GeneratorConfig::default()
    };
    let sink = MemorySink::new();
    let table = sink.table();
    let config = PipelineConfig { workers: 2, reading: reading.clone(), ..PipelineConfig::default() };
    let metrics = Pipeline::new(config)
        .run(move |ctx| Ok(Box::new(GeneratorSource::new(&generator, ctx.worker, ctx.peers)?)), sink)
        .unwrap();
    (metrics.open_windows_peak, table.rows().len())
}

#[test]
fn state_stays_bounded_by_the_open_windows_over_48_hours() {
    // A replay reads far faster than real time, so the epochs, not the wall clock, set how much
    // event time passes between two closings: here 100 records, 300 s of a partition's time.
    let reading = ReadPolicy { max_records: 100, records_per_activation: 50, ..ReadPolicy::default() };
    let window = WindowConfig::default();
    let size = i64::from(window.size_secs());
    let epoch_span = 100 * 3 / size + 1; // one partition per stream, 3 s of event time per record
    let lateness = i64::from(window.lateness_secs()) / size + 1;
    let drift = reading.max_drift.as_secs() as i64 / size + 1;
    let in_flight = reading.max_epochs_in_flight as i64 + 1;
    let bound = i64::from(STREAMS) * (lateness + drift + in_flight * epoch_span);

    let (peak_48h, rows_48h) = run(48, &reading);
    let (peak_4h, _) = run(4, &reading);
    assert!(rows_48h >= STREAMS as usize * 48 * 60 * 9 / 10, "{rows_48h} rows");
    assert!(peak_48h <= bound, "peak {peak_48h} > {bound}");
    assert!((rows_48h as i64) > 40 * bound, "the bound must be far below what was written");
    // Twelve times the event time, and no more state than four hours needed.
    assert!(peak_48h <= peak_4h + i64::from(STREAMS) * epoch_span, "{peak_48h} vs {peak_4h}");
    eprintln!("peak {peak_48h} (4 h: {peak_4h}), bound {bound}, rows {rows_48h}");
}

/// Partition 0 gives one event and then sits at the end of its log, with the idle timeout off
/// (it keeps holding the watermark); partition 1 has twenty minutes of events. Alignment must
/// not wait for a partition that has nothing more to read: all of partition 1 is read.
struct OneCaughtUp {
    sent: [Offset; 2],
    told_caught_up: bool,
    events: Offset,
    paused: bool,
    /// Records come a few at a time, as from a live log, so the dataflow sees them go by.
    rest: bool,
}

impl Source for OneCaughtUp {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        vec![(0, self.sent[0]), (1, self.sent[1])]
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        let event = |secs: i64| {
            let ts = EventTime::from_secs(1_766_253_600 + secs);
            format!(r#"{{"ts":"{ts}","event_type":"chat_message","stream_id":"s"}}"#)
        };
        if self.sent[0] == 0 {
            let mut batch = RecordBatch::new(0, 0);
            batch.push(0, event(0).as_bytes());
            self.sent[0] = 1;
            return Ok(Polled::Records(batch));
        }
        if !self.told_caught_up {
            self.told_caught_up = true;
            let mut batch = RecordBatch::new(0, 1);
            batch.end_offset = Some(1);
            return Ok(Polled::Records(batch));
        }
        self.rest = !self.rest;
        if self.sent[1] == self.events || self.paused || self.rest {
            return Ok(Polled::Pending);
        }
        let mut batch = RecordBatch::new(1, self.sent[1]);
        while batch.len() < max_records.min(20) && self.sent[1] < self.events {
            batch.push(self.sent[1], event(self.sent[1]).as_bytes());
            self.sent[1] += 1;
        }
        batch.end_offset = Some(self.events);
        Ok(Polled::Records(batch))
    }

    fn pause(&mut self, partition: PartitionId, paused: bool) {
        if partition == 1 {
            self.paused = paused;
        }
    }
}

#[test]
fn a_partition_at_the_end_of_its_log_never_pauses_the_others() {
    const EVENTS: Offset = 1_200; // one a second: twenty minutes, far past the drift allowed
    let config = PipelineConfig { workers: 1, ..PipelineConfig::default() };
    let source = std::sync::Mutex::new(Some(OneCaughtUp {
        sent: [0, 0],
        told_caught_up: false,
        events: EVENTS,
        paused: false,
        rest: false,
    }));
    let running = Pipeline::new(config)
        .spawn(
            move |_ctx| Ok(Box::new(source.lock().unwrap().take().expect("one worker")) as Box<dyn Source>),
            MemorySink::new(),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let read = loop {
        let read = running.metrics().per_partition.get(&1).map_or(0, |p| p.records);
        if read == EVENTS as u64 || std::time::Instant::now() > deadline {
            break read;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    running.stop();
    running.join().unwrap();
    assert_eq!(read, EVENTS as u64, "partition 1 was paused behind a partition with nothing to read");
}
