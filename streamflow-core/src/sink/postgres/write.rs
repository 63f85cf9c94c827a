//! The statements of one commit, and the reading of the checkpoint back.
//!
//! Every statement is a bulk one over arrays (`UNNEST`), prepared once per connection; every
//! value written is absolute, so writing the same batch twice (a retry after a commit whose
//! answer was lost) leaves the same tables. The first statement checks that this process still
//! is the pipeline's writer (see `fence`).
//!
//! No record can make a commit fail: stream ids were checked when decoded, stored text holds no
//! U+0000 ([`crate::StoredText`]), dead letters go in statements of bounded size however large
//! their payloads, and a money sum beyond `NUMERIC(18,2)` is stored at its bound, with a warning.

use std::collections::BTreeMap;
use std::time::SystemTime;

use postgres::{Client, Statement};

use super::config::PostgresConfig;
use crate::checkpoint::{Checkpoint, PartitionPosition};
use crate::event::{EventTime, StreamId};
use crate::sink::{EpochBatch, RowChange};

/// The prepared statements of one connection.
pub(super) struct Statements {
    rows: Statement,
    stream_state: Statement,
    dead_letters: Statement,
    offsets: Statement,
    fence: Statement,
    closed_audience: Statement,
}

impl Statements {
    pub(super) fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            rows: client.prepare(
                "INSERT INTO stream_metrics_minute AS m (window_start, window_end, stream_id, events, chat_messages,
                     donations_count, donations_usd, viewer_joins, viewer_leaves, net_viewer_delta, unique_viewers,
                     active_viewers, is_final, updated_at)
                 SELECT ws, we, sid, ev, cm, dc, cents::numeric / 100, vj, vl, nvd, uv, av, fin, now()
                 FROM UNNEST($1::timestamptz[], $2::timestamptz[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                             $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::bool[])
                      AS t(ws, we, sid, ev, cm, dc, cents, vj, vl, nvd, uv, av, fin)
                 ON CONFLICT (window_start, stream_id) DO UPDATE SET
                     window_end = excluded.window_end, events = excluded.events,
                     chat_messages = excluded.chat_messages, donations_count = excluded.donations_count,
                     donations_usd = excluded.donations_usd, viewer_joins = excluded.viewer_joins,
                     viewer_leaves = excluded.viewer_leaves, net_viewer_delta = excluded.net_viewer_delta,
                     unique_viewers = excluded.unique_viewers, active_viewers = excluded.active_viewers,
                     is_final = excluded.is_final, updated_at = excluded.updated_at",
            )?,
            stream_state: client.prepare(
                "INSERT INTO stream_state AS s (stream_id, active_viewers, window_start, updated_at)
                 SELECT sid, av, ws, now() FROM UNNEST($1::text[], $2::int8[], $3::timestamptz[]) AS t(sid, av, ws)
                 ON CONFLICT (stream_id) DO UPDATE SET
                     active_viewers = excluded.active_viewers, window_start = excluded.window_start,
                     updated_at = excluded.updated_at
                 WHERE s.window_start <= excluded.window_start",
            )?,
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
            closed_audience: client.prepare(
                "INSERT INTO stream_checkpoints (pipeline, stream_id, closed_net_viewers)
                 SELECT $1, sid, n FROM UNNEST($2::text[], $3::int8[]) AS t(sid, n)
                 ON CONFLICT (pipeline, stream_id) DO UPDATE SET closed_net_viewers = excluded.closed_net_viewers",
            )?,
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

/// The largest amount `NUMERIC(18,2)` holds, in cents.
const MAX_STORED_CENTS: i64 = 999_999_999_999_999_999;

/// Writes `batch` in one transaction, if this process still is the pipeline's writer at
/// `generation`; `None` (and nothing written) when another process claimed it since.
pub(super) fn write(
    client: &mut Client,
    statements: &Statements,
    config: &PostgresConfig,
    generation: i64,
    batch: &EpochBatch,
) -> Result<Option<Written>, postgres::Error> {
    let mut tx = client.transaction()?;
    let closed = batch.checkpoint.closed_through.map(SystemTime::from);
    if tx.execute(&statements.fence, &[&config.pipeline, &generation, &closed])? != 1 {
        return Ok(None);
    }

    if !batch.rows.is_empty() {
        let rows: Vec<_> = batch.rows.iter().map(RowChange::row).collect();
        let times = |f: fn(&crate::Row) -> EventTime| rows.iter().map(|r| SystemTime::from(f(r))).collect::<Vec<_>>();
        let ints = |f: fn(&crate::Row) -> i64| rows.iter().map(|r| f(r)).collect::<Vec<i64>>();
        let stream_ids: Vec<&str> = rows.iter().map(|r| r.stream_id.as_str()).collect();
        let finals: Vec<bool> = batch.rows.iter().map(RowChange::is_final).collect();
        tx.execute(
            &statements.rows,
            &[
                &times(|r| r.window_start),
                &times(|r| r.window_end),
                &stream_ids,
                &ints(|r| count(r.events)),
                &ints(|r| count(r.chat_messages)),
                &ints(|r| count(r.donations_count)),
                &ints(stored_cents),
                &ints(|r| count(r.viewer_joins)),
                &ints(|r| count(r.viewer_leaves)),
                &ints(|r| r.net_viewer_delta),
                &ints(|r| count(r.unique_viewers)),
                &ints(|r| count(r.active_viewers)),
                &finals,
            ],
        )?;

        // Each stream's newest changed window; the statement keeps a newer one already stored.
        let mut newest: BTreeMap<&str, (EventTime, u64)> = BTreeMap::new();
        for row in &rows {
            let entry = newest.entry(row.stream_id.as_str()).or_insert((row.window_start, row.active_viewers));
            if row.window_start >= entry.0 {
                *entry = (row.window_start, row.active_viewers);
            }
        }
        let ids: Vec<&str> = newest.keys().copied().collect();
        let active: Vec<i64> = newest.values().map(|(_, a)| count(*a)).collect();
        let windows: Vec<SystemTime> = newest.values().map(|(w, _)| SystemTime::from(*w)).collect();
        tx.execute(&statements.stream_state, &[&ids, &active, &windows])?;
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
    if !checkpoint.closed_audience.is_empty() {
        let streams: Vec<&str> = checkpoint.closed_audience.keys().map(StreamId::as_str).collect();
        let totals: Vec<i64> = checkpoint.closed_audience.values().copied().collect();
        tx.execute(&statements.closed_audience, &[&config.pipeline, &streams, &totals])?;
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
        "SELECT stream_id, closed_net_viewers FROM stream_checkpoints WHERE pipeline = $1",
        &[&config.pipeline],
    )? {
        checkpoint.closed_audience.insert(row.get::<_, &str>(0).into(), row.get(1));
    }
    Ok(checkpoint)
}

/// A row's donations as `NUMERIC(18,2)` can hold them: ten million donations of the largest
/// amount in one window of one stream are past it.
fn stored_cents(row: &crate::Row) -> i64 {
    let cents = row.donations_usd.0;
    if !(-MAX_STORED_CENTS..=MAX_STORED_CENTS).contains(&cents) {
        tracing::warn!(window = %row.window_start, stream = %row.stream_id, cents,
            "The donations of a window exceed NUMERIC(18,2); stored at its bound.");
    }
    cents.clamp(-MAX_STORED_CENTS, MAX_STORED_CENTS)
}

/// A count as a `bigint`.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn partition(partition: crate::PartitionId) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}
