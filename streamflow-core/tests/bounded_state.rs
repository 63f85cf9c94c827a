//! Closed windows leave memory: over 48 hours of event time the aggregate holds no more than the
//! windows the lateness keeps open, plus those the epochs in flight span, however long it runs.

use streamflow_core::{
    GeneratorConfig, GeneratorSource, MemorySink, Pipeline, PipelineConfig, ReadPolicy, WindowConfig,
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
