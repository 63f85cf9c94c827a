//! Issue 13: connecting as production services demand — PostgreSQL over TLS in every `sslmode`
//! that checks something, against a server that takes nothing else (certificates made with
//! openssl); and no password in any log, whatever form the database URL takes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use streamflow_testkit::{free_port, http_get, wait_for_port, Certificates, Postgres};

fn tls_url(pg: &Postgres, query: &str) -> String {
    format!("postgres://streamflow:streamflow@127.0.0.1:{}/realtime?{query}", pg.port())
}

#[test]
fn postgres_over_tls_connects_when_the_certificate_is_right_and_only_then() {
    let certificates = Certificates::make().unwrap();
    let pg = Postgres::start_tls(&certificates).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 2_000);
    let ca = certificates.ca.to_str().unwrap();

    // The server takes TLS only: without it, the replay is refused with the server's reason.
    let (ok, stderr) = output(&mut replay_into(&input, &tls_url(&pg, "sslmode=disable"), LATENESS));
    assert!(!ok && stderr.contains("no pg_hba.conf entry"), "{stderr}");

    // Encrypted; and verified against the authority, by name as much as by signature.
    for query in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        format!("sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let url = tls_url(&pg, &query);
        // The same pipeline each time: the second and third resume, connecting all the same.
        succeed(&mut replay_into(&input, &url, LATENESS));
    }
    let mut client = postgres::Client::connect(&pg.url(), tls_connector()).unwrap();
    let rows: i64 = client.query_one("SELECT count(*) FROM stream_metrics_minute", &[]).unwrap().get(0);
    assert!(rows > 0);

    // A certificate the given authority did not sign is refused at once, saying why.
    let other = certificates.other_ca.to_str().unwrap();
    let url = tls_url(&pg, &format!("sslmode=verify-full&sslrootcert={other}"));
    let started = Instant::now();
    let (ok, stderr) = output(&mut replay_into(&input, &url, LATENESS));
    assert!(!ok, "a wrong authority was accepted");
    assert!(stderr.contains("certificate") && stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused after {:?}", started.elapsed());
    // No authority given for verify-full: a configuration error naming the way out.
    let (ok, stderr) = output(&mut replay_into(&input, &tls_url(&pg, "sslmode=verify-full"), LATENESS));
    assert!(!ok && stderr.contains("sslrootcert"), "{stderr}");

    // The API's pool connects the same way.
    let port = free_port();
    let url = tls_url(&pg, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let _serve = Running::spawn(&mut streamflow(&[
        "serve",
        "--database-url",
        &url,
        "--http-addr",
        &format!("127.0.0.1:{port}"),
    ]));
    wait_for_port(port, Duration::from_secs(20)).unwrap();
    assert_eq!(http_get(port, "/health"), (200, r#"{"ok":true}"#.to_owned()));
    let wrong = tls_url(&pg, &format!("sslmode=verify-full&sslrootcert={other}"));
    let port = free_port();
    let _serve = Running::spawn(&mut streamflow(&[
        "serve",
        "--database-url",
        &wrong,
        "--http-addr",
        &format!("127.0.0.1:{port}"),
    ]));
    wait_for_port(port, Duration::from_secs(20)).unwrap();
    let (status, body) = http_get(port, "/health");
    assert!(status == 503 && body.contains("certificate"), "{status} {body}");
}

/// A rustls connector that trusts anything, for the test's own checks.
fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let options = streamflow_core::tls::TlsOptions { verify: streamflow_core::tls::Verify::Nothing, ca_file: None };
    tokio_postgres_rustls::MakeRustlsConnect::new(options.client_config().unwrap())
}

/// Runs `command` to its end: whether it succeeded, and its standard error.
fn output(command: &mut Command) -> (bool, String) {
    let output = command.stdout(Stdio::null()).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// What `command` wrote on standard error within `seconds` (then it is stopped).
fn stderr_within(command: &mut Command, seconds: u64) -> String {
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn no_password_reaches_a_log_in_any_url_form() {
    const PASSWORD: &str = "Pa55-w0rd-not-elsewhere";
    let pg = Postgres::start().unwrap();
    pg.psql("realtime", &format!("CREATE ROLE secret_user LOGIN SUPERUSER PASSWORD '{PASSWORD}'")).unwrap();
    let port = pg.port();
    let forms = [
        format!("postgres://secret_user:{PASSWORD}@127.0.0.1:{port}/realtime"),
        format!("host=127.0.0.1 port={port} user=secret_user password={PASSWORD} dbname=realtime"),
        format!("postgresql://127.0.0.1:{port}/realtime?user=secret_user&password={PASSWORD}&sslmode=disable"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 500);
    for (i, url) in forms.iter().enumerate() {
        let wrong = url.replace(PASSWORD, &format!("{PASSWORD}-wrong"));
        let http = format!("127.0.0.1:{}", free_port());
        let name = format!("form{i}");
        let mut logs = Vec::new();
        let debug = |command: &mut Command| -> Command {
            let mut command = std::mem::replace(command, Command::new("true"));
            command.env("STREAMFLOW_LOG", "debug");
            command
        };
        logs.push(output(&mut debug(replay_into(&input, url, LATENESS).args(["--pipeline-name", &name]))).1);
        logs.push(output(&mut debug(replay_into(&input, &wrong, LATENESS).args(["--pipeline-name", &name]))).1);
        let mut run = streamflow(&["run", "--brokers", "127.0.0.1:1", "--database-url", url, "--pipeline-name", &name]);
        logs.push(stderr_within(&mut debug(&mut run), 3));
        logs.push(stderr_within(
            &mut debug(&mut streamflow(&["serve", "--database-url", url, "--http-addr", &http])),
            2,
        ));
        let mut offsets = streamflow(&["offsets", "--brokers", "127.0.0.1:1", "--database-url", url]);
        logs.push(stderr_within(&mut debug(&mut offsets), 3));
        logs.push(output(&mut debug(&mut streamflow(&["reset", "--database-url", url, "--pipeline-name", &name]))).1);
        logs.push(output(&mut debug(&mut streamflow(&["reset", "--database-url", &wrong, "--yes"]))).1);
        for log in &logs {
            assert!(!log.contains(PASSWORD), "form {i} let the password through:\n{log}");
        }
        // The logs said something: the URL, redacted, where they name it.
        assert!(logs.iter().any(|log| log.contains("***")), "form {i}: {logs:?}");
    }
}

/// The flags of a secured connection: `protocol`, a SCRAM `mechanism` for alice, and the
/// authority `ca` for TLS.
fn secured(protocol: &str, mechanism: Option<&str>, ca: Option<&std::path::Path>) -> Vec<String> {
    let mut flags = vec!["--security-protocol".to_owned(), protocol.to_owned()];
    if let Some(mechanism) = mechanism {
        flags.extend(["--sasl-mechanism", mechanism, "--sasl-username", "alice"].map(String::from));
    }
    if let Some(ca) = ca {
        flags.extend(["--ssl-ca-file".to_owned(), ca.display().to_string()]);
    }
    flags
}

/// Every command that talks to Kafka, over TLS, SASL SCRAM (SHA-256 and SHA-512) and both, to
/// tansu itself for SASL and to stunnel in front of it for TLS (tansu 0.6 has no TLS listener);
/// a wrong password or authority refused at once, saying why. PLAIN is not tested against a
/// broker: tansu 0.6 does not serve it (see the unit tests of `kafka::security`).
#[test]
fn kafka_over_tls_and_sasl_in_every_command() {
    use streamflow_testkit::{Storage, Tansu, TansuOptions};
    let certificates = Certificates::make().unwrap();
    let users = [("alice", "wonderland")];
    let tls_only =
        Tansu::start_with(TansuOptions { storage: Storage::Memory, users: &[], tls: Some(&certificates) }).unwrap();
    let sasl_only = Tansu::start_with(TansuOptions { storage: Storage::Sqlite, users: &users, tls: None }).unwrap();
    let both =
        Tansu::start_with(TansuOptions { storage: Storage::Sqlite, users: &users, tls: Some(&certificates) }).unwrap();
    let ca = certificates.ca.as_path();
    let brokers = [
        (&tls_only, secured("ssl", None, Some(ca))),
        (&sasl_only, secured("sasl_plaintext", Some("scram-sha-256"), None)),
        (&both, secured("sasl_ssl", Some("scram-sha-512"), Some(ca))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let line = dir.path().join("one.jsonl");
    std::fs::write(&line, "{\"ts\":\"2025-12-20T18:00:00Z\",\"event_type\":\"chat_message\",\"stream_id\":\"s1\"}\n")
        .unwrap();
    for (broker, flags) in brokers {
        let pg = Postgres::start().unwrap();
        let with = |args: &[&str]| {
            let mut command = streamflow(args);
            command.args(&flags).env("KAFKA_SASL_PASSWORD", "wonderland");
            command
        };
        let address = broker.address();
        succeed(&mut with(&["generate", "--brokers", &address, "--count", "2000", "--rate", "0", "--partitions", "2"]));
        succeed(&mut with(&["produce", "--brokers", &address, "--input", line.to_str().unwrap()]));
        let run =
            Running::spawn(
                with(&["run", "--brokers", &address, "--database-url", &pg.url(), "--start-offsets", "earliest"])
                    .args(["--commit-interval-ms", "100", "--idle-timeout-seconds", "0"]),
            );
        let deadline = Instant::now() + Duration::from_secs(60);
        let committed = || -> i64 {
            postgres::Client::connect(&pg.url(), postgres::NoTls)
                .and_then(|mut c| c.query_one("SELECT coalesce(sum(next_offset), 0)::int8 FROM source_offsets", &[]))
                .map_or(0, |row| row.get(0))
        };
        while committed() < 2001 {
            assert!(Instant::now() < deadline, "{flags:?}: only {} records committed", committed());
            std::thread::sleep(Duration::from_millis(100));
        }
        run.terminate();
        let offsets = succeed(&mut with(&["offsets", "--brokers", &address, "--database-url", &pg.url()]));
        let offsets = String::from_utf8(offsets.stdout).unwrap();
        assert!(offsets.lines().skip(1).all(|line| line.ends_with("\t0")), "{flags:?}: {offsets}");
        let replay = succeed(&mut with(&["replay", "--brokers", &address, "--topic", "stream.events"]));
        assert!(String::from_utf8(replay.stdout).unwrap().lines().count() > 1);
    }

    // A wrong password: refused, saying so.
    let mut wrong = streamflow(&["offsets", "--brokers", &sasl_only.address()]);
    wrong.args(secured("sasl_plaintext", Some("scram-sha-256"), None)).env("KAFKA_SASL_PASSWORD", "looking-glass");
    let (ok, stderr) = output(&mut wrong);
    assert!(!ok && stderr.contains("refused the login") && stderr.contains("invalid-proof"), "{stderr}");
    // An authority that did not sign the broker's certificate.
    let mut untrusted = streamflow(&["offsets", "--brokers", &tls_only.address()]);
    untrusted.args(secured("ssl", None, Some(&certificates.other_ca)));
    let (ok, stderr) = output(&mut untrusted);
    assert!(!ok && stderr.contains("TLS handshake failed") && stderr.contains("UnknownIssuer"), "{stderr}");
    // SASL without a password anywhere.
    let mut no_password = streamflow(&["offsets", "--brokers", &sasl_only.address()]);
    no_password.args(secured("sasl_plaintext", Some("scram-sha-256"), None)).env_remove("KAFKA_SASL_PASSWORD");
    let (ok, stderr) = output(&mut no_password);
    assert!(!ok && stderr.contains("KAFKA_SASL_PASSWORD"), "{stderr}");
}
