//! Where a database URL leads: the settings tokio-postgres reads from it, and TLS as libpq's
//! `sslmode` and `sslrootcert` ask for it — which tokio-postgres alone cannot (it knows
//! `disable`, `prefer` and `require`, and no authority file). The one place every connection of
//! the project is made from: the sink, the API's pool, every command.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | no | — |
//! | `allow`, `prefer` (the default) | when the server offers it | not checked |
//! | `require` | yes | not checked; with `sslrootcert`, signed by it (as libpq) |
//! | `verify-ca` | yes | signed by `sslrootcert` (default `~/.postgresql/root.crt`; `system`: the system's authorities) |
//! | `verify-full` | yes | that, and naming the host |
//!
//! A URL that names no `application_name` connects as `streamflow`.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::Error;
use crate::tls::{TlsOptions, Verify};

/// How long connecting may take unless the URL says otherwise: an unreachable host is a failure
/// that passes, retried, not a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database to connect to.
#[derive(Clone)]
pub struct Endpoint {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("hosts", &self.config.get_hosts()).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The database of `url`: `postgres://user:password@host:port/database?sslmode=…` or the
    /// key=value form (`host=… user=… sslmode=…`).
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |e: &dyn std::fmt::Display| {
            Error::configuration(format!("the database URL {} is not valid: {e}", super::redacted(url)))
        };
        let (rest, sslmode, sslrootcert) = take_tls_settings(url);
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e| invalid(&e))?;
        let verify = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => {
                config.ssl_mode(SslMode::Disable);
                Verify::Nothing
            }
            "allow" | "prefer" => {
                config.ssl_mode(SslMode::Prefer);
                Verify::Nothing
            }
            "require" => {
                config.ssl_mode(SslMode::Require);
                if sslrootcert.is_some() {
                    Verify::Authority
                } else {
                    Verify::Nothing
                }
            }
            "verify-ca" => {
                config.ssl_mode(SslMode::Require);
                Verify::Authority
            }
            "verify-full" => {
                config.ssl_mode(SslMode::Require);
                Verify::Host
            }
            other => {
                return Err(invalid(&format!(
                    "sslmode {other:?} is none of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        let ca_file = match (verify, sslrootcert.as_deref()) {
            (_, Some("system")) | (Verify::Nothing, _) => None,
            (_, Some(file)) => Some(PathBuf::from(file)),
            (_, None) => {
                let default = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql/root.crt"));
                match default.filter(|file| file.exists()) {
                    Some(file) => Some(file),
                    None => {
                        return Err(invalid(&format!(
                            "sslmode={} needs the authority that signs the server's certificate: give \
                             sslrootcert=FILE, or sslrootcert=system for the system's authorities",
                            sslmode.unwrap_or_default()
                        )))
                    }
                }
            }
        };
        if config.get_application_name().is_none() {
            config.application_name("streamflow");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = TlsOptions { verify, ca_file }.client_config()?;
        Ok(Endpoint { config, tls: MakeRustlsConnect::new(tls) })
    }

    /// The settings, for an asynchronous client or pool.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS connector, for an asynchronous client or pool.
    pub fn tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }

    /// A blocking connection.
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::from(self.config.clone()).connect(self.tls.clone())
    }
}

/// `url` without its `sslmode` and `sslrootcert`, and their values.
fn take_tls_settings(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut sslrootcert) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None, None) };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                match name {
                    "sslmode" => sslmode = Some(percent_decoded(value)),
                    "sslrootcert" => sslrootcert = Some(percent_decoded(value)),
                    _ => return true,
                }
                false
            })
            .collect();
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, sslmode, sslrootcert);
    }
    let kept: Vec<String> = key_values(url)
        .into_iter()
        .filter_map(|(name, value, text)| {
            match name.as_str() {
                "sslmode" => sslmode = Some(value),
                "sslrootcert" => sslrootcert = Some(value),
                _ => return Some(text),
            }
            None
        })
        .collect();
    (kept.join(" "), sslmode, sslrootcert)
}

/// The `key=value` pairs of a libpq connection string, each with its text as written; a value
/// may be quoted with `'`, and `\` escapes within it.
pub(super) fn key_values(text: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut name = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|&(_, c)| c == '=') {
            chars.next();
            while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_some_and(|&(_, c)| c == '\'') {
                chars.next();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '\'' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        pairs.push((name, value, text[start..end].to_owned()));
    }
    pairs
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_from_both_forms() {
        let (rest, mode, root) = take_tls_settings(
            "postgres://rt:pw@db/realtime?sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.pem&options=-c%20x",
        );
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root.as_deref()),
            ("postgres://rt:pw@db/realtime?options=-c%20x", Some("verify-full"), Some("/ca dir/ca.pem"))
        );
        let (rest, mode, root) =
            take_tls_settings("host=db user=rt sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=realtime");
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root.as_deref()),
            ("host=db user=rt dbname=realtime", Some("verify-ca"), Some("/a b/ca.pem"))
        );
    }

    #[test]
    fn modes_map_to_what_tokio_postgres_knows() {
        let endpoint = Endpoint::parse("postgres://rt@db/realtime?sslmode=require").unwrap();
        assert_eq!(endpoint.config().get_ssl_mode(), SslMode::Require);
        assert_eq!(endpoint.config().get_application_name(), Some("streamflow"));
        let named = Endpoint::parse("host=db user=rt application_name=mine sslmode=disable").unwrap();
        assert_eq!(
            (named.config().get_ssl_mode(), named.config().get_application_name()),
            (SslMode::Disable, Some("mine"))
        );
        assert_eq!(Endpoint::parse("postgres://rt@db/realtime").unwrap().config().get_ssl_mode(), SslMode::Prefer);
        let bad = Endpoint::parse("postgres://rt:secret@db/realtime?sslmode=maybe").unwrap_err().to_string();
        assert!(bad.contains("sslmode \"maybe\"") && !bad.contains("secret"), "{bad}");
        let missing = Endpoint::parse("postgres://rt@db/realtime?sslmode=verify-full&sslrootcert=/nonexistent.pem");
        assert!(missing.unwrap_err().to_string().contains("/nonexistent.pem"));
    }
}
