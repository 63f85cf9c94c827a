//! The statements of one commit, and the reading of the checkpoint back.
//!
//! The rows go in by binary `COPY` into a temporary staging table, then one
//! `INSERT … SELECT … ON CONFLICT` in key order moves them into the results; every other
//! statement is a bulk one over arrays (`UNNEST`), prepared once per connection. Every value
//! written is absolute, so writing the same batch twice (a retry after a commit whose answer was
//! lost) leaves the same tables. The first statement checks that this process still is the
//! pipeline's writer (see `fence`).
//!
//! No record can make a commit fail: keys were checked when decoded, stored text holds no
//! U+0000 ([`crate::StoredText`]), dead letters go in statements of bounded size however large
//! their payloads, and a decimal sum beyond `NUMERIC(18,s)` is stored at its bound, with a
//! warning. The statements of rows come from the column description.

use std::collections::BTreeMap;
use std::time::SystemTime;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Statement};

use super::config::PostgresConfig;
use crate::checkpoint::{Checkpoint, PartitionPosition};
use crate::schema::{Columns, GenericRow, Number, Row};
use crate::sink::{EpochBatch, RowChange};
use crate::time::EventTime;

/// A batch as the committer writes it: its rows as the values of their columns.
pub(super) type Commit = EpochBatch<GenericRow>;

impl Commit {
    /// The batch with its rows as values.
    pub(super) fn of<R: Row>(batch: &EpochBatch<R>, columns: &Columns) -> Commit {
        let generic = |row: &R| GenericRow {
            window_start: row.window_start(),
            window_end: row.window_end(),
            key: row.key().into(),
            values: (0..columns.len()).map(|i| row.value(i)).collect(),
        };
        EpochBatch {
            epoch: batch.epoch,
            rows: batch
                .rows
                .iter()
                .map(|change| match change {
                    RowChange::Update(row) => RowChange::Update(generic(row)),
                    RowChange::Final(row) => RowChange::Final(generic(row)),
                })
                .collect(),
            dead_letters: batch.dead_letters.clone(),
            checkpoint: batch.checkpoint.clone(),
        }
    }
}

/// The temporary table the rows of a commit are copied into; emptied at each commit.
const STAGED: &str = "streamflow_staged_rows";

/// The prepared statements of one connection.
pub(super) struct Statements {
    /// `COPY` of the rows into [`STAGED`], and the types of its columns.
    copy_rows: String,
    staged_types: Vec<Type>,
    rows: Statement,
    state: Option<Statement>,
    dead_letters: Statement,
    offsets: Statement,
    fence: Statement,
    closed_running: Statement,
    columns: Columns,
}

/// `alias`, an integer parameter, as a value of a column of `number`: decimals are sent as their
/// scaled integers.
fn value_sql(alias: &str, number: Number) -> String {
    match number {
        Number::Decimal { scale } if scale > 0 => format!("{alias}::numeric / {}", 10i64.pow(u32::from(scale))),
        _ => alias.to_owned(),
    }
}

/// The staging table of `columns`' rows, its `COPY` and the types of its columns, in order.
fn staging_sql(columns: &Columns) -> (String, String, Vec<Type>) {
    let values: Vec<String> = (0..columns.len()).map(|i| format!("c{i} int8")).collect();
    let create = format!(
        "CREATE TEMP TABLE IF NOT EXISTS {STAGED} (ws timestamptz, we timestamptz, k text, {}, fin bool)
         ON COMMIT DELETE ROWS",
        values.join(", ")
    );
    let names: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    let copy = format!("COPY {STAGED} (ws, we, k, {}, fin) FROM STDIN (FORMAT binary)", names.join(", "));
    let mut types = vec![Type::TIMESTAMPTZ, Type::TIMESTAMPTZ, Type::TEXT];
    types.extend((0..columns.len()).map(|_| Type::INT8));
    types.push(Type::BOOL);
    (create, copy, types)
}

/// The upsert of the staged rows, in key order (two writers of one table, were there ever two,
/// would lock its rows in the same order). The names are identifiers the description checked.
fn rows_sql(columns: &Columns) -> String {
    let (table, key) = (columns.table(), columns.key());
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let values: Vec<String> = columns.iter().enumerate().map(|(i, c)| value_sql(&format!("c{i}"), c.number)).collect();
    let updates: Vec<String> = names.iter().map(|n| format!("{n} = excluded.{n}")).collect();
    format!(
        "INSERT INTO {table} AS m (window_start, window_end, {key}, {names}, is_final, updated_at)
         SELECT ws, we, k, {values}, fin, now() FROM {STAGED} ORDER BY ws, k
         ON CONFLICT (window_start, {key}) DO UPDATE SET window_end = excluded.window_end, {updates},
             is_final = excluded.is_final, updated_at = excluded.updated_at",
        names = names.join(", "),
        values = values.join(", "),
        updates = updates.join(", "),
    )
}

/// The upsert of each key's running columns as of its newest window, keeping a newer one
/// already stored.
fn state_sql(columns: &Columns, table: &str) -> String {
    let key = columns.key();
    let running: Vec<_> = columns.running().map(|i| columns.get(i).expect("a column")).collect();
    let names: Vec<&str> = running.iter().map(|c| c.name.as_str()).collect();
    let arrays: Vec<String> = (0..names.len()).map(|i| format!("${}::int8[]", i + 3)).collect();
    let aliases: Vec<String> = (0..names.len()).map(|i| format!("r{i}")).collect();
    let values: Vec<String> = running.iter().enumerate().map(|(i, c)| value_sql(&format!("r{i}"), c.number)).collect();
    let updates: Vec<String> = names.iter().map(|n| format!("{n} = excluded.{n}")).collect();
    format!(
        "INSERT INTO {table} AS s ({key}, {names}, window_start, updated_at)
         SELECT k, {values}, ws, now() FROM UNNEST($1::text[], $2::timestamptz[], {arrays}) AS t(k, ws, {aliases})
         ON CONFLICT ({key}) DO UPDATE SET {updates}, window_start = excluded.window_start,
             updated_at = excluded.updated_at
         WHERE s.window_start <= excluded.window_start",
        names = names.join(", "),
        values = values.join(", "),
        aliases = aliases.join(", "),
        arrays = arrays.join(", "),
        updates = updates.join(", "),
    )
}

impl Statements {
    pub(super) fn prepare(client: &mut Client, columns: &Columns) -> Result<Statements, postgres::Error> {
        let state = match columns.state_table() {
            Some(table) if columns.running().next().is_some() => Some(client.prepare(&state_sql(columns, table))?),
            _ => None,
        };
        let (create_staged, copy_rows, staged_types) = staging_sql(columns);
        client.batch_execute(&create_staged)?;
        Ok(Statements {
            copy_rows,
            staged_types,
            rows: client.prepare(&rows_sql(columns))?,
            state,
            dead_letters: client.prepare(
                "INSERT INTO dead_letters (pipeline, topic, partition, \"offset\", reason, detail, event_id, key, payload)
                 SELECT $1, $2, p, o, r, d, e, k, b
                 FROM UNNEST($3::int4[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[])
                      AS t(p, o, r, d, e, k, b)
                 ON CONFLICT DO NOTHING",
            )?,
            offsets: client.prepare(
                "INSERT INTO source_offsets AS s (pipeline, topic, partition, next_offset, max_ts, replay_from,
                     replay_max_ts, updated_at)
                 SELECT $1, $2, p, n, m, r, rm, now()
                 FROM UNNEST($3::int4[], $4::int8[], $5::timestamptz[], $6::int8[], $7::timestamptz[]) AS t(p, n, m, r, rm)
                 ON CONFLICT (pipeline, topic, partition) DO UPDATE SET
                     next_offset = excluded.next_offset, max_ts = excluded.max_ts, replay_from = excluded.replay_from,
                     replay_max_ts = excluded.replay_max_ts, updated_at = excluded.updated_at",
            )?,
            fence: client.prepare(
                "UPDATE pipeline_checkpoints SET closed_through = coalesce($3, closed_through), updated_at = now()
                 WHERE pipeline = $1 AND generation = $2",
            )?,
            closed_running: client.prepare(
                "INSERT INTO stream_checkpoints (pipeline, stream_id, closed_running)
                 SELECT $1, k, string_to_array(r, ',')::int8[] FROM UNNEST($2::text[], $3::text[]) AS t(k, r)
                 ON CONFLICT (pipeline, stream_id) DO UPDATE SET closed_running = excluded.closed_running,
                     closed_net_viewers = NULL",
            )?,
            columns: columns.clone(),
        })
    }
}

/// What one commit wrote.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Written {
    pub rows: u64,
    pub dead_letters: u64,
}

/// The most payload bytes of dead letters one statement carries: far below the protocol's
/// 1 GiB message, whatever the records hold.
const DEAD_LETTER_BYTES_PER_STATEMENT: usize = 64 << 20;

/// The largest value `NUMERIC(18,s)` holds, in its smallest unit.
const MAX_STORED_DECIMAL: i64 = 999_999_999_999_999_999;

/// Writes `batch` in one transaction, if this process still is the pipeline's writer at
/// `generation`; `None` (and nothing written) when another process claimed it since.
pub(super) fn write(
    client: &mut Client,
    statements: &Statements,
    config: &PostgresConfig,
    generation: i64,
    batch: &Commit,
) -> Result<Option<Written>, postgres::Error> {
    let mut tx = client.transaction()?;
    let closed = batch.checkpoint.closed_through.map(SystemTime::from);
    if tx.execute(&statements.fence, &[&config.pipeline, &generation, &closed])? != 1 {
        return Ok(None);
    }

    if !batch.rows.is_empty() {
        let columns = &statements.columns;
        let rows: Vec<&GenericRow> = batch.rows.iter().map(RowChange::row).collect();
        let mut staged = BinaryCopyInWriter::new(tx.copy_in(&statements.copy_rows)?, &statements.staged_types);
        // The values of every row first, so that one vector of references serves all rows.
        let times: Vec<[SystemTime; 2]> = rows.iter().map(|r| [r.window_start.into(), r.window_end.into()]).collect();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let finals: Vec<bool> = batch.rows.iter().map(RowChange::is_final).collect();
        let values: Vec<Option<i64>> =
            rows.iter().flat_map(|row| (0..columns.len()).map(move |i| stored(columns, i, row))).collect();
        let mut fields: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(columns.len() + 4);
        for (i, ((time, key), fin)) in times.iter().zip(&keys).zip(&finals).enumerate() {
            fields.clear();
            fields.extend([&time[0] as &(dyn ToSql + Sync), &time[1], key]);
            fields.extend(values[i * columns.len()..(i + 1) * columns.len()].iter().map(|v| v as &(dyn ToSql + Sync)));
            fields.push(fin);
            staged.write(&fields)?;
        }
        staged.finish()?;
        tx.execute(&statements.rows, &[])?;

        if let Some(state) = &statements.state {
            // Each key's newest changed window; the statement keeps a newer one already stored.
            let mut newest: BTreeMap<&str, &GenericRow> = BTreeMap::new();
            for row in &rows {
                let entry = newest.entry(row.key.as_str()).or_insert(row);
                if row.window_start >= entry.window_start {
                    *entry = row;
                }
            }
            let keys: Vec<&str> = newest.keys().copied().collect();
            let windows: Vec<SystemTime> = newest.values().map(|r| r.window_start.into()).collect();
            let running: Vec<Vec<Option<i64>>> =
                columns.running().map(|i| newest.values().map(|r| stored(columns, i, r)).collect()).collect();
            let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&keys, &windows];
            parameters.extend(running.iter().map(|v| v as &(dyn ToSql + Sync)));
            tx.execute(state, &parameters)?;
        }
    }

    let mut letters = batch.dead_letters.as_slice();
    while !letters.is_empty() {
        let mut bytes = 0;
        let take = letters
            .iter()
            .position(|l| {
                bytes += l.payload.len() + l.key.as_ref().map_or(0, Vec::len);
                bytes > DEAD_LETTER_BYTES_PER_STATEMENT
            })
            .unwrap_or(letters.len())
            .max(1);
        let (chunk, rest) = letters.split_at(take);
        letters = rest;
        let partitions: Vec<i32> = chunk.iter().map(|l| partition(l.partition)).collect();
        let offsets: Vec<i64> = chunk.iter().map(|l| l.offset).collect();
        let reasons: Vec<&str> = chunk.iter().map(|l| l.reason.as_str()).collect();
        let details: Vec<Option<&str>> = chunk.iter().map(|l| l.detail.as_deref()).collect();
        let event_ids: Vec<Option<&str>> = chunk.iter().map(|l| l.event_id.as_deref()).collect();
        let keys: Vec<Option<&[u8]>> = chunk.iter().map(|l| l.key.as_deref()).collect();
        let payloads: Vec<&[u8]> = chunk.iter().map(|l| l.payload.as_slice()).collect();
        tx.execute(
            &statements.dead_letters,
            &[&config.pipeline, &config.topic, &partitions, &offsets, &reasons, &details, &event_ids, &keys, &payloads],
        )?;
    }

    let checkpoint = &batch.checkpoint;
    if !checkpoint.positions.is_empty() {
        let positions: Vec<&PartitionPosition> = checkpoint.positions.values().collect();
        let partitions: Vec<i32> = positions.iter().map(|p| partition(p.partition)).collect();
        let next: Vec<i64> = positions.iter().map(|p| p.next_offset).collect();
        let max_ts: Vec<Option<SystemTime>> = positions.iter().map(|p| p.max_ts.map(SystemTime::from)).collect();
        let replay: Vec<i64> = positions.iter().map(|p| p.replay_from).collect();
        let replay_ts: Vec<Option<SystemTime>> =
            positions.iter().map(|p| p.replay_max_ts.map(SystemTime::from)).collect();
        tx.execute(
            &statements.offsets,
            &[&config.pipeline, &config.topic, &partitions, &next, &max_ts, &replay, &replay_ts],
        )?;
    }
    if !checkpoint.closed_running.is_empty() {
        let keys: Vec<&str> = checkpoint.closed_running.keys().map(|k| k.as_str()).collect();
        // Arrays of arrays must be rectangular in PostgreSQL; each key's goes as text.
        let totals: Vec<String> = checkpoint
            .closed_running
            .values()
            .map(|totals| totals.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
            .collect();
        tx.execute(&statements.closed_running, &[&config.pipeline, &keys, &totals])?;
    }

    tx.commit()?;
    Ok(Some(Written { rows: batch.rows.len() as u64, dead_letters: batch.dead_letters.len() as u64 }))
}

/// Reads the checkpoint stored for the configured pipeline and topic.
pub(super) fn read_checkpoint(client: &mut Client, config: &PostgresConfig) -> Result<Checkpoint, postgres::Error> {
    let mut checkpoint = Checkpoint::default();
    for row in client.query(
        "SELECT partition, next_offset, max_ts, replay_from, replay_max_ts FROM source_offsets
         WHERE pipeline = $1 AND topic = $2",
        &[&config.pipeline, &config.topic],
    )? {
        let partition = u32::try_from(row.get::<_, i32>(0)).unwrap_or_default();
        checkpoint.positions.insert(
            partition,
            PartitionPosition {
                partition,
                next_offset: row.get(1),
                max_ts: row.get::<_, Option<SystemTime>>(2).map(EventTime::from),
                replay_from: row.get(3),
                replay_max_ts: row.get::<_, Option<SystemTime>>(4).map(EventTime::from),
            },
        );
    }
    if let Some(row) =
        client.query_opt("SELECT closed_through FROM pipeline_checkpoints WHERE pipeline = $1", &[&config.pipeline])?
    {
        checkpoint.closed_through = row.get::<_, Option<SystemTime>>(0).map(EventTime::from);
    }
    for row in client.query(
        "SELECT stream_id, coalesce(closed_running, ARRAY[closed_net_viewers]) FROM stream_checkpoints WHERE pipeline = $1",
        &[&config.pipeline],
    )? {
        checkpoint.closed_running.insert(row.get::<_, &str>(0).into(), row.get(1));
    }
    Ok(checkpoint)
}

/// Value `index` of `row` as its column can hold it: a decimal sum past `NUMERIC(18,s)` (ten
/// million donations of the largest amount in one window of one stream) is stored at its bound.
fn stored(columns: &Columns, index: usize, row: &GenericRow) -> Option<i64> {
    let value = row.value(index)?;
    let column = columns.get(index)?;
    if !matches!(column.number, Number::Decimal { .. }) {
        return Some(value);
    }
    if !(-MAX_STORED_DECIMAL..=MAX_STORED_DECIMAL).contains(&value) {
        tracing::warn!(window = %row.window_start, key = %row.key, column = %column.name, value,
            "A decimal of a window exceeds NUMERIC(18,s); stored at its bound.");
    }
    Some(value.clamp(-MAX_STORED_DECIMAL, MAX_STORED_DECIMAL))
}

fn partition(partition: crate::position::PartitionId) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}
