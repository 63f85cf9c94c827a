//! `streamflow replay --database-url` against a real PostgreSQL: the table equals the CSV of a
//! replay in memory, after an uninterrupted run, after kill -9 at random moments, and after a
//! database restart in the middle; a permanent error stops the process with a clear message.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use streamflow_testkit::Postgres;

#[test]
fn a_replay_into_postgres_equals_the_csv() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 200_000);
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LATENESS));
    let dead = dead_letters(&pg.url());
    assert_eq!(dead, reported_dead_letters(&input, LATENESS));
    assert!(dead["late"] > 1_000 && dead.len() > 3, "{dead:?}");

    // Running it again resumes at the end: nothing changes, nothing is counted twice.
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LATENESS));
    assert_eq!(dead_letters(&pg.url()), dead);
}

#[test]
fn kill_9_at_random_moments_and_restart_ends_with_the_exact_table() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000_000);
    let reader = Reader::start(pg.url());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(20251220);
    let mut kills = 0;
    loop {
        let mut child =
            replay_into(&input, &pg.url(), LONG_LATENESS).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        if kills < 6 {
            std::thread::sleep(Duration::from_millis(rng.random_range(150..900)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let status = wait(&mut child, Duration::from_secs(120));
        assert!(status.success(), "the last run failed: {status}");
        break;
    }
    assert!(kills >= 5, "only {kills} kills landed while the replay ran");
    let polls = reader.finish();
    assert!(polls > 10, "the reader polled only {polls} times");
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LONG_LATENESS));
    assert_eq!(dead_letters(&pg.url()), reported_dead_letters(&input, LONG_LATENESS));
}

#[test]
fn a_postgres_restart_in_the_middle_leaves_the_table_exact() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000_000);
    let mut child =
        replay_into(&input, &pg.url(), LATENESS).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    pg.stop().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    pg.start_again().unwrap();
    let status = wait(&mut child, Duration::from_secs(120));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "the replay failed: {stderr}");
    assert!(stderr.contains("retrying"), "the outage was not noticed: {stderr}");
    assert_eq!(table_csv(&pg.url()), expected_csv(&input, LATENESS));
}

#[test]
fn bad_credentials_stop_the_process_with_a_clear_message() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 1_000);
    let url = format!("postgres://streamflow:wrong@127.0.0.1:{}/realtime", pg.port());
    let output = replay_into(&input, &url, LATENESS).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("password authentication failed"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password leaked into the message: {stderr}");

    let url = format!("postgres://streamflow:streamflow@127.0.0.1:{}/missing", pg.port());
    let output = replay_into(&input, &url, LATENESS).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));

    // A URL that does not parse is not retried forever.
    let output = replay_into(&input, "postgres://streamflow:secret@[nowhere", LATENESS).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not valid") && !stderr.contains("secret"), "{stderr}");
}
