//! `streamflow-core` aggregates streams of events into event-time windows, per key, exactly once,
//! as a [timely](https://docs.rs/timely) / [differential](https://docs.rs/differential-dataflow)
//! dataflow that other programs embed. It comes with the live-stream metrics of its binary
//! (viewers joining and leaving, chat messages, donations: [`streams`]), and takes events of
//! one's own through a [`schema::Schema`].
//!
//! The parts, bottom up — each uses only those above it (`tests/layers.rs` reads the source and
//! checks it):
//!
//! * vocabulary: [`error`], [`time`] (event time, windows), [`money`] (exact decimals),
//!   [`position`] (partitions, offsets, progress), [`retry`], [`dead_letter`], and `tls` (for
//!   the connectors);
//! * [`schema`]: the seam — an embedder's event, key and columns — with [`batch`] (records, and
//!   their decoding), [`checkpoint`] (what a restart needs) and [`csv`];
//! * [`metrics`] and [`control`]: the figures the workers observe, and the handle they
//!   coordinate through (stop, which partitions pause);
//! * in: [`kafka`] (a client, with the `kafka` feature), [`source`] ([`Source`]: memory, JSON
//!   lines, Kafka) and [`streams`], the built-in schema with its generator;
//! * the rules: [`lateness`] (per-partition watermarks) and [`aggregate`] (contributions,
//!   closing, running columns);
//! * out: [`sink`] ([`Sink`]: [`MemorySink`], PostgreSQL with the `postgres` feature);
//! * [`dataflow`]: the timely operators, and the [`Pipeline`] that wires them.
//!
//! # Examples
//!
//! The built-in metrics:
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
//!
//! Events of one's own: orders, and per product and minute their count, units and revenue.
//! ```
//! use streamflow_core::schema::{Declared, GenericRow};
//! use streamflow_core::{Cents, EventTime, MemorySink, MemorySource, Pipeline, PipelineConfig};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Order {
//!     #[serde(with = "streamflow_core::time::rfc3339")]
//!     ts: EventTime,
//!     product_id: String,
//!     quantity: u32,
//!     #[serde(with = "streamflow_core::money::amount")]
//!     unit_price: Cents,
//! }
//!
//! let orders = Declared::json(|order: &Order| order.ts)
//!     .key("product_id", |order| order.product_id.as_str())
//!     .count("orders")
//!     .sum("units", |order| i64::from(order.quantity))
//!     .decimal_sum("revenue", 2, |order| i64::from(order.quantity) * order.unit_price.0)
//!     .build("orders_minute", "products")
//!     .unwrap();
//!
//! let lines = [
//!     r#"{"ts":"2025-12-20T18:00:05Z","product_id":"p1","quantity":2,"unit_price":9.995}"#,
//!     r#"{"ts":"2025-12-20T18:00:40Z","product_id":"p1","quantity":1,"unit_price":5}"#,
//!     r#"{"ts":"2025-12-20T18:00:41Z","product_id":"p1","quantity":"many","unit_price":5}"#,
//! ];
//! let records: Vec<(u32, Vec<u8>)> = lines.iter().map(|l| (0, l.as_bytes().to_vec())).collect();
//! let sink = MemorySink::<GenericRow>::new();
//! let table = sink.table();
//! Pipeline::with_schema(orders, PipelineConfig::default())
//!     .run(move |ctx| Ok(Box::new(MemorySource::new(records.clone(), ctx.worker, ctx.peers))), sink)
//!     .unwrap();
//!
//! let rows = table.rows();
//! assert_eq!(rows[0].values, vec![Some(2), Some(3), Some(2500)]); // 2 × 10.00 + 5.00
//! assert_eq!(table.dead_letter_counts().keys().map(|r| r.as_str()).collect::<Vec<_>>(), ["bad_quantity"]);
//! ```
#![deny(missing_docs)]

pub mod aggregate;
pub mod batch;
pub mod checkpoint;
pub mod control;
pub mod csv;
pub mod dataflow;
pub mod dead_letter;
pub mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lateness;
pub mod metrics;
pub mod money;
pub mod position;
pub mod retry;
pub mod schema;
pub mod sink;
pub mod source;
pub mod streams;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;

pub use batch::RecordBatch;
pub use checkpoint::{Checkpoint, CheckpointUpdate, PartitionPosition, Settings};
pub use control::Control;
pub use dataflow::{Pipeline, PipelineConfig, RunningPipeline};
pub use dead_letter::{DeadLetter, Reason, Refusal, StoredText};
pub use error::{Error, ErrorKind, SinkError, SourceError};
pub use metrics::{Metrics, MetricsSnapshot};
pub use money::Cents;
pub use position::{Offset, PartitionId, PartitionState, Progress};
pub use schema::{Columns, Schema};
pub use sink::{EpochBatch, MemorySink, RowChange, Sink, Table};
#[cfg(feature = "postgres")]
pub use sink::{PostgresConfig, PostgresSink};
pub use source::{FileSource, MemorySource, NoSource, ReadPolicy, Source, SourceContext};
#[cfg(feature = "kafka")]
pub use source::{Kafka, KafkaConfig, KafkaSource, StartOffsets};
pub use streams::generator::{Generator, GeneratorConfig, GeneratorSource};
pub use streams::{Event, EventType, LiveStreams, Row, StreamId, UserId};
pub use time::{EventTime, WindowConfig};
