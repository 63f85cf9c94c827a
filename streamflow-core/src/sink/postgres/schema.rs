//! The schema of `sql/`, applied as numbered migrations, each once, in a transaction.
//!
//! `schema_migrations` records what was applied; an advisory lock keeps two processes starting
//! together from applying the same migration twice. Applying again changes nothing. The tables
//! go into the session's current schema (the first of its `search_path`), so a pipeline can have
//! a schema of its own.
//!
//! A schema that already holds tables of these names that streamflow did not create (the
//! original Spark pipeline's, say) is left as it is, with an error naming them.
//!
//! The results tables come from the pipeline's column description ([`results_tables`]): a table
//! that exists already must have the columns the description gives it.

use postgres::{Client, GenericClient};

use crate::schema::{Columns, Kind};

/// The migrations, in order: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "001_tables.sql", include_str!("../../../sql/001_tables.sql")),
    (2, "002_pipelines.sql", include_str!("../../../sql/002_pipelines.sql")),
    (3, "003_any_schema.sql", include_str!("../../../sql/003_any_schema.sql")),
    (4, "004_fillfactor.sql", include_str!("../../../sql/004_fillfactor.sql")),
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
    /// A results table exists with other columns than the description gives it.
    #[error(
        "the table {table} exists with other columns than this pipeline's: it has {found}, this pipeline writes \
         {wanted}. Nothing was changed. Give the pipeline another table or schema, or rename the table"
    )]
    OtherColumns {
        /// The table.
        table: String,
        /// Its columns, as found.
        found: String,
        /// The columns the description gives it.
        wanted: String,
    },
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

/// The columns of a results table the description gives: name, SQL type, nullable.
fn results_columns(columns: &Columns) -> Vec<(String, String, bool)> {
    let mut all = vec![
        ("window_start".to_owned(), "timestamptz".to_owned(), false),
        ("window_end".to_owned(), "timestamptz".to_owned(), false),
        (columns.key().to_owned(), "text".to_owned(), false),
    ];
    for column in columns.iter() {
        let nullable = matches!(column.kind, Kind::Min | Kind::Max);
        all.push((column.name.clone(), column.number.sql_type(), nullable));
    }
    all.push(("is_final".to_owned(), "boolean".to_owned(), false));
    all.push(("updated_at".to_owned(), "timestamptz".to_owned(), false));
    all
}

/// The columns of the state table: the key, each running column, the window it is as of.
fn state_columns(columns: &Columns) -> Vec<(String, String, bool)> {
    let mut all = vec![(columns.key().to_owned(), "text".to_owned(), false)];
    for index in columns.running() {
        let column = columns.get(index).expect("a running column");
        all.push((column.name.clone(), column.number.sql_type(), false));
    }
    all.push(("window_start".to_owned(), "timestamptz".to_owned(), false));
    all.push(("updated_at".to_owned(), "timestamptz".to_owned(), false));
    all
}

/// Creates the results table (and the state table) of `columns` when they do not exist, or
/// checks that they have the columns the description gives them. The names are identifiers the
/// description has checked.
pub fn results_tables(client: &mut impl GenericClient, columns: &Columns) -> Result<(), MigrationError> {
    let key = columns.key();
    let table = columns.table();
    ensure_table(
        client,
        table,
        &results_columns(columns),
        &format!("PRIMARY KEY (window_start, {key})"),
        &format!("CREATE INDEX IF NOT EXISTS {table}_by_{key} ON {table} ({key}, window_start DESC)"),
    )?;
    if let Some(state) = columns.state_table() {
        ensure_table(client, state, &state_columns(columns), &format!("PRIMARY KEY ({key})"), "")?;
    }
    Ok(())
}

fn ensure_table(
    client: &mut impl GenericClient,
    table: &str,
    wanted: &[(String, String, bool)],
    key: &str,
    index: &str,
) -> Result<(), MigrationError> {
    let found: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, format_type(a.atttypid, a.atttypmod)
             FROM information_schema.columns c
             JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
                                AND a.attname = c.column_name
             WHERE c.table_schema = current_schema() AND c.table_name = $1
             ORDER BY c.ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let normal = |t: &str| match t {
        "timestamp with time zone" => "timestamptz".to_owned(),
        other => other.to_owned(),
    };
    if found.is_empty() {
        let definitions: Vec<String> = wanted
            .iter()
            .map(|(name, sql_type, nullable)| {
                let default = match name.as_str() {
                    "is_final" => " DEFAULT false",
                    "updated_at" => " DEFAULT now()",
                    _ => "",
                };
                format!("{name} {sql_type}{}{default}", if *nullable { "" } else { " NOT NULL" })
            })
            .collect();
        // Room for HOT updates of open windows' rows, as sql/004_fillfactor.sql explains.
        client.batch_execute(&format!(
            "CREATE TABLE {table} ({}, {key}) WITH (fillfactor = 70)",
            definitions.join(", ")
        ))?;
        if !index.is_empty() {
            client.batch_execute(index)?;
        }
        return Ok(());
    }
    let found_names: Vec<(String, String)> = found.iter().map(|(n, t)| (n.clone(), normal(t))).collect();
    let wanted_names: Vec<(String, String)> = wanted.iter().map(|(n, t, _)| (n.clone(), t.clone())).collect();
    if found_names != wanted_names {
        let list = |columns: &[(String, String)]| {
            columns.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ")
        };
        return Err(MigrationError::OtherColumns {
            table: table.to_owned(),
            found: list(&found_names),
            wanted: list(&wanted_names),
        });
    }
    if !index.is_empty() {
        client.batch_execute(index)?;
    }
    Ok(())
}
