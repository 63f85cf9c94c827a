//! `streamflow-core` turns a stream of JSON events of live-streaming channels (viewers joining
//! and leaving, chat messages, donations) into per-minute, per-stream metrics, as a
//! [timely](https://docs.rs/timely) / [differential](https://docs.rs/differential-dataflow)
//! dataflow that other programs embed.
//!
//! The parts, in the order records meet them:
//!
//! * [`source`]: where records come from ([`Source`]): a JSON-lines file, a seeded generator, or
//!   memory; every record carries its `(partition, offset)`.
//! * [`decode`]: bytes to an [`Event`], or a [`Reason`] the record is refused.
//! * [`window`]: event-time tumbling windows, per-partition watermarks and lateness.
//! * [`aggregate`]: the incremental per-(window, stream) [`Row`] in differential collections.
//! * [`sink`]: where results go ([`Sink`]); [`MemorySink`] keeps a live table, [`PostgresSink`]
//!   upserts into PostgreSQL exactly once.
//! * [`dataflow`]: the [`Pipeline`] that wires them on worker threads, and [`checkpoint`], what a
//!   restart needs to deliver every result exactly once.
//!
//! # Examples
//! ```
//! use streamflow_core::{MemorySink, MemorySource, Pipeline, PipelineConfig};
//!
//! let events = [
//!     r#"{"ts":"2025-12-20T18:34:01Z","event_type":"viewer_join","stream_id":"s1","user_id":"u1"}"#,
//!     r#"{"ts":"2025-12-20T18:34:30Z","event_type":"donation","stream_id":"s1","user_id":"u1","amount_usd":4.5}"#,
//!     r#"{"ts":"2025-12-20T18:34:31Z","event_type":"raid","stream_id":"s1"}"#,
//! ];
//! let records: Vec<(u32, Vec<u8>)> = events.iter().map(|e| (0, e.as_bytes().to_vec())).collect();
//! let sink = MemorySink::new();
//! let table = sink.table();
//! Pipeline::new(PipelineConfig::default())
//!     .run(move |ctx| Ok(Box::new(MemorySource::new(records.clone(), ctx.worker, ctx.peers))), sink)
//!     .unwrap();
//!
//! let rows = table.rows();
//! assert_eq!(rows.len(), 1);
//! assert_eq!((rows[0].events, rows[0].donations_usd.to_string(), rows[0].active_viewers), (2, "4.50".into(), 1));
//! assert_eq!(table.dead_letter_counts().values().sum::<u64>(), 1); // the unknown `raid`
//! ```
#![deny(missing_docs)]

pub mod aggregate;
pub mod checkpoint;
pub mod dataflow;
pub mod dead_letter;
pub mod decode;
pub mod error;
pub mod event;
pub mod kafka;
pub mod metrics;
pub mod sink;
pub mod source;
pub mod window;

pub use aggregate::{Counters, Row};
pub use checkpoint::{Checkpoint, PartitionPosition, Settings};
pub use dataflow::{Control, Pipeline, PipelineConfig, RunningPipeline, SourceContext};
pub use dead_letter::{DeadLetter, Reason, StoredText};
pub use error::Error;
pub use event::{Cents, Event, EventTime, EventType, StreamId, UserId};
pub use metrics::{Metrics, MetricsSnapshot};
pub use sink::{EpochBatch, MemorySink, PostgresConfig, PostgresSink, RowChange, Sink, SinkError, Table};
pub use source::{
    FileSource, Generator, GeneratorConfig, GeneratorSource, Kafka, KafkaConfig, KafkaSource, MemorySource, Offset,
    PartitionId, PartitionState, ReadPolicy, RecordBatch, Source, SourceError, StartOffsets,
};
pub use window::WindowConfig;
