//! Issue 13: how settings are read — flags over the environment, the `STREAMFLOW_` names over
//! the old ones (still read, and warned about), the log's filter and format, `--version` and
//! shell completions.

mod common;

use std::process::Command;

use common::*;

/// `streamflow replay` of an empty file with `env` set and `args` added, with no other log
/// variable: its standard error.
fn replay_log(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut command = Command::new(binary());
    command.args(["replay", "--input", "/dev/null"]).args(args).env_remove("STREAMFLOW_LOG").env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    String::from_utf8(succeed(&mut command).stderr).unwrap()
}

#[test]
fn the_log_filter_flag_wins_over_the_environment_and_rust_log_is_honoured() {
    let configuration = "Replaying.";
    assert!(replay_log(&[], &[]).contains(configuration), "info by default");
    assert!(!replay_log(&[("STREAMFLOW_LOG", "info")], &["--log", "warn"]).contains(configuration));
    assert!(replay_log(&[("STREAMFLOW_LOG", "warn")], &["--log", "info"]).contains(configuration));
    assert!(!replay_log(&[("STREAMFLOW_LOG", "warn")], &[]).contains(configuration));
    assert!(!replay_log(&[("RUST_LOG", "warn")], &[]).contains(configuration));
    assert!(replay_log(&[("RUST_LOG", "warn"), ("STREAMFLOW_LOG", "info")], &[]).contains(configuration));
    let bad = Command::new(binary()).args(["replay", "--input", "/dev/null", "--log", "=[="]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("log filter"));
}

#[test]
fn json_logs_are_one_object_a_line_with_the_fields() {
    let log = replay_log(&[], &["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let start = lines.iter().find(|line| line["message"] == "Replaying.").expect("the configuration is logged");
    assert_eq!(start["level"], "INFO");
    assert!(start["timestamp"].is_string() && start["target"].is_string());
    assert!(start["args"].as_str().unwrap().contains("window_seconds: 60"), "{start}");
    assert!(replay_log(&[("STREAMFLOW_LOG_FORMAT", "json")], &[]).lines().any(|l| l.starts_with("{\"timestamp\"")));
}

#[test]
fn the_prefixed_variables_are_read_and_the_old_names_too_with_a_warning() {
    let log = replay_log(&[("STREAMFLOW_WORKERS", "3"), ("STREAMFLOW_LATENESS_SECONDS", "61")], &[]);
    assert!(log.contains("workers: 3") && log.contains("lateness_seconds: 61"), "{log}");
    assert!(!log.contains("WARN"), "{log}");

    let log = replay_log(&[("WORKERS", "3"), ("PIPELINE_NAME", "old")], &[]);
    assert!(log.contains("workers: 3") && log.contains("pipeline_name: \"old\""), "{log}");
    assert!(log.contains("WORKERS is read as STREAMFLOW_WORKERS"), "{log}");
    assert!(log.contains("PIPELINE_NAME is read as STREAMFLOW_PIPELINE_NAME"), "{log}");

    let log = replay_log(&[("WORKERS", "3"), ("STREAMFLOW_WORKERS", "1")], &[]);
    assert!(log.contains("workers: 1") && log.contains("WORKERS is ignored"), "{log}");
    // A flag wins over both.
    let log = replay_log(&[("WORKERS", "3"), ("STREAMFLOW_WORKERS", "1")], &["--workers", "2"]);
    assert!(log.contains("workers: 2"), "{log}");
}

#[test]
fn version_names_the_commit_and_completions_are_printed() {
    let version = String::from_utf8(succeed(&mut streamflow(&["--version"])).stdout).unwrap();
    let commit = version.split("(commit ").nth(1).and_then(|rest| rest.split(')').next()).unwrap_or("");
    assert!(!commit.is_empty(), "{version}");
    if let Ok(head) = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output() {
        if head.status.success() && std::env::var_os("STREAMFLOW_COMMIT").is_none() {
            assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim(), "{version}");
        }
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(succeed(&mut streamflow(&["completions", shell])).stdout).unwrap();
        assert!(script.contains("dead-letters") && script.contains("log-format"), "{shell}");
    }
    let refused = streamflow(&["generate", "--output", "-", "--compression", "snappy"]).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("possible values"));
}
