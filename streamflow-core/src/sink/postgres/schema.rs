//! The schema of `sql/`, applied as numbered migrations, each once, in a transaction.
//!
//! `schema_migrations` records what was applied; an advisory lock keeps two processes starting
//! together from applying the same migration twice. Applying again changes nothing.

use postgres::Client;

/// The migrations, in order: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "001_tables.sql", include_str!("../../../sql/001_tables.sql"))];

/// Any number, the same in every process: the key of the advisory lock.
const LOCK_KEY: i64 = 0x5354_5246_4c4f_5700; // "STRFLOW"

/// Applies the migrations not applied yet; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
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
