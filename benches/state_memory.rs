//! Memory held by the open state of the pipeline: bytes per open (window, stream) and per
//! distinct viewer, apart from the input and the results (a counting allocator around
//! mimalloc; a sink that keeps nothing).
//!
//! Each figure is a slope between two runs, so that what does not grow with the state (the
//! dataflow, buffers of an epoch) cancels out: the live bytes, once all is read, with 20,000 and with
//! 60,000 open (window, stream) pairs of 16 events of one viewer each, then with those 16
//! events by 16 viewers.
//!
//!   cargo bench --bench state_memory

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use std::time::Duration;

use streamflow_core::source::Polled;
use streamflow_core::{
    EpochBatch, Offset, PartitionId, Pipeline, PipelineConfig, ReadPolicy, RecordBatch, Row, Sink, SinkError, Source,
    SourceError, WindowConfig,
};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The events of `pairs` pairs, made as they are read (no input is held), and then nothing,
/// without ever saying it ended: the windows stay open until the pipeline stops.
struct Events {
    streams: usize,
    viewers: usize,
    next: usize,
    total: usize,
}

impl Events {
    fn payload(&self, n: usize) -> String {
        let (window, rest) = (n / (self.streams * EVENTS_PER_PAIR), n % (self.streams * EVENTS_PER_PAIR));
        let (event, stream) = (rest / self.streams, rest % self.streams);
        format!(
            r#"{{"ts":"2025-12-20T18:{window:02}:{:02}Z","event_type":"chat_message","stream_id":"stream_{stream}","user_id":"user_{}"}}"#,
            event * 3,
            event % self.viewers
        )
    }
}

impl Source for Events {
    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        vec![(0, self.next as Offset)]
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        if self.next == self.total {
            return Ok(Polled::Pending);
        }
        let mut batch = RecordBatch::new(0, self.next as Offset);
        while batch.len() < max_records && self.next < self.total {
            batch.push(self.next as Offset, self.payload(self.next).as_bytes());
            self.next += 1;
        }
        Ok(Polled::Records(batch))
    }
}

/// Keeps nothing: the results are not the state.
struct Discard;

impl Sink for Discard {
    fn apply(&mut self, _batch: EpochBatch<Row>) -> Result<(), SinkError> {
        Ok(())
    }
}

const WINDOWS: usize = 10;
const EVENTS_PER_PAIR: usize = 16;

/// Live bytes once every event of `pairs` open pairs whose events
/// come from `viewers` viewers each has been read and aggregated.
fn held(pairs: usize, viewers: usize) -> usize {
    let total = pairs * EVENTS_PER_PAIR;
    let events = Events { streams: pairs / WINDOWS, viewers, next: 0, total };
    let before = LIVE.load(Relaxed);
    // A day of lateness: every window stays open to the end.
    let config = PipelineConfig {
        window: WindowConfig::new(60, 86_400).unwrap(),
        workers: 1,
        // Small epochs with little in flight: what an epoch holds for a moment stays far below
        // the state, and the same in both runs.
        reading: ReadPolicy {
            max_records: 4_096,
            records_per_activation: 1_024,
            max_epochs_in_flight: 2,
            ..ReadPolicy::default()
        },
    };
    let source = std::sync::Mutex::new(Some(events));
    let running = Pipeline::new(config)
        .spawn(move |_| Ok(Box::new(source.lock().unwrap().take().expect("one worker"))), Discard)
        .unwrap();
    while running.metrics().records < total as u64 || running.metrics().open_windows < pairs as i64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last epochs delivered, and nothing more to do.
    std::thread::sleep(Duration::from_millis(500));
    let held = LIVE.load(Relaxed).saturating_sub(before);
    running.stop();
    running.join().unwrap();
    held
}

fn main() {
    let (small, large) = (20_000, 60_000);
    let pairs = |viewers| (held(large, viewers) as f64 - held(small, viewers) as f64) / (large - small) as f64;
    let per_pair = pairs(1);
    let per_pair_four_viewers = pairs(EVENTS_PER_PAIR);
    let per_viewer = (per_pair_four_viewers - per_pair) / (EVENTS_PER_PAIR - 1) as f64;
    println!("state_memory: {per_pair:.0} bytes per open (window, stream) with one viewer");
    println!("state_memory: {per_viewer:.0} bytes per further distinct viewer of an open (window, stream)");
}
