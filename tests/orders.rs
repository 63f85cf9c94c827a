//! The orders example — a schema of its own, declared with [`Declared`] — against a plain model
//! of its definition: random orders over two partitions, shuffled within the lateness and some
//! beyond it, some breaking a rule; with one and two workers, with a crash and a resume; and the
//! program itself, its CSV and its exactly-once table in PostgreSQL.
//!
//! [`Declared`]: streamflow_core::schema::Declared

#[allow(dead_code)]
#[path = "../examples/orders.rs"]
mod orders;

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;
use proptest::prelude::*;
use streamflow_core::schema::GenericRow;
use streamflow_core::{
    Checkpoint, EpochBatch, EventTime, MemorySink, MemorySource, PartitionId, Pipeline, PipelineConfig, ReadPolicy,
    Reason, Settings, Sink, SinkError, WindowConfig,
};

const WINDOW_SECS: u32 = 60;
const LATENESS_SECS: u32 = 120;

/// One generated line: an order, one that breaks a rule, or no JSON at all.
#[derive(Clone, Debug)]
enum Line {
    Order { ts: i64, product: u8, customer: u8, quantity: u32, milli_price: u64 },
    Broken(Broken),
    NotJson,
}

/// The rule a broken order breaks.
#[derive(Clone, Copy, Debug)]
enum Broken {
    EmptyProduct,
    NoCustomer,
    Quantity(u32),
    PriceOver,
    NegativePrice,
}

impl Line {
    fn payload(&self) -> Vec<u8> {
        let order = |ts: i64, product: &str, customer: Option<&str>, quantity: u32, price: &str| {
            let customer = customer.map(|c| format!(r#","customer_id":"{c}""#)).unwrap_or_default();
            format!(
                r#"{{"ts":"{}","order_id":"o","product_id":"{product}"{customer},"quantity":{quantity},"unit_price":{price}}}"#,
                EventTime(ts)
            )
        };
        let at = EventTime::parse_rfc3339("2025-12-20T18:00:00Z").unwrap().micros();
        match self {
            Line::NotJson => b"{\"ts\":".to_vec(),
            Line::Order { ts, product, customer, quantity, milli_price } => {
                let price = format!("{}.{:03}", milli_price / 1000, milli_price % 1000);
                order(*ts, &format!("p{product}"), Some(&format!("c{customer}")), *quantity, &price).into_bytes()
            }
            Line::Broken(Broken::EmptyProduct) => order(at, "", Some("c1"), 1, "1").into_bytes(),
            Line::Broken(Broken::NoCustomer) => order(at, "p1", None, 1, "1").into_bytes(),
            Line::Broken(Broken::Quantity(quantity)) => order(at, "p1", Some("c1"), *quantity, "1").into_bytes(),
            Line::Broken(Broken::PriceOver) => order(at, "p1", Some("c1"), 1, "1000000.001").into_bytes(),
            Line::Broken(Broken::NegativePrice) => order(at, "p1", Some("c1"), 1, "-0.01").into_bytes(),
        }
    }

    fn reason(broken: Broken) -> &'static str {
        match broken {
            Broken::EmptyProduct => "bad_product_id",
            Broken::NoCustomer => "missing_customer_id",
            Broken::Quantity(_) => "bad_quantity",
            Broken::PriceOver | Broken::NegativePrice => "bad_unit_price",
        }
    }
}

/// Lines per partition, in offset order.
fn lines() -> impl Strategy<Value = Vec<(PartitionId, Line)>> {
    let base = EventTime::parse_rfc3339("2025-12-20T18:00:00Z").unwrap().micros();
    let broken = prop_oneof![
        Just(Broken::EmptyProduct),
        Just(Broken::NoCustomer),
        prop_oneof![Just(0u32), Just(10_001u32)].prop_map(Broken::Quantity),
        Just(Broken::PriceOver),
        Just(Broken::NegativePrice),
    ];
    let line = (
        0u32..2,                                           // partition
        0i64..1_000,                                       // step of the partition's clock, in seconds / 10
        prop_oneof![8 => -100i64..=0, 1 => -400i64..-100], // jitter: within, or beyond, the lateness
        0u8..4,                                            // product
        0u8..5,                                            // customer
        prop_oneof![4 => 1u32..=20, 1 => Just(10_000u32)],
        prop_oneof![4 => 0u64..2_000_000, 1 => Just(1_000_000_000u64), 1 => Just(5u64)],
        0u8..20,
        broken,
    );
    proptest::collection::vec(line, 1..250).prop_map(move |raw| {
        let mut clocks = [base; 2];
        raw.into_iter()
            .map(|(partition, step, jitter, product, customer, quantity, milli_price, bad, broken)| {
                let clock = &mut clocks[partition as usize];
                *clock += step * 100_000;
                let line = match bad {
                    0 => Line::NotJson,
                    1 => Line::Broken(broken),
                    _ => Line::Order { ts: *clock + jitter * 1_000_000, product, customer, quantity, milli_price },
                };
                (partition, line)
            })
            .collect()
    })
}

/// The rows and dead-letter counts of the orders definition, computed plainly.
fn model(lines: &[(PartitionId, Line)]) -> (Vec<GenericRow>, BTreeMap<Reason, u64>) {
    let window = WindowConfig::new(WINDOW_SECS, LATENESS_SECS).unwrap();
    let mut clocks: BTreeMap<PartitionId, i64> = BTreeMap::new();
    let mut dead: BTreeMap<Reason, u64> = BTreeMap::new();
    #[derive(Default)]
    struct Acc {
        orders: i64,
        units: i64,
        revenue: i64,
        customers: BTreeSet<u8>,
        max_order: i64,
    }
    let mut windows: BTreeMap<(i64, String), Acc> = BTreeMap::new();
    for (partition, line) in lines {
        let (ts, product, customer, quantity, milli_price) = match line {
            Line::NotJson => {
                *dead.entry(Reason::named("not_json")).or_default() += 1;
                continue;
            }
            Line::Broken(broken) => {
                *dead.entry(Reason::named(Line::reason(*broken))).or_default() += 1;
                continue;
            }
            Line::Order { ts, product, customer, quantity, milli_price } => {
                (*ts, *product, *customer, *quantity, *milli_price)
            }
        };
        if milli_price > 1_000_000_000 {
            *dead.entry(Reason::named("bad_unit_price")).or_default() += 1;
            continue;
        }
        let start = window.start_of(EventTime(ts)).micros();
        let clock = clocks.get(partition).copied();
        if clock
            .is_some_and(|max| start + i64::from(WINDOW_SECS) * 1_000_000 <= max - i64::from(LATENESS_SECS) * 1_000_000)
        {
            *dead.entry(Reason::Late).or_default() += 1;
        } else {
            // Half away from zero, to cents; then the order's value.
            let cents = ((milli_price + 5) / 10) as i64;
            let value = i64::from(quantity) * cents;
            let acc = windows.entry((start, format!("p{product}"))).or_default();
            acc.orders += 1;
            acc.units += i64::from(quantity);
            acc.revenue += value;
            acc.customers.insert(customer);
            acc.max_order = if acc.orders == 1 { value } else { acc.max_order.max(value) };
        }
        clocks.insert(*partition, clock.unwrap_or(i64::MIN).max(ts));
    }
    let rows = windows
        .into_iter()
        .map(|((start, product), acc)| {
            let end = EventTime(start + i64::from(WINDOW_SECS) * 1_000_000);
            let values = [acc.orders, acc.units, acc.revenue, acc.customers.len() as i64, acc.max_order];
            GenericRow {
                window_start: EventTime(start),
                window_end: end,
                key: product.into(),
                values: values.map(Some).to_vec(),
            }
        })
        .collect();
    (rows, dead)
}

/// A sink that fails after a number of batches, like a process killed between two commits.
struct CrashAfter {
    inner: MemorySink<GenericRow>,
    batches_left: usize,
}

impl Sink<GenericRow> for CrashAfter {
    fn checkpoint(&mut self, settings: &Settings) -> Result<Checkpoint, SinkError> {
        self.inner.checkpoint(settings)
    }
    fn apply(&mut self, batch: EpochBatch<GenericRow>) -> Result<(), SinkError> {
        if self.batches_left == 0 {
            return Err(SinkError::new("crashed on purpose"));
        }
        self.batches_left -= 1;
        self.inner.apply(batch)
    }
}

fn run(
    lines: &[(PartitionId, Line)],
    workers: usize,
    sink: impl Sink<GenericRow>,
) -> Result<(), streamflow_core::Error> {
    let payloads: Vec<(PartitionId, Vec<u8>)> = lines.iter().map(|(p, l)| (*p, l.payload())).collect();
    let config = PipelineConfig {
        window: WindowConfig::new(WINDOW_SECS, LATENESS_SECS).unwrap(),
        workers,
        // Tiny epochs, so that windows close and checkpoints move in the middle of the input.
        reading: ReadPolicy { max_records: 5, records_per_activation: 3, ..ReadPolicy::default() },
    };
    let schema = orders::orders_schema().unwrap();
    Pipeline::with_schema(schema, config)
        .run(move |ctx| Ok(Box::new(MemorySource::new(payloads.clone(), ctx.worker, ctx.peers))), sink)
        .map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_orders_dataflow_equals_the_model(lines in lines(), workers in 1usize..=2) {
        let sink = MemorySink::new();
        let table = sink.table();
        run(&lines, workers, sink).unwrap();
        let (rows, dead) = model(&lines);
        prop_assert_eq!(table.rows(), rows);
        prop_assert_eq!(table.dead_letter_counts(), dead);
    }

    #[test]
    fn a_crash_and_a_resume_of_orders_equal_an_uninterrupted_run(
        lines in lines(), workers in 1usize..=2, crash_after in 0usize..40,
    ) {
        let sink = MemorySink::new();
        let table = sink.table();
        if run(&lines, workers, CrashAfter { inner: sink.clone(), batches_left: crash_after }).is_err() {
            run(&lines, workers, CrashAfter { inner: sink, batches_left: usize::MAX }).unwrap();
        }
        let (rows, dead) = model(&lines);
        prop_assert_eq!(table.rows(), rows);
        prop_assert_eq!(table.dead_letter_counts(), dead);
    }
}

/// The program's CSV: the header of the issue, money with two decimals, sorted by window and
/// product; and with `--database-url`, the same rows in `orders_minute`, exactly once over two
/// runs.
#[test]
fn the_program_writes_its_csv_and_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.jsonl");
    let lines = [
        r#"{"ts":"2025-12-20T18:00:05Z","order_id":"o1","product_id":"p1","customer_id":"c1","quantity":2,"unit_price":9.995}"#,
        r#"{"ts":"2025-12-20T19:00:40+01:00","product_id":"p1","customer_id":"c2","quantity":1,"unit_price":5}"#,
        r#"{"ts":"2025-12-20T18:00:41Z","product_id":"p,2","customer_id":"c1","quantity":3,"unit_price":0.005}"#,
        r#"{"ts":"2025-12-20T18:00:42Z","product_id":"p1","customer_id":"c1","quantity":1.5,"unit_price":1}"#,
        r#"{"ts":"2025-12-20T18:00:43Z","product_id":"p\u0000","customer_id":"c1","quantity":1,"unit_price":1}"#,
        r#"{"ts":"2025-12-20T18:20:00Z","product_id":"p1","customer_id":"c1","quantity":10000,"unit_price":1000000}"#,
        r#"{"ts":"2025-12-20T18:00:00Z","product_id":"p1","customer_id":"c1","quantity":1,"unit_price":1}"#,
    ];
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let path = input.to_str().unwrap();
    let mut csv = Vec::new();
    let metrics = orders::run(&orders::Args::parse_from(["orders", "--input", path]), &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv,
        "window_start,window_end,product_id,orders,units,revenue,customers,max_order\n\
         2025-12-20T18:00:00Z,2025-12-20T18:01:00Z,\"p,2\",1,3,0.03,1,0.03\n\
         2025-12-20T18:00:00Z,2025-12-20T18:01:00Z,p1,2,3,25.00,2,20.00\n\
         2025-12-20T18:20:00Z,2025-12-20T18:21:00Z,p1,1,10000,10000000000.00,1,10000000000.00\n"
    );
    let reasons: Vec<(&str, u64)> = metrics.dead_letters.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(reasons, [("bad_product_id", 1), ("bad_quantity", 1), ("late", 1)]);

    let pg = streamflow_testkit::Postgres::start().unwrap();
    let args = orders::Args::parse_from(["orders", "--input", path, "--database-url", &pg.url()]);
    for _ in 0..2 {
        orders::run(&args, &mut Vec::new()).unwrap();
    }
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let stored: Vec<String> = client
        .query(
            "SELECT concat_ws(',', to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    CASE WHEN product_id LIKE '%,%' THEN '\"' || product_id || '\"' ELSE product_id END,
                    orders, units, revenue, customers, max_order)
             FROM orders_minute ORDER BY window_start, product_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(stored, csv.lines().skip(1).collect::<Vec<_>>());
    let dead: i64 = client.query_one("SELECT count(*) FROM dead_letters", &[]).unwrap().get(0);
    assert_eq!(dead, 3, "the second run resumed where the first ended");

    // The HTTP API answers for the orders with no code of their own: routes named after the
    // keys, rankings by the columns, over the table the sink made.
    let columns = streamflow_core::Schema::columns(&orders::orders_schema().unwrap()).clone();
    let store = streamflow_runner::api::Store::postgres(&pg.url(), &columns).unwrap();
    let port = streamflow_testkit::free_port();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let telemetry = std::sync::Arc::new(streamflow_runner::api::Telemetry::default());
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    runtime.spawn(streamflow_runner::api::serve(
        addr,
        store,
        telemetry,
        std::time::Duration::ZERO,
        std::future::pending(),
    ));
    streamflow_testkit::wait_for_port(port, std::time::Duration::from_secs(10)).unwrap();
    let get = |path: &str| {
        let (status, body) = streamflow_testkit::http_get(port, path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let top = get("/products/top?by=revenue&minutes=30&at=2025-12-20T18:30:00Z");
    assert_eq!(
        top["rows"],
        serde_json::json!([{"product_id": "p1", "revenue": 10000000025.0}, {"product_id": "p,2", "revenue": 0.03}])
    );
    let series = get("/products/p1/metrics?from=2025-12-20T18:00:00Z&to=2025-12-20T18:01:00Z");
    let row = &series["rows"][0];
    assert_eq!((&row["orders"], &row["customers"], &row["max_order"]), (&2.into(), &2.into(), &20.0.into()));
    let openapi = get("/openapi.json");
    let by = &openapi["paths"]["/products/top"]["get"]["parameters"];
    assert!(by.to_string().contains("max_order"), "{by}");
    let (status, _) = streamflow_testkit::http_get(port, "/products/top?by=bitrate");
    assert_eq!(status, 400);
}
