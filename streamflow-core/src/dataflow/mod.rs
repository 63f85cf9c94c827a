//! All the timely glue: the operators, each of which only routes into a timely-free part that
//! holds the rule, and the [`Pipeline`] that wires them on worker threads.
//!
//! ```text
//!  Source ───► Decode ───► Window ───┬─ events (exchanged by key) ────► Contribute ─► Audience ─► rows ──┐
//!  per worker:  batches     per       ├─ progress ── broadcast ──────────►│ (reduce)                        │
//!  its own      dealt       partition,│                                   ├─ checkpoint parts ─────────────┤
//!  partitions   round-robin in offset │                                   └─ events too late (idle) ───────┤
//!   ▲  ▲                   order      ├─ dead letters ─────────────────────────────────────────────────────┤
//!   │  └─ pause ◄── Alignment ◄────────┼──────── (Contribute reports every partition's progress)           │
//!   └──── epochs, stop ◄── Control    └─ progress ─────────────────────────────────────────────────────────┴─► Sink (worker 0)
//! ```
//! Timestamps are epochs: the sources cut their records into epochs, and the sink receives each
//! completed epoch as one [`EpochBatch`](crate::EpochBatch).
//!
//! * [`read`]: the source operator ([`crate::source`] holds the sources and the epoch cutter).
//! * [`decode`]: bytes to events by the schema.
//! * [`window`]: the lateness rule ([`crate::lateness`]).
//! * [`aggregate`]: contributions and the running columns ([`crate::aggregate`]).
//! * [`deliver`]: the sink operator ([`crate::sink::assemble`]).
//! * [`cluster`] and [`heartbeat`]: timely's cluster mode — the mesh of processes, its
//!   handshake and fail-stop, and the small dataflow that carries stops, failures and the epoch
//!   clock between processes ([`Pipeline::in_cluster`]).

pub mod aggregate;
pub mod cluster;
pub mod decode;
pub mod deliver;
pub mod heartbeat;
pub mod read;
pub mod window;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::ProbeHandle;
use timely::WorkerConfig;

pub use cluster::{ClusterConfig, Mesh};

use crate::checkpoint::Settings;
use crate::control::Control;
use crate::error::{Error, SourceError};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::schema::Schema;
use crate::sink::assemble::Delivery;
use crate::sink::Sink;
use crate::source::{NoSource, ReadPolicy, Source, SourceContext};
use crate::streams::LiveStreams;
use crate::time::WindowConfig;

/// The sink, taken by worker 0 when it builds the dataflow.
type SharedSink<R> = Arc<Mutex<Option<Box<dyn Sink<R>>>>>;

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

/// A dataflow from sources to a sink, ready to run: the built-in live-stream metrics
/// ([`Pipeline::new`]), or any [`Schema`] ([`Pipeline::with_schema`]).
///
/// # Examples
/// ```
/// use streamflow_core::streams::generator::{GeneratorConfig, GeneratorSource};
/// use streamflow_core::{MemorySink, Pipeline, PipelineConfig};
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
#[derive(Debug)]
pub struct Pipeline<S = LiveStreams> {
    schema: Arc<S>,
    config: PipelineConfig,
    cluster: Option<ClusterConfig>,
    metrics: Arc<Metrics>,
}

impl Pipeline<LiveStreams> {
    /// The pipeline of the built-in live-stream metrics, with `config`.
    pub fn new(config: PipelineConfig) -> Pipeline<LiveStreams> {
        Pipeline::with_schema(LiveStreams, config)
    }
}

impl<S: Schema> Pipeline<S> {
    /// A pipeline of `schema`'s events and rows, with `config`.
    pub fn with_schema(schema: S, config: PipelineConfig) -> Pipeline<S> {
        Pipeline { schema: Arc::new(schema), config, cluster: None, metrics: Arc::default() }
    }

    /// This pipeline as one process of a cluster (timely's cluster mode): its `workers` threads
    /// join those of the other processes in one dataflow. Every process runs the same program
    /// with the same configuration but its own index; partitions spread over the workers of all
    /// processes. Only process 0 uses its sink, whose checkpoint every process resumes from.
    pub fn in_cluster(mut self, cluster: ClusterConfig) -> Pipeline<S> {
        self.cluster = Some(cluster);
        self
    }

    /// The figures the pipeline will keep once started, for whoever reports them or tells it
    /// of commits ([`Metrics::committed`]) before it runs.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Runs the pipeline until its sources end or it is stopped; returns its final figures.
    pub fn run<F, K>(self, sources: F, sink: K) -> Result<MetricsSnapshot, Error>
    where
        F: Fn(&SourceContext) -> Result<Box<dyn Source>, SourceError> + Send + Sync + 'static,
        K: Sink<S::Row>,
    {
        self.spawn(sources, sink)?.join()
    }

    /// Starts the pipeline on its worker threads and returns at once.
    ///
    /// `sources` builds the reader of each worker; the pipeline then tells each reader where the
    /// checkpoint the sink holds resumes it ([`Source::resume`]).
    pub fn spawn<F, K>(self, sources: F, mut sink: K) -> Result<RunningPipeline, Error>
    where
        F: Fn(&SourceContext) -> Result<Box<dyn Source>, SourceError> + Send + Sync + 'static,
        K: Sink<S::Row>,
    {
        if self.config.workers == 0 {
            return Err(Error::configuration("at least one worker is needed"));
        }
        let settings = Settings { window: self.config.window, columns: self.schema.columns().fingerprint() };
        let workers = self.config.workers;
        let (builders, mesh, resume) = match &self.cluster {
            None => {
                let resume = sink.checkpoint(&settings)?;
                let (builders, _) = timely::CommunicationConfig::Process(workers).try_build().map_err(Error::new)?;
                (builders, None, resume)
            }
            Some(cluster) => {
                let (builders, mesh, resume) =
                    cluster::start(cluster, workers, &settings, || sink.checkpoint(&settings))?;
                (builders, Some(mesh), resume)
            }
        };
        let process = self.cluster.as_ref().map_or(0, |c| c.process);
        let resume = Arc::new(resume);
        if !resume.is_empty() {
            tracing::info!(partitions = resume.positions.len(), "Resuming from the sink's checkpoint.");
        }
        let control = Control::with_metrics(self.metrics);
        // Only process 0 has worker 0, which takes the sink.
        let sink: SharedSink<S::Row> =
            Arc::new(Mutex::new((process == 0).then(|| Box::new(sink) as Box<dyn Sink<S::Row>>)));
        let config = self.config;
        let schema = self.schema;
        let worker_control = control.clone();
        let clustered = mesh.is_some();
        let guards = timely::execute::execute_from(builders, Box::new(()), WorkerConfig::default(), move |worker| {
            let control = worker_control.clone();
            let context = SourceContext { worker: worker.index(), peers: worker.peers() };
            let reader: Box<dyn Source> = match sources(&context) {
                Ok(reader) => reader,
                Err(error) => {
                    control.fail(error);
                    Box::new(NoSource)
                }
            };
            let sink = if worker.index() == 0 { sink.lock().unwrap_or_else(|e| e.into_inner()).take() } else { None };
            let probe = ProbeHandle::new();
            let resume = Arc::clone(&resume);
            let reading = config.reading.clone();
            let window_config = config.window;
            let schema = Arc::clone(&schema);
            // Decoding stays among this process's workers: payloads cross the network once.
            let local = process * workers..(process + 1) * workers;
            worker.dataflow::<u64, _, _>(|scope| {
                let batches = read::read(scope, reader, &resume, reading, control.clone(), probe.clone());
                let decoded = decode::decode(batches, Arc::clone(&schema), local);
                let (events, dead_letters, progress) =
                    window::window(decoded, Arc::clone(&schema), window_config, Arc::clone(&resume), control.clone());
                let aggregated = aggregate::aggregate(
                    events,
                    progress.clone().broadcast(),
                    schema,
                    window_config,
                    Arc::clone(&resume),
                    control.clone(),
                );
                let deliveries = aggregated
                    .rows
                    .inner
                    .map(|(row, time, diff)| Delivery::Row(row, time, diff))
                    .concat(dead_letters.concat(aggregated.too_late).map(Delivery::DeadLetter))
                    .concat(progress.map(Delivery::Progress))
                    .concat(aggregated.checkpoint.map(Delivery::Checkpoint));
                deliver::deliver(deliveries, sink, resume, control.clone()).probe_with(&probe);
            });
            let done = Rc::new(Cell::new(false));
            if clustered {
                heartbeat::heartbeat(worker, process, control.clone(), Rc::clone(&done));
            }
            while !probe.done() {
                worker.step_or_park(Some(Duration::from_millis(50)));
            }
            done.set(true);
            while worker.has_dataflows() {
                worker.step_or_park(Some(Duration::from_millis(50)));
            }
        })
        .map_err(Error::new)?;
        Ok(RunningPipeline { control, guards, mesh })
    }
}

/// A pipeline running on its worker threads.
pub struct RunningPipeline {
    control: Control,
    guards: timely::communication::WorkerGuards<()>,
    mesh: Option<Arc<Mesh>>,
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

    /// The connections to the other processes, in a cluster.
    pub fn mesh(&self) -> Option<&Arc<Mesh>> {
        self.mesh.as_ref()
    }

    /// Waits for the pipeline to end; the first failure, if any, or the final figures. In a
    /// cluster, a lost process fails the others, naming it.
    pub fn join(self) -> Result<MetricsSnapshot, Error> {
        let failed = self.guards.join().into_iter().find_map(Result::err);
        if let Some(mesh) = &self.mesh {
            mesh.finish(failed.is_none());
        }
        if let Some(error) = failed {
            return Err(match &self.mesh {
                Some(mesh) => mesh.failure(&error),
                None => Error::new(error),
            });
        }
        match self.control.take_failure() {
            Some(error) => Err(error),
            None => Ok(self.control.metrics().snapshot()),
        }
    }
}
