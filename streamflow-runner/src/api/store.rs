//! Where the API reads from: PostgreSQL through a connection pool, or the in-memory table of a
//! pipeline running without a database. Both answer the same questions the same way.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::Serialize;
use streamflow_core::{Cents, EventTime, Row, Table};
use tokio_postgres::NoTls;

use super::params::By;

/// How long a request waits for a pooled connection or a new one: past it, the database is
/// answered as unavailable rather than left hanging.
const DATABASE_WAIT: Duration = Duration::from_secs(1);

/// The rows and rankings the routes serve.
#[derive(Clone)]
pub enum Store {
    /// `stream_metrics_minute` and `stream_state` in PostgreSQL.
    Postgres(Pool),
    /// A running pipeline's in-memory table.
    Memory(Table),
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("database unavailable: {0}")]
pub struct Unavailable(
    /// What went wrong.
    pub String,
);

impl From<deadpool_postgres::PoolError> for Unavailable {
    fn from(error: deadpool_postgres::PoolError) -> Unavailable {
        Unavailable(error.to_string())
    }
}

impl From<tokio_postgres::Error> for Unavailable {
    fn from(error: tokio_postgres::Error) -> Unavailable {
        Unavailable(error.to_string())
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

/// A ranked stream of `/streams/top`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ranked {
    /// The stream.
    pub stream_id: String,
    /// Its value for the ranking: a sum over the windows, or the newest `active_viewers`.
    #[schema(value_type = f64)]
    pub value: Value,
}

/// A ranking value: a count, or an amount of money with exactly two decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A count.
    Count(i64),
    /// Money.
    Money(Cents),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Count(n) => serializer.serialize_i64(*n),
            Value::Money(cents) => {
                let raw =
                    serde_json::value::RawValue::from_string(cents.to_string()).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
        }
    }
}

impl Store {
    /// A pool on `url`; connections open when first needed.
    pub fn postgres(url: &str) -> anyhow::Result<Store> {
        let mut config: tokio_postgres::Config = url.parse()?;
        config.connect_timeout(DATABASE_WAIT);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(DATABASE_WAIT))
            .create_timeout(Some(DATABASE_WAIT))
            .recycle_timeout(Some(DATABASE_WAIT))
            .runtime(Runtime::Tokio1)
            .build()?;
        Ok(Store::Postgres(pool))
    }

    /// Whether the store answers.
    pub async fn health(&self) -> Result<(), Unavailable> {
        match self {
            Store::Postgres(pool) => {
                let client = pool.get().await?;
                client.simple_query("SELECT 1").await?;
                Ok(())
            }
            Store::Memory(_) => Ok(()),
        }
    }

    /// The newest window start, of `stream` or of any stream.
    pub async fn latest_window(&self, stream: Option<&str>) -> Result<Option<EventTime>, Unavailable> {
        match self {
            Store::Postgres(pool) => {
                let client = pool.get().await?;
                let statement = client
                    .prepare_cached(
                        "SELECT max(window_start) FROM stream_metrics_minute WHERE $1::text IS NULL OR stream_id = $1",
                    )
                    .await?;
                let row = client.query_one(&statement, &[&stream]).await?;
                Ok(row.get::<_, Option<std::time::SystemTime>>(0).map(EventTime::from))
            }
            Store::Memory(table) => {
                let state = table.read();
                Ok(match stream {
                    Some(stream) => state.newest.get(stream).copied(),
                    None => state.latest_window(),
                })
            }
        }
    }

    /// Rows whose window starts in `[from, to)`, of `stream` or of all, in `order` (then by
    /// stream), at most `limit`.
    pub async fn rows(
        &self,
        from: EventTime,
        to: EventTime,
        stream: Option<&str>,
        order: Order,
        limit: i64,
    ) -> Result<Vec<Row>, Unavailable> {
        match self {
            Store::Postgres(pool) => {
                let client = pool.get().await?;
                let direction = match order {
                    Order::NewestFirst => "DESC",
                    Order::OldestFirst => "ASC",
                };
                let statement = client
                    .prepare_cached(&format!(
                        "{ROW_COLUMNS} WHERE window_start >= $1 AND window_start < $2
                         AND ($3::text IS NULL OR stream_id = $3)
                         ORDER BY window_start {direction}, stream_id LIMIT $4"
                    ))
                    .await?;
                let rows = client.query(&statement, &[&time(from), &time(to), &stream, &limit]).await?;
                Ok(rows.iter().map(row).collect())
            }
            Store::Memory(table) => {
                let state = table.read();
                let matching = state.rows_between(from, to).filter(|r| stream.is_none_or(|s| r.row.stream_id == s));
                let mut rows: Vec<Row> = matching.map(|r| r.row.clone()).collect();
                if order == Order::NewestFirst {
                    rows.sort_by(|a, b| {
                        b.window_start.cmp(&a.window_start).then_with(|| a.stream_id.cmp(&b.stream_id))
                    });
                }
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(rows)
            }
        }
    }

    /// Each stream's newest row, by stream.
    pub async fn latest_per_stream(&self) -> Result<Vec<Row>, Unavailable> {
        match self {
            Store::Postgres(pool) => {
                let client = pool.get().await?;
                // stream_state names each stream's newest window: one index lookup per stream.
                let statement = client
                    .prepare_cached(&format!(
                        "{ROW_COLUMNS} JOIN stream_state s USING (stream_id, window_start) ORDER BY m.stream_id"
                    ))
                    .await?;
                Ok(client.query(&statement, &[]).await?.iter().map(row).collect())
            }
            Store::Memory(table) => Ok(table.read().newest_rows().map(|r| r.row.clone()).collect()),
        }
    }

    /// Streams ranked by `by` over windows starting in `[from, to)`, the `n` first (ties by
    /// stream).
    pub async fn top(&self, from: EventTime, to: EventTime, by: By, n: i64) -> Result<Vec<Ranked>, Unavailable> {
        match self {
            Store::Postgres(pool) => {
                let client = pool.get().await?;
                let statement = client.prepare_cached(by.ranking_sql()).await?;
                let rows = client.query(&statement, &[&time(from), &time(to), &n]).await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let value: i64 = r.get(1);
                        Ranked {
                            stream_id: r.get(0),
                            value: if by == By::DonationsUsd {
                                Value::Money(Cents(value))
                            } else {
                                Value::Count(value)
                            },
                        }
                    })
                    .collect())
            }
            Store::Memory(table) => {
                let state = table.read();
                let mut values: std::collections::BTreeMap<&str, (EventTime, i64)> = Default::default();
                for table_row in state.rows_between(from, to) {
                    let row = &table_row.row;
                    let entry = values.entry(&row.stream_id).or_insert((row.window_start, 0));
                    match by {
                        // The newest window's value.
                        By::ActiveViewers => {
                            if row.window_start >= entry.0 {
                                *entry = (row.window_start, by.of(row));
                            }
                        }
                        _ => entry.1 += by.of(row),
                    }
                }
                let mut ranked: Vec<(&str, i64)> = values.into_iter().map(|(s, (_, v))| (s, v)).collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                Ok(ranked
                    .into_iter()
                    .take(usize::try_from(n).unwrap_or(usize::MAX))
                    .map(|(stream, value)| Ranked {
                        stream_id: stream.to_owned(),
                        value: if by == By::DonationsUsd { Value::Money(Cents(value)) } else { Value::Count(value) },
                    })
                    .collect())
            }
        }
    }
}

/// The columns of a [`Row`], in its order, with donations in cents, from
/// `stream_metrics_minute m`.
const ROW_COLUMNS: &str = "SELECT m.window_start, m.window_end, m.stream_id, m.events, m.chat_messages,
    m.donations_count, (m.donations_usd * 100)::int8, m.viewer_joins, m.viewer_leaves, m.net_viewer_delta,
    m.unique_viewers, m.active_viewers FROM stream_metrics_minute m";

fn time(time: EventTime) -> std::time::SystemTime {
    time.into()
}

fn row(r: &tokio_postgres::Row) -> Row {
    let count = |i: usize| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
    Row {
        window_start: r.get::<_, std::time::SystemTime>(0).into(),
        window_end: r.get::<_, std::time::SystemTime>(1).into(),
        stream_id: r.get::<_, &str>(2).into(),
        events: count(3),
        chat_messages: count(4),
        donations_count: count(5),
        donations_usd: Cents(r.get(6)),
        viewer_joins: count(7),
        viewer_leaves: count(8),
        net_viewer_delta: r.get(9),
        unique_viewers: count(10),
        active_viewers: count(11),
    }
}
