//! The schema of `sql/`, applied as numbered migrations, each once, in a transaction.
//!
//! `schema_migrations` records what was applied; an advisory lock keeps two processes starting
//! together from applying the same migration twice. Applying again changes nothing. The tables
//! go into the session's current schema (the first of its `search_path`), so a pipeline can have
//! a schema of its own.
//!
//! A schema that already holds tables of these names that streamflow did not create (the
//! original Spark pipeline's, say) is left as it is, with an error naming them.

use postgres::Client;

/// The migrations, in order: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "001_tables.sql", include_str!("../../../sql/001_tables.sql")),
    (2, "002_pipelines.sql", include_str!("../../../sql/002_pipelines.sql")),
];

/// The tables the migrations create.
const TABLES: [&str; 6] = [
    "stream_metrics_minute",
    "stream_state",
    "dead_letters",
    "source_offsets",
    "pipeline_checkpoints",
    "stream_checkpoints",
];

/// Any number, the same in every process: the key of the advisory lock.
pub(super) const LOCK_KEY: i64 = 0x5354_5246_4c4f_5700; // "STRFLOW"

/// Why the schema could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] postgres::Error),
    /// The schema holds tables of these names that streamflow did not create; nothing was changed.
    #[error(
        "the schema {schema} already has tables that streamflow did not create: {tables} (the original pipeline's?). \
         Nothing was changed. Rename or drop them, or give streamflow another schema or database"
    )]
    ForeignTables {
        /// The schema.
        schema: String,
        /// The tables, comma-separated.
        tables: String,
    },
    /// The session has no schema to create tables in.
    #[error("no schema to create the tables in: the search_path names none that exists (create it first)")]
    NoSchema,
}

/// Applies the migrations not applied yet; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrationError> {
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    let schema: Option<String> = transaction.query_one("SELECT current_schema()", &[])?.get(0);
    let schema = schema.ok_or(MigrationError::NoSchema)?;
    let exists = |transaction: &mut postgres::Transaction<'_>, table: &str| -> Result<bool, postgres::Error> {
        let row = transaction
            .query_one("SELECT to_regclass(quote_ident(current_schema()) || '.' || $1) IS NOT NULL", &[&table])?;
        Ok(row.get(0))
    };
    if !exists(&mut transaction, "schema_migrations")? {
        let mut found = Vec::new();
        for table in TABLES {
            if exists(&mut transaction, table)? {
                found.push(table);
            }
        }
        if !found.is_empty() {
            return Err(MigrationError::ForeignTables { schema, tables: found.join(", ") });
        }
    }
    transaction.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )?;
    let applied: Vec<i32> =
        transaction.query("SELECT version FROM schema_migrations", &[])?.iter().map(|row| row.get(0)).collect();
    let mut newly = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        transaction.batch_execute(sql)?;
        transaction.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&version, &name])?;
        newly.push(version);
    }
    transaction.commit()?;
    Ok(newly)
}
