//! How the Postgres sink connects and commits.

use std::time::Duration;

use crate::schema::Columns;
use crate::streams::LiveStreams;

/// The Postgres sink's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// The pipeline's name: its offsets, checkpoints and dead letters are stored under it.
    pub pipeline: String,
    /// The name of the source whose offsets are stored (a Kafka topic, an input file).
    pub topic: String,
    /// At most one transaction per interval: the epochs completed meanwhile are merged into it.
    pub commit_interval: Duration,
    /// The first wait before retrying after a failure that may pass (the database is down or
    /// restarting); it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest wait between two retries.
    pub max_backoff: Duration,
    /// Epoch batches waiting to be committed before the pipeline waits for the database.
    pub max_pending_batches: usize,
    /// The columns of the rows: the results table and its upsert are made from them.
    pub columns: Columns,
}

impl PostgresConfig {
    /// The default commit interval: 500 ms.
    pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(500);

    /// Settings for `url`, `pipeline` and `topic`, the rest at their defaults, for the rows of
    /// the built-in live-stream schema ([`PostgresConfig::with_columns`] for another).
    pub fn new(url: impl Into<String>, pipeline: impl Into<String>, topic: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            pipeline: pipeline.into(),
            topic: topic.into(),
            commit_interval: Self::DEFAULT_COMMIT_INTERVAL,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_pending_batches: 64,
            columns: LiveStreams::columns().clone(),
        }
    }

    /// These settings for rows of `columns`.
    pub fn with_columns(self, columns: &Columns) -> PostgresConfig {
        PostgresConfig { columns: columns.clone(), ..self }
    }

    /// The waits between attempts.
    pub(super) fn backoff(&self) -> crate::retry::Backoff {
        crate::retry::Backoff::new(self.min_backoff, self.max_backoff)
    }
}

/// The URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    const HIDDEN: &str = "***";
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let scheme = url.find("://").expect("checked above") + 3;
        let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
        // user:password@ before the host.
        let base = match base[scheme..].rfind('@') {
            Some(at) => {
                let credentials = &base[scheme..scheme + at];
                match credentials.find(':') {
                    Some(colon) => {
                        format!("{}{}:{HIDDEN}{}", &base[..scheme], &credentials[..colon], &base[scheme + at..])
                    }
                    None => base.to_owned(),
                }
            }
            None => base.to_owned(),
        };
        let Some(query) = query else { return base };
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => format!("password={HIDDEN}"),
                _ => pair.to_owned(),
            })
            .collect();
        return format!("{base}?{}", query.join("&"));
    }
    let pairs = super::connect::key_values(url);
    if pairs.is_empty() {
        return url.to_owned();
    }
    pairs
        .into_iter()
        .map(|(name, _, text)| if name == "password" { format!("password={HIDDEN}") } else { text })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_do_not_reach_the_logs() {
        assert_eq!(redacted("postgres://rt:secret@db:5432/realtime"), "postgres://rt:***@db:5432/realtime");
        assert_eq!(redacted("postgres://rt@db/realtime"), "postgres://rt@db/realtime");
        assert_eq!(redacted("host=db user=rt"), "host=db user=rt");
        assert_eq!(redacted("host=db user=rt password=secret dbname=x"), "host=db user=rt password=*** dbname=x");
        assert_eq!(redacted("host=db password='se cret' user=rt"), "host=db password=*** user=rt");
        assert_eq!(
            redacted("postgres://db/realtime?user=rt&password=secret&sslmode=require"),
            "postgres://db/realtime?user=rt&password=***&sslmode=require"
        );
        assert_eq!(redacted("postgresql://rt:p%40ss@db:5432/realtime"), "postgresql://rt:***@db:5432/realtime");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = PostgresConfig::new("postgres://x", "p", "t");
        let mut backoff = config.backoff();
        let waits: Vec<Duration> = (0..10).map(|_| backoff.next_wait()).collect();
        assert!(waits[0] <= Duration::from_millis(100) && waits[9] >= Duration::from_secs(8), "{waits:?}");
    }
}
