//! Events of one's own: orders, aggregated per product and one-minute window by the same
//! machinery as the live-stream metrics — lateness, dead letters, exactly-once into PostgreSQL.
//! All this program declares is the event and its columns; see `orders_schema`.
//!
//! ```text
//! cargo run --example orders -- --input orders.jsonl > orders.csv
//! cargo run --example orders -- --input - --lateness-seconds 60 < orders.jsonl
//! cargo run --example orders -- --input orders.jsonl --database-url postgres://rt:rt@localhost/realtime
//! ```
//!
//! An order: `{"ts": "2025-12-20T18:00:05Z", "order_id": "o-1", "product_id": "p1",
//! "customer_id": "c9", "quantity": 2, "unit_price": 9.995}`. Per (window, product): `orders`,
//! `units`, `revenue` (quantity × unit price rounded to cents, exact), distinct `customers`,
//! and `max_order`, the largest order's value.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::Parser;
use serde::{Deserialize, Deserializer, Serialize};
use streamflow_core::schema::{Declared, GenericRow, Number, Schema};
use streamflow_core::{
    Cents, EventTime, FileSource, MemorySink, MetricsSnapshot, NoSource, Pipeline, PipelineConfig, PostgresConfig,
    PostgresSink, Reason, Refusal, Source, SourceContext, SourceError, WindowConfig,
};

/// An order, as its JSON says.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    #[serde(with = "streamflow_core::time::rfc3339")]
    ts: EventTime,
    #[serde(default)]
    order_id: Option<String>,
    product_id: String,
    customer_id: String,
    quantity: u32,
    #[serde(serialize_with = "streamflow_core::money::amount::serialize", deserialize_with = "unit_price")]
    unit_price: Cents,
}

impl Order {
    /// What the order is worth: quantity × rounded unit price, in cents (at most 10¹² cents).
    fn value(&self) -> i64 {
        i64::from(self.quantity) * self.unit_price.0
    }
}

/// A unit price, exact, in `0 ..= 1,000,000`, rounded half away from zero to cents.
fn unit_price<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cents, D::Error> {
    streamflow_core::money::amount::up_to(deserializer, Cents(100_000_000))
}

/// A rule of the order's fields, broken as `bad_<field>`.
fn rule(holds: bool, field: &str, detail: &str) -> Result<(), Refusal> {
    if holds {
        Ok(())
    } else {
        Err(Refusal::new(Reason::named(&format!("bad_{field}"))).with_detail(detail))
    }
}

/// The whole declaration: how an order is read, checked, keyed and counted. (`pub`, like
/// [`Args`] and [`run`], for `tests/orders.rs`, which checks this program against a model.)
pub fn orders_schema() -> anyhow::Result<impl Schema<Row = GenericRow>> {
    let ids = |id: &str| (1..=128).contains(&id.len());
    let schema = Declared::json(|order: &Order| order.ts)
        .check(move |o| rule(ids(&o.product_id), "product_id", "1 to 128 bytes"))
        .check(move |o| rule(ids(&o.customer_id), "customer_id", "1 to 128 bytes"))
        .check(|o| rule((1..=10_000).contains(&o.quantity), "quantity", "an integer from 1 to 10000"))
        .key("product_id", |order| order.product_id.as_str())
        .count("orders")
        .sum("units", |order| i64::from(order.quantity))
        .decimal_sum("revenue", 2, Order::value)
        .distinct("customers", |order| Some(order.customer_id.as_str()))
        .max("max_order", Number::Decimal { scale: 2 }, |order| Some(order.value()))
        .build("orders_minute", "products")?;
    Ok(schema)
}

/// Aggregates orders from JSON lines into one-minute windows per product.
#[derive(Debug, Parser)]
pub struct Args {
    /// The JSON-lines file of orders, one partition; `-` for standard input.
    #[arg(long)]
    input: PathBuf,
    /// The window size in seconds.
    #[arg(long, default_value_t = 60)]
    window_seconds: u32,
    /// How long after an order's window ends the order is still counted.
    #[arg(long, default_value_t = 600)]
    lateness_seconds: u32,
    /// Write the rows exactly once into `orders_minute` of this database instead of printing them.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut out = BufWriter::new(io::stdout().lock());
    let metrics = run(&args, &mut out)?;
    out.flush()?;
    eprintln!(
        "{} orders read, {} accepted, {} dead letters",
        metrics.records,
        metrics.accepted,
        metrics.dead_letters_total()
    );
    for (reason, count) in &metrics.dead_letters {
        eprintln!("dead letters\t{reason}\t{count}");
    }
    Ok(())
}

/// Aggregates the orders of `args.input`: the rows as CSV to `out`, or into the database.
pub fn run(args: &Args, out: &mut impl Write) -> anyhow::Result<MetricsSnapshot> {
    let schema = orders_schema()?;
    let config = PipelineConfig {
        window: WindowConfig::new(args.window_seconds, args.lateness_seconds)?,
        ..PipelineConfig::default()
    };
    let source = FileSource::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    // One partition, read by the worker that owns it.
    let source = Mutex::new(Some(source));
    let sources = move |ctx: &SourceContext| -> Result<Box<dyn Source>, SourceError> {
        let taken = ctx.owns(FileSource::PARTITION).then(|| source.lock().unwrap_or_else(|e| e.into_inner()).take());
        Ok(taken.flatten().map_or_else(|| Box::new(NoSource) as Box<dyn Source>, |s| Box::new(s)))
    };

    let Some(url) = &args.database_url else {
        let sink = MemorySink::<GenericRow>::new();
        let table = sink.table();
        let columns = schema.columns().clone();
        let metrics = Pipeline::with_schema(schema, config).run(sources, sink)?;
        streamflow_core::csv::write_rows(out, &columns, &table.rows())?;
        return Ok(metrics);
    };
    let topic = args.input.file_name().map_or("stdin".into(), |n| n.to_string_lossy().into_owned());
    let sink = PostgresSink::connect(PostgresConfig::new(url, "orders", topic).with_columns(schema.columns()))?;
    Ok(Pipeline::with_schema(schema, config).run(sources, sink)?)
}
