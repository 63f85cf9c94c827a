//! The pipeline: sources, decode, window, aggregate and sink wired into one timely dataflow, run
//! on `workers` threads.
//!
//! ```text
//!  Source ───► Decode ───► Window ───┬─ events (exchanged by stream) ─► Contribute ─► Audience ─► rows ──┐
//!  per worker:  batches     per       ├─ progress ── broadcast ──────────►│ (reduce)                        │
//!  its own      dealt       partition,│                                   ├─ checkpoint parts ─────────────┤
//!  partitions   round-robin in offset  │                                   └─ events too late (idle) ───────┤
//!                           order      ├─ dead letters ─────────────────────────────────────────────────────┤
//!                                      └─ progress ─────────────────────────────────────────────────────────┴─► Sink (worker 0)
//! ```
//! Timestamps are epochs: the sources cut their records into epochs, and the sink receives each
//! completed epoch as one [`EpochBatch`](crate::EpochBatch).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::ProbeHandle;
use timely::WorkerConfig;

use crate::aggregate::aggregate;
use crate::checkpoint::{Checkpoint, Settings};
use crate::decode::decode_batches;
use crate::error::Error;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::sink::{deliver, Delivery, Sink};
use crate::source::{self, NoSource, Offset, PartitionId, ReadPolicy, Source, SourceError};
use crate::window::{window, WindowConfig};

/// How a pipeline runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Window size and allowed lateness.
    pub window: WindowConfig,
    /// Timely worker threads.
    pub workers: usize,
    /// How records are cut into epochs.
    pub reading: ReadPolicy,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { window: WindowConfig::default(), workers: 1, reading: ReadPolicy::default() }
    }
}

/// A handle shared by the workers and the program that started them: asks the pipeline to stop,
/// records the first failure, and holds the metrics.
#[derive(Clone, Debug)]
pub struct Control(Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    stopping: AtomicBool,
    newest_epoch: AtomicU64,
    failure: Mutex<Option<Error>>,
    metrics: Arc<Metrics>,
}

impl Control {
    fn new() -> Control {
        Control(Arc::default())
    }

    /// Asks the sources to stop at the end of their current epoch; what was read is delivered.
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for, or something failed.
    pub fn is_stopping(&self) -> bool {
        self.0.stopping.load(Ordering::Relaxed)
    }

    /// Records a failure (the first one is kept) and stops the pipeline.
    pub fn fail(&self, error: Error) {
        let mut failure = self.0.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::error!(error = %error, "Pipeline failed; stopping.");
            *failure = Some(error);
        }
        self.stop();
    }

    /// Records that a source opened `epoch`.
    pub(crate) fn note_epoch(&self, epoch: u64) {
        self.0.newest_epoch.fetch_max(epoch, Ordering::Relaxed);
    }

    /// The newest epoch any source has opened.
    pub(crate) fn newest_epoch(&self) -> u64 {
        self.0.newest_epoch.load(Ordering::Relaxed)
    }

    /// The pipeline's figures.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    fn take_failure(&self) -> Option<Error> {
        self.0.failure.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What a source factory knows when it builds the reader of one worker.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// This worker's index.
    pub worker: usize,
    /// The number of workers.
    pub peers: usize,
    /// The checkpoint the pipeline resumes from (empty on a first run).
    pub resume: Arc<Checkpoint>,
}

impl SourceContext {
    /// Whether this worker reads `partition`.
    pub fn owns(&self, partition: PartitionId) -> bool {
        source::owns(partition, self.worker, self.peers)
    }

    /// Where this worker starts reading `partition`: the checkpoint's replay offset, if any.
    pub fn start_offset(&self, partition: PartitionId) -> Option<Offset> {
        self.resume.replay_from(partition)
    }
}

/// A dataflow from sources to a sink, ready to run.
///
/// # Examples
/// ```
/// use streamflow_core::{GeneratorConfig, GeneratorSource, MemorySink, Pipeline, PipelineConfig};
///
/// let generator = GeneratorConfig { events: Some(1_000), ..GeneratorConfig::default() };
/// let sink = MemorySink::new();
/// let table = sink.table();
/// let metrics = Pipeline::new(PipelineConfig::default())
///     .run(move |ctx| Ok(Box::new(GeneratorSource::new(&generator, ctx.worker, ctx.peers)?)), sink)
///     .unwrap();
/// assert_eq!(metrics.records, 1_000);
/// assert!(!table.rows().is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Pipeline {
    config: PipelineConfig,
}

impl Pipeline {
    /// A pipeline with `config`.
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline { config }
    }

    /// Runs the pipeline until its sources end or it is stopped; returns its final figures.
    pub fn run<F, S>(self, sources: F, sink: S) -> Result<MetricsSnapshot, Error>
    where
        F: Fn(&SourceContext) -> Result<Box<dyn Source>, SourceError> + Send + Sync + 'static,
        S: Sink,
    {
        self.spawn(sources, sink)?.join()
    }

    /// Starts the pipeline on its worker threads and returns at once.
    ///
    /// `sources` builds the reader of each worker; it is given the checkpoint the sink holds, so
    /// that it starts each partition where the checkpoint says.
    pub fn spawn<F, S>(self, sources: F, mut sink: S) -> Result<RunningPipeline, Error>
    where
        F: Fn(&SourceContext) -> Result<Box<dyn Source>, SourceError> + Send + Sync + 'static,
        S: Sink,
    {
        if self.config.workers == 0 {
            return Err(Error::Config("at least one worker is needed".into()));
        }
        let resume = Arc::new(sink.checkpoint(&Settings { window: self.config.window })?);
        if !resume.is_empty() {
            tracing::info!(partitions = resume.positions.len(), "Resuming from the sink's checkpoint.");
        }
        let control = Control::new();
        let sink: Arc<Mutex<Option<Box<dyn Sink>>>> = Arc::new(Mutex::new(Some(Box::new(sink))));
        let config = self.config;
        let worker_control = control.clone();
        let timely_config = timely::Config {
            communication: timely::CommunicationConfig::Process(config.workers),
            worker: WorkerConfig::default(),
        };
        let guards = timely::execute(timely_config, move |worker| {
            let control = worker_control.clone();
            let metrics = Arc::clone(control.metrics());
            let context = SourceContext { worker: worker.index(), peers: worker.peers(), resume: Arc::clone(&resume) };
            let reader: Box<dyn Source> = match sources(&context) {
                Ok(reader) => reader,
                Err(error) => {
                    control.fail(error.into());
                    Box::new(NoSource)
                }
            };
            let sink = if worker.index() == 0 { sink.lock().unwrap_or_else(|e| e.into_inner()).take() } else { None };
            let probe = ProbeHandle::new();
            let resume = Arc::clone(&resume);
            let epochs = config.reading.clone();
            let window_config = config.window;
            worker.dataflow::<u64, _, _>(|scope| {
                let batches = source::read(scope, reader, epochs, control.clone(), probe.clone());
                let (events, dead_letters, progress) =
                    window(decode_batches(batches), window_config, Arc::clone(&resume), Arc::clone(&metrics));
                let aggregated =
                    aggregate(events, progress.clone().broadcast(), window_config, Arc::clone(&resume), metrics);
                let deliveries = aggregated
                    .rows
                    .inner
                    .map(|(row, time, diff)| Delivery::Row(row, time, diff))
                    .concat(dead_letters.concat(aggregated.too_late).map(Delivery::DeadLetter))
                    .concat(progress.map(Delivery::Progress))
                    .concat(aggregated.checkpoint.map(Delivery::Checkpoint));
                deliver(deliveries, sink, resume, control.clone()).probe_with(&probe);
            });
            while !probe.done() {
                worker.step_or_park(Some(Duration::from_millis(50)));
            }
        })
        .map_err(Error::Worker)?;
        Ok(RunningPipeline { control, guards })
    }
}

/// A pipeline running on its worker threads.
pub struct RunningPipeline {
    control: Control,
    guards: timely::communication::WorkerGuards<()>,
}

impl RunningPipeline {
    /// Asks the pipeline to stop at the end of the current epoch; [`RunningPipeline::join`] waits
    /// for the sink to take what was read.
    pub fn stop(&self) {
        self.control.stop();
    }

    /// The pipeline's control handle, to stop it from elsewhere (a signal handler).
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The figures so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.control.metrics().snapshot()
    }

    /// Whether every worker has finished.
    pub fn is_finished(&self) -> bool {
        self.guards.guards().iter().all(|guard| guard.is_finished())
    }

    /// Waits for the pipeline to end; the first failure, if any, or the final figures.
    pub fn join(self) -> Result<MetricsSnapshot, Error> {
        for result in self.guards.join() {
            result.map_err(Error::Worker)?;
        }
        match self.control.take_failure() {
            Some(error) => Err(error),
            None => Ok(self.control.metrics().snapshot()),
        }
    }
}
