//! One writer per pipeline, and results of one kind per schema (spec §4).
//!
//! ```text
//!  process A (writer)                         process B (same pipeline, started later)
//!  session lock (schema, pipeline) ◄── held   try the lock ... waits, saying who holds it
//!  claim: generation 7                         │
//!  commit: UPDATE … WHERE generation = 7 ✓     │
//!  (session lost; B takes the lock) ─────────► claim: generation 8, read the checkpoint
//!  reconnect: the lock is taken → fenced       commit: … WHERE generation = 8 ✓
//! ```
//! * **Settings.** The window size, the lateness, the columns, the results table and the
//!   source's topic are stored with the checkpoint; a run with other settings is refused before
//!   anything is written, naming what differs: resuming would mix rows computed two ways.
//! * **One pipeline per results table.** The results tables have no pipeline column, so a
//!   results table belongs to the pipeline that first claimed it; another pipeline writing the
//!   same table is refused, and can have a schema of its own (`options=-csearch_path=NAME` in
//!   the URL). Pipelines with tables of their own (their own columns) share a schema.
//! * **One writer.** The committer's session holds an advisory lock named after the schema and
//!   the pipeline; a second process waits until it is free. Every claim bumps the pipeline's
//!   generation, and every commit checks it in the same transaction, so a process whose session
//!   was lost while another one took over is fenced off instead of overwriting the newer
//!   writer's checkpoint.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient};

use super::config::PostgresConfig;
use super::schema::LOCK_KEY;
use super::Failure;
use crate::checkpoint::Settings;
use crate::error::{Error, SinkError};
use crate::position::{Offset, PartitionId};
use crate::time::WindowConfig;

/// The first key of the pipeline locks: any number, the same in every process.
const PIPELINE_LOCK_CLASS: i32 = 0x5354_5246; // "STRF"

/// How often a waiting process tries the lock again, and says again who holds it.
const RETRY_LOCK: Duration = Duration::from_millis(250);
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The lock `(class, key)` of `pipeline` in the session's current schema.
const LOCK_ARGS: &str = "$1::int4, hashtext(coalesce(current_schema(), '') || '.' || $2)";

/// Tries to take the writer's lock of `pipeline` for this session; whether it was taken.
pub(super) fn try_lock(client: &mut Client, pipeline: &str) -> Result<bool, postgres::Error> {
    let row =
        client.query_one(&format!("SELECT pg_try_advisory_lock({LOCK_ARGS})"), &[&PIPELINE_LOCK_CLASS, &pipeline])?;
    Ok(row.get(0))
}

/// Waits for the writer's lock of `pipeline`, saying every few seconds which session holds it.
pub(super) fn wait_for_lock(client: &mut Client, pipeline: &str) -> Result<(), postgres::Error> {
    let started = Instant::now();
    let mut reported: Option<Instant> = None;
    while !try_lock(client, pipeline)? {
        if reported.is_none_or(|at| at.elapsed() >= REPORT_WAIT) {
            reported = Some(Instant::now());
            let holder = holder(client, pipeline)?.unwrap_or_else(|| "another session".into());
            tracing::warn!(pipeline, holder = %holder, waited = ?started.elapsed().as_secs(),
                "Another process writes this pipeline; waiting for it to stop.");
        }
        std::thread::sleep(RETRY_LOCK);
    }
    if reported.is_some() {
        tracing::info!(pipeline, waited_seconds = started.elapsed().as_secs(), "Took over the pipeline.");
    }
    Ok(())
}

/// Who holds the writer's lock of `pipeline`, as the server knows the session.
fn holder(client: &mut Client, pipeline: &str) -> Result<Option<String>, postgres::Error> {
    let row = client.query_opt(
        "SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'local'), a.backend_start::text
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.classid = ($1::int4)::oid AND l.objid = (hashtext(coalesce(current_schema(), '') || '.' || $2))::oid
         LIMIT 1",
        &[&PIPELINE_LOCK_CLASS, &pipeline],
    )?;
    Ok(row.map(|row| {
        let (pid, name, host, since): (i32, String, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let name = if name.is_empty() { String::new() } else { format!(" ({name})") };
        format!("server process {pid}{name} from {host}, connected since {since}")
    }))
}

/// The results table of pipelines that recorded none: the only one there was then.
const LEGACY_RESULTS_TABLE: &str = "stream_metrics_minute";

/// Checks that the results table may hold `config.pipeline`'s results under `settings`: no other
/// pipeline's, and none computed under other settings.
fn check(client: &mut impl GenericClient, config: &PostgresConfig, settings: &Settings) -> Result<(), Failure> {
    let table = config.columns.table();
    let other = client.query_opt(
        "SELECT pipeline FROM pipeline_checkpoints WHERE pipeline <> $1 AND coalesce(results_table, $3) = $2
         UNION ALL
         SELECT s.pipeline FROM source_offsets s WHERE s.pipeline <> $1 AND $2 = $3
            AND NOT EXISTS (SELECT 1 FROM pipeline_checkpoints p WHERE p.pipeline = s.pipeline)
         LIMIT 1",
        &[&config.pipeline, &table, &LEGACY_RESULTS_TABLE],
    )?;
    if let Some(other) = other {
        let other: String = other.get(0);
        return Err(Failure::Refused(Error::rejected(format!(
            "the tables of this schema, {table} among them, hold the results of pipeline {other:?}; pipeline {:?} would overwrite \
             them. Give it a schema of its own (create it, and add options=-csearch_path%3DNAME to the database \
             URL) or a database of its own",
            config.pipeline
        ))));
    }

    let stored = client.query_opt(
        "SELECT topic, window_seconds, lateness_seconds, columns, results_table FROM pipeline_checkpoints WHERE pipeline = $1",
        &[&config.pipeline],
    )?;
    let mut differences = Vec::new();
    let mut stored_topics: Vec<String> = client
        .query("SELECT DISTINCT topic FROM source_offsets WHERE pipeline = $1", &[&config.pipeline])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(row) = &stored {
        stored_topics.extend(row.get::<_, Option<String>>(0));
        // Results stored before the settings were recorded are taken to have this run's.
        if let (Some(size), Some(lateness)) = (row.get::<_, Option<i32>>(1), row.get::<_, Option<i32>>(2)) {
            let window = WindowConfig::new(size as u32, lateness as u32)
                .map_err(|e| Failure::Refused(Error::rejected(format!("the stored settings are not valid: {e}"))))?;
            let columns = row.get::<_, Option<String>>(3).unwrap_or_default();
            differences.extend(settings.differences(&Settings { window, columns }));
        }
        let stored_table = row.get::<_, Option<String>>(4).unwrap_or_else(|| LEGACY_RESULTS_TABLE.to_owned());
        if stored_table != table {
            differences.push(format!("the results table (stored results: {stored_table}, this run: {table})"));
        }
    }
    stored_topics.sort();
    stored_topics.dedup();
    if let Some(topic) = stored_topics.iter().find(|topic| **topic != config.topic) {
        differences.insert(0, format!("the source (stored results: {topic:?}, this run: {:?})", config.topic));
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(Failure::Refused(Error::configuration(format!(
        "pipeline {:?} cannot resume here: its stored results were computed with other settings — {}. \
         Resuming would mix rows computed both ways. Run it with the stored settings, or start afresh in \
         another schema or database, or after deleting its results (`streamflow reset`)",
        config.pipeline,
        differences.join("; ")
    ))))
}

/// Claims the pipeline for this session: refuses at once what can never be resumed, waits for
/// the writer's lock, then records the settings and bumps the generation. Returns the
/// generation every commit of this session must find.
pub(super) fn claim(client: &mut Client, config: &PostgresConfig, settings: &Settings) -> Result<i64, Failure> {
    // Refused now rather than after waiting for a writer that may never stop.
    check(client, config, settings)?;
    wait_for_lock(client, &config.pipeline)?;
    let mut transaction = client.transaction()?;
    // One claim at a time in this schema, so two pipelines starting together cannot both pass.
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    check(&mut transaction, config, settings)?;
    let size = settings.window.size_secs() as i32;
    let lateness = settings.window.lateness_secs() as i32;
    let row = transaction.query_one(
        "INSERT INTO pipeline_checkpoints AS p (pipeline, topic, window_seconds, lateness_seconds, columns, results_table,
             generation, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, now())
         ON CONFLICT (pipeline) DO UPDATE SET topic = excluded.topic, window_seconds = excluded.window_seconds,
             lateness_seconds = excluded.lateness_seconds, columns = excluded.columns,
             results_table = excluded.results_table, generation = p.generation + 1, updated_at = now()
         RETURNING generation",
        &[&config.pipeline, &config.topic, &size, &lateness, &settings.columns, &config.columns.table()],
    )?;
    transaction.commit()?;
    Ok(row.get(0))
}

/// Takes the writer's lock again on a new session of a claimed pipeline: fenced off when
/// another process holds it now. (When another process took it and let it go meanwhile, the
/// generation check of the next commit fences this one off.)
pub(super) fn relock(client: &mut Client, pipeline: &str) -> Result<(), Failure> {
    if try_lock(client, pipeline)? {
        return Ok(());
    }
    let holder = holder(client, pipeline)?.unwrap_or_else(|| "another session".into());
    Err(Failure::Refused(fenced(pipeline, &format!("{holder} holds its lock now"))))
}

/// The error of a writer that another process took over from.
pub(super) fn fenced(pipeline: &str, why: &str) -> SinkError {
    Error::rejected(format!(
        "pipeline {pipeline:?} is written by another process ({why}); this one stops so as not to overwrite its \
         results. Nothing is lost: the other process goes on from what was committed"
    ))
}

/// What [`super::PostgresSink::reset`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reset {
    /// Rows of `stream_metrics_minute`.
    pub rows: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Partitions whose offsets were forgotten.
    pub partitions: u64,
}

/// Deletes `pipeline`'s results and checkpoint from this schema, so that its next run starts
/// afresh; refused while a process writes it.
pub(super) fn reset(client: &mut Client, pipeline: &str) -> Result<Reset, Failure> {
    if !try_lock(client, pipeline)? {
        let holder = holder(client, pipeline)?.unwrap_or_else(|| "another session".into());
        return Err(Failure::Refused(Error::rejected(format!(
            "pipeline {pipeline:?} is running ({holder}); stop it before resetting it"
        ))));
    }
    let result = (|| {
        let mut transaction = client.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
        let owned = transaction.query_opt(
            "SELECT coalesce(results_table, $2) FROM pipeline_checkpoints WHERE pipeline = $1
             UNION ALL SELECT $2 FROM source_offsets WHERE pipeline = $1 LIMIT 1",
            &[&pipeline, &LEGACY_RESULTS_TABLE],
        )?;
        let mut reset = Reset::default();
        if let Some(owned) = owned {
            // The results table belongs to this pipeline alone (see the module documentation);
            // its name comes from the pipeline's own row, and is checked as an identifier.
            let table: String = owned.get(0);
            if table.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                reset.rows = transaction.execute(&format!("DELETE FROM {table}"), &[])?;
                let state =
                    if table == LEGACY_RESULTS_TABLE { "stream_state".to_owned() } else { format!("{table}_state") };
                let exists: bool = transaction
                    .query_one("SELECT to_regclass(quote_ident(current_schema()) || '.' || $1) IS NOT NULL", &[&state])?
                    .get(0);
                if exists {
                    transaction.execute(&format!("DELETE FROM {state}"), &[])?;
                }
            }
        }
        reset.dead_letters = transaction.execute("DELETE FROM dead_letters WHERE pipeline = $1", &[&pipeline])?;
        reset.partitions = transaction.execute("DELETE FROM source_offsets WHERE pipeline = $1", &[&pipeline])?;
        transaction.execute("DELETE FROM stream_checkpoints WHERE pipeline = $1", &[&pipeline])?;
        transaction.execute("DELETE FROM pipeline_checkpoints WHERE pipeline = $1", &[&pipeline])?;
        transaction.commit()?;
        Ok(reset)
    })();
    client.execute(&format!("SELECT pg_advisory_unlock({LOCK_ARGS})"), &[&PIPELINE_LOCK_CLASS, &pipeline])?;
    result.map_err(Failure::Database)
}

/// What [`super::PostgresSink::reset_offsets`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetsReset {
    /// Each partition moved: from, to.
    pub moved: Vec<(PartitionId, Offset, Offset)>,
    /// Rows made final, their windows closed for good.
    pub frozen_rows: u64,
}

/// Moves the stored position of each partition of `targets` forward to its offset, so that the
/// stopped pipeline's next run starts there (records between are skipped: a gap the operator
/// accepts, after a broker deleted them). Moving back would count records twice and is refused.
/// The windows the pipeline held open cannot be rebuilt without the skipped records, so their
/// rows are made final as they stand, and the running columns go on from each key's last shown
/// values. Refused while a process writes the pipeline.
pub(super) fn reset_offsets(
    client: &mut Client,
    config: &PostgresConfig,
    targets: &BTreeMap<PartitionId, Offset>,
) -> Result<OffsetsReset, Failure> {
    let pipeline = config.pipeline.as_str();
    if !try_lock(client, pipeline)? {
        let holder = holder(client, pipeline)?.unwrap_or_else(|| "another session".into());
        return Err(Failure::Refused(Error::rejected(format!(
            "pipeline {pipeline:?} is running ({holder}); stop it before moving its offsets"
        ))));
    }
    let result = (|| -> Result<OffsetsReset, Failure> {
        let mut transaction = client.transaction()?;
        let stored: BTreeMap<PartitionId, Offset> = transaction
            .query(
                "SELECT partition, next_offset FROM source_offsets WHERE pipeline = $1 AND topic = $2",
                &[&pipeline, &config.topic],
            )?
            .iter()
            .map(|row| (row.get::<_, i32>(0) as PartitionId, row.get::<_, i64>(1)))
            .collect();
        let backwards: Vec<String> = targets
            .iter()
            .filter_map(|(p, to)| {
                stored.get(p).filter(|&&at| at > *to).map(|at| format!("partition {p} from {at} to {to}"))
            })
            .collect();
        if !backwards.is_empty() {
            return Err(Failure::Refused(Error::rejected(format!(
                "moving back ({}) would count those records twice: to read them again, start afresh with \
                 `streamflow reset` and replay",
                backwards.join(", ")
            ))));
        }
        let mut reset = OffsetsReset::default();
        for (&partition, &to) in targets {
            let from = stored.get(&partition).copied().unwrap_or(0);
            if stored.contains_key(&partition) && from == to {
                continue;
            }
            transaction.execute(
                "INSERT INTO source_offsets (pipeline, topic, partition, next_offset, replay_from)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (pipeline, topic, partition) DO UPDATE
                 SET next_offset = $4, replay_from = $4, replay_max_ts = source_offsets.max_ts",
                &[&pipeline, &config.topic, &(partition as i32), &to],
            )?;
            reset.moved.push((partition, from, to));
        }
        if !reset.moved.is_empty() {
            // The names come from the column description, checked as identifiers.
            let columns = &config.columns;
            let table = columns.table();
            reset.frozen_rows =
                transaction.execute(&format!("UPDATE {table} SET is_final = true WHERE NOT is_final"), &[])?;
            transaction.execute(
                &format!(
                    "UPDATE pipeline_checkpoints SET closed_through =
                         greatest(closed_through, (SELECT max(window_end) FROM {table}))
                     WHERE pipeline = $1"
                ),
                &[&pipeline],
            )?;
            let running: Vec<&str> =
                columns.running().map(|i| columns.get(i).expect("a column").name.as_str()).collect();
            if let (Some(state), false) = (columns.state_table(), running.is_empty()) {
                let key = columns.key();
                transaction.execute(
                    &format!(
                        "INSERT INTO stream_checkpoints (pipeline, stream_id, closed_running)
                         SELECT $1, {key}, ARRAY[{}]::int8[] FROM {state}
                         ON CONFLICT (pipeline, stream_id) DO UPDATE SET closed_running = excluded.closed_running",
                        running.join(", ")
                    ),
                    &[&pipeline],
                )?;
            }
        }
        transaction.commit()?;
        Ok(reset)
    })();
    client.execute(&format!("SELECT pg_advisory_unlock({LOCK_ARGS})"), &[&PIPELINE_LOCK_CLASS, &pipeline])?;
    result
}
