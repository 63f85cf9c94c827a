//! Where the API reads from: PostgreSQL through a connection pool, or the in-memory table of a
//! pipeline running without a database. Both answer the same questions the same way, with rows
//! as the values of the columns of one description.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use streamflow_core::schema::{Columns, GenericRow, Number, Row};
use streamflow_core::sink::postgres::connect::Endpoint;
use streamflow_core::{EventTime, Table};

use super::params::{By, Ranking};

/// How long a request waits for a pooled connection or a new one: past it, the database is
/// answered as unavailable rather than left hanging.
const DATABASE_WAIT: Duration = Duration::from_secs(1);

/// The rows and rankings the routes serve, of one column description.
#[derive(Clone)]
pub struct Store {
    columns: Arc<Columns>,
    backend: Backend,
    /// The freshness read last, and when: every answer carries it, and one query for it every
    /// [`FRESHNESS_TTL`] serves them all.
    freshness: Arc<std::sync::Mutex<Option<(std::time::Instant, Freshness)>>>,
}

/// How long the freshness read from the database is given with answers: far below the commit
/// interval, and a fraction of the cost of reading it for each answer.
pub const FRESHNESS_TTL: Duration = Duration::from_millis(100);

#[derive(Clone)]
enum Backend {
    /// The results table (and the state table) in PostgreSQL, and its statements.
    Postgres(Pool, Arc<Queries>),
    /// A running pipeline's in-memory table.
    Memory(Arc<dyn MemoryRows>),
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("database unavailable: {0}")]
pub struct Unavailable(
    /// What went wrong.
    pub String,
);

/// An error and its causes, as one line: "error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer" says more than its first part.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        cause = error.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for Unavailable {
    fn from(error: deadpool_postgres::PoolError) -> Unavailable {
        Unavailable(with_causes(&error))
    }
}

impl From<tokio_postgres::Error> for Unavailable {
    fn from(error: tokio_postgres::Error) -> Unavailable {
        Unavailable(with_causes(&error))
    }
}

/// The order of rows in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The newest window first.
    NewestFirst,
    /// The oldest window first.
    OldestFirst,
}

/// How fresh the answers are: the pipeline watermark, through which windows are final, and the
/// time of the last commit. A client tells a quiet key from a stale pipeline by them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// The pipeline watermark at the last commit.
    pub watermark: Option<EventTime>,
    /// When the last commit was.
    pub last_commit: Option<SystemTime>,
}

/// A ranked key of `/streams/top`: the key and its value for the ranking (a scaled integer for a
/// decimal column), `None` for a min or max no window had.
pub type Ranked = (String, Option<i64>);

/// The rows of a table in memory, whatever its row type.
pub trait MemoryRows: Send + Sync {
    /// Rows whose window starts in `[from, to)`, in (window, key) order.
    fn between(&self, from: EventTime, to: EventTime) -> Vec<GenericRow>;
    /// Each key's newest row, in key order.
    fn newest(&self) -> Vec<GenericRow>;
    /// The newest window start, of `key` or of any.
    fn latest_window(&self, key: Option<&str>) -> Option<EventTime>;
    /// How fresh the table is.
    fn freshness(&self) -> Freshness;
    /// Dead letters by reason.
    fn dead_letters(&self) -> BTreeMap<String, u64>;
}

fn generic<R: Row>(row: &R, columns: usize) -> GenericRow {
    GenericRow {
        window_start: row.window_start(),
        window_end: row.window_end(),
        key: row.key().into(),
        values: (0..columns).map(|i| row.value(i)).collect(),
    }
}

/// A table and how many columns its rows have.
struct MemoryTable<R>(Table<R>, usize);

impl<R: Row> MemoryRows for MemoryTable<R> {
    fn between(&self, from: EventTime, to: EventTime) -> Vec<GenericRow> {
        self.0.read().rows_between(from, to).map(|r| generic(&r.row, self.1)).collect()
    }
    fn newest(&self) -> Vec<GenericRow> {
        self.0.read().newest_rows().map(|r| generic(&r.row, self.1)).collect()
    }
    fn latest_window(&self, key: Option<&str>) -> Option<EventTime> {
        let state = self.0.read();
        match key {
            Some(key) => state.newest.get(key).copied(),
            None => state.latest_window(),
        }
    }
    fn freshness(&self) -> Freshness {
        let state = self.0.read();
        Freshness { watermark: state.checkpoint.closed_through, last_commit: state.applied_at }
    }
    fn dead_letters(&self) -> BTreeMap<String, u64> {
        self.0.read().dead_letter_counts.iter().map(|(reason, n)| (reason.as_str().to_owned(), *n)).collect()
    }
}

/// The statements of a description, built once; names come from the description, which checked
/// them as identifiers, and every value is bound.
struct Queries {
    rows_newest_first: String,
    rows_oldest_first: String,
    latest_window: String,
    latest_per_key: String,
    /// Per column, the ranking statement, for the ranked ones.
    rankings: Vec<Option<String>>,
    /// The watermark and last commit of the pipelines writing the table.
    freshness: String,
}

impl Queries {
    fn new(columns: &Columns) -> Queries {
        let (table, key) = (columns.table(), columns.key());
        let value = |name: &str, number: Number| match number {
            Number::Decimal { scale } if scale > 0 => format!("({name} * {})::int8", 10i64.pow(u32::from(scale))),
            _ => name.to_owned(),
        };
        let selected: Vec<String> = columns.iter().map(|c| value(&format!("m.{}", c.name), c.number)).collect();
        let select = format!("SELECT m.window_start, m.window_end, m.{key}, {} FROM {table} m", selected.join(", "));
        let rows = |direction: &str| {
            format!(
                "{select} WHERE m.window_start >= $1 AND m.window_start < $2 AND ($3::text IS NULL OR m.{key} = $3)
                 ORDER BY m.window_start {direction}, m.{key} LIMIT $4"
            )
        };
        let latest_per_key = match columns.state_table() {
            // The state table names each key's newest window: one index lookup per key.
            Some(state) => format!(
                "{select} JOIN {state} s ON s.{key} = m.{key} AND s.window_start = m.window_start ORDER BY m.{key}"
            ),
            None => format!("SELECT DISTINCT ON (m.{key}) * FROM ({select}) m ORDER BY m.{key}, m.window_start DESC"),
        };
        let range = format!("FROM {table} WHERE window_start >= $1 AND window_start < $2");
        let rankings = columns
            .iter()
            .map(|column| {
                column.ranked.then(|| {
                    let v = value(&column.name, column.number);
                    match Ranking::of(column.kind) {
                        Ranking::Sum => format!("SELECT {key}, sum({v})::int8 AS v {range} GROUP BY {key} ORDER BY 2 DESC, {key} LIMIT $3"),
                        Ranking::Min => format!("SELECT {key}, min({v}) AS v {range} GROUP BY {key} ORDER BY 2 DESC NULLS LAST, {key} LIMIT $3"),
                        Ranking::Max => format!("SELECT {key}, max({v}) AS v {range} GROUP BY {key} ORDER BY 2 DESC NULLS LAST, {key} LIMIT $3"),
                        Ranking::Newest => format!(
                            "SELECT {key}, v FROM (SELECT DISTINCT ON ({key}) {key}, {v} AS v {range}
                             ORDER BY {key}, window_start DESC) newest ORDER BY 2 DESC, {key} LIMIT $3"
                        ),
                    }
                })
            })
            .collect();
        Queries {
            rows_newest_first: rows("DESC"),
            rows_oldest_first: rows("ASC"),
            latest_window: format!("SELECT max(window_start) FROM {table} WHERE $1::text IS NULL OR {key} = $1"),
            latest_per_key,
            rankings,
            freshness: "SELECT max(closed_through), max(updated_at) FROM pipeline_checkpoints
                        WHERE coalesce(results_table, 'stream_metrics_minute') = $1"
                .to_owned(),
        }
    }
}

impl Store {
    /// A pool on `url` for rows of `columns`; connections open when first needed.
    pub fn postgres(url: &str, columns: &Columns) -> anyhow::Result<Store> {
        let endpoint = Endpoint::parse(url)?;
        let mut config = endpoint.config().clone();
        config.connect_timeout(DATABASE_WAIT);
        let manager =
            Manager::from_config(config, endpoint.tls(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(DATABASE_WAIT))
            .create_timeout(Some(DATABASE_WAIT))
            .recycle_timeout(Some(DATABASE_WAIT))
            .runtime(Runtime::Tokio1)
            .build()?;
        Ok(Store {
            columns: Arc::new(columns.clone()),
            backend: Backend::Postgres(pool, Arc::new(Queries::new(columns))),
            freshness: Arc::default(),
        })
    }

    /// A running pipeline's table, of rows of `columns`.
    pub fn memory<R: Row>(table: Table<R>, columns: &Columns) -> Store {
        Store {
            columns: Arc::new(columns.clone()),
            backend: Backend::Memory(Arc::new(MemoryTable(table, columns.len()))),
            freshness: Arc::default(),
        }
    }

    /// The columns of the rows.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Whether the store answers.
    pub async fn health(&self) -> Result<(), Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, _) => {
                let client = pool.get().await?;
                client.simple_query("SELECT 1").await?;
                Ok(())
            }
            Backend::Memory(_) => Ok(()),
        }
    }

    /// The newest window start, of `key` or of any key.
    pub async fn latest_window(&self, key: Option<&str>) -> Result<Option<EventTime>, Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, queries) => {
                let client = pool.get().await?;
                let statement = client.prepare_cached(&queries.latest_window).await?;
                let row = client.query_one(&statement, &[&key]).await?;
                Ok(row.get::<_, Option<std::time::SystemTime>>(0).map(EventTime::from))
            }
            Backend::Memory(table) => Ok(table.latest_window(key)),
        }
    }

    /// Rows whose window starts in `[from, to)`, of `key` or of all, in `order` (then by key), at
    /// most `limit`.
    pub async fn rows(
        &self,
        from: EventTime,
        to: EventTime,
        key: Option<&str>,
        order: Order,
        limit: i64,
    ) -> Result<Vec<GenericRow>, Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, queries) => {
                let client = pool.get().await?;
                let sql = match order {
                    Order::NewestFirst => &queries.rows_newest_first,
                    Order::OldestFirst => &queries.rows_oldest_first,
                };
                let statement = client.prepare_cached(sql).await?;
                let rows = client.query(&statement, &[&time(from), &time(to), &key, &limit]).await?;
                Ok(rows.iter().map(|r| self.row(r)).collect())
            }
            Backend::Memory(table) => {
                let mut rows: Vec<GenericRow> =
                    table.between(from, to).into_iter().filter(|r| key.is_none_or(|k| r.key == k)).collect();
                if order == Order::NewestFirst {
                    rows.sort_by(|a, b| b.window_start.cmp(&a.window_start).then_with(|| a.key.cmp(&b.key)));
                }
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(rows)
            }
        }
    }

    /// Each key's newest row, by key.
    pub async fn latest_per_key(&self) -> Result<Vec<GenericRow>, Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, queries) => {
                let client = pool.get().await?;
                let statement = client.prepare_cached(&queries.latest_per_key).await?;
                Ok(client.query(&statement, &[]).await?.iter().map(|r| self.row(r)).collect())
            }
            Backend::Memory(table) => Ok(table.newest()),
        }
    }

    /// Keys ranked by `by` over windows starting in `[from, to)`, the `n` first (ties by key).
    pub async fn top(&self, from: EventTime, to: EventTime, by: By, n: i64) -> Result<Vec<Ranked>, Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, queries) => {
                let client = pool.get().await?;
                let sql =
                    queries.rankings[by.column].as_deref().ok_or_else(|| Unavailable("no such ranking".into()))?;
                let statement = client.prepare_cached(sql).await?;
                let rows = client.query(&statement, &[&time(from), &time(to), &n]).await?;
                Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<i64>>(1))).collect())
            }
            Backend::Memory(table) => {
                let ranking = Ranking::of(self.columns.get(by.column).expect("a ranked column").kind);
                let mut values: std::collections::BTreeMap<String, Option<i64>> = Default::default();
                // Rows come in window order: the newest window's value is the last one seen.
                for row in table.between(from, to) {
                    let value = row.value(by.column);
                    let entry = values.entry(row.key.to_string()).or_insert(None);
                    *entry = match (ranking, *entry, value) {
                        (Ranking::Newest, old, new) => new.or(old),
                        (_, old, None) => old,
                        (_, None, new) => new,
                        (Ranking::Sum, Some(old), Some(new)) => Some(old.wrapping_add(new)),
                        (Ranking::Min, Some(old), Some(new)) => Some(old.min(new)),
                        (Ranking::Max, Some(old), Some(new)) => Some(old.max(new)),
                    };
                }
                let mut ranked: Vec<Ranked> = values.into_iter().collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                ranked.truncate(usize::try_from(n).unwrap_or(usize::MAX));
                Ok(ranked)
            }
        }
    }

    /// How fresh the answers are. A store that cannot say (an older schema, a database that
    /// does not answer) says nothing rather than failing the answer it comes with.
    pub async fn freshness(&self) -> Freshness {
        match &self.backend {
            Backend::Postgres(pool, queries) => {
                let kept = *self.freshness.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((_, freshness)) = kept.filter(|(at, _)| at.elapsed() < FRESHNESS_TTL) {
                    return freshness;
                }
                let read = async {
                    let client = pool.get().await.ok()?;
                    let statement = client.prepare_cached(&queries.freshness).await.ok()?;
                    let row = client.query_one(&statement, &[&self.columns.table()]).await.ok()?;
                    Some(Freshness {
                        watermark: row.get::<_, Option<SystemTime>>(0).map(EventTime::from),
                        last_commit: row.get(1),
                    })
                };
                // What could not be read is kept too: an older schema has no freshness to give.
                let freshness = read.await.unwrap_or_default();
                *self.freshness.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((std::time::Instant::now(), freshness));
                freshness
            }
            Backend::Memory(table) => table.freshness(),
        }
    }

    /// Dead letters by reason.
    pub async fn dead_letters(&self) -> Result<BTreeMap<String, u64>, Unavailable> {
        match &self.backend {
            Backend::Postgres(pool, _) => {
                let client = pool.get().await?;
                let statement =
                    client.prepare_cached("SELECT reason, count(*) FROM dead_letters GROUP BY reason").await?;
                let rows = client.query(&statement, &[]).await?;
                Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect())
            }
            Backend::Memory(table) => Ok(table.dead_letters()),
        }
    }

    /// A row of the results table as the description's values.
    fn row(&self, r: &tokio_postgres::Row) -> GenericRow {
        GenericRow {
            window_start: r.get::<_, std::time::SystemTime>(0).into(),
            window_end: r.get::<_, std::time::SystemTime>(1).into(),
            key: r.get::<_, &str>(2).into(),
            values: (0..self.columns.len()).map(|i| r.get::<_, Option<i64>>(i + 3)).collect(),
        }
    }
}

fn time(time: EventTime) -> std::time::SystemTime {
    time.into()
}
