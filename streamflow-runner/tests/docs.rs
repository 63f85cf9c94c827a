//! The documentation names only what exists: every `streamflow <command> --flag` in the README
//! and `docs/` is checked against that command's `--help`, every `scripts/…` and `make` target
//! exists, and docs/configuration.md lists every flag of every command.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The long flags a command's `--help` lists (`offsets reset`: a subcommand's).
fn flags_of(command: &str, cache: &mut BTreeMap<String, Option<BTreeSet<String>>>) -> Option<BTreeSet<String>> {
    cache
        .entry(command.to_owned())
        .or_insert_with(|| {
            let mut args: Vec<&str> = command.split(' ').collect();
            args.push("--help");
            let output = streamflow(&args).output().unwrap();
            output.status.success().then(|| {
                String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .filter(|word| word.starts_with("--"))
                    .map(|word| word.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '-').to_owned())
                    .collect()
            })
        })
        .clone()
}

/// The words of a line that are `--flags`.
fn flags_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '`' || c == ',' || c == '|' || c == '(' || c == ')')
        .filter(|word| word.starts_with("--") && word[2..].starts_with(|c: char| c.is_ascii_lowercase()))
        .map(|word| word.split('=').next().unwrap().trim_end_matches(['.', ':', ';']).to_owned())
        .collect()
}

/// The subcommands of commands, as `(command, subcommand)`.
const SUBCOMMANDS: &[(&str, &str)] =
    &[("offsets", "reset"), ("dead-letters", "list"), ("dead-letters", "export"), ("dead-letters", "redrive")];

/// The commands named in a line (`streamflow run …`, `target/release/streamflow replay …`), each
/// with the part of the line that follows it up to a pipe, a redirection or a comment.
fn commands_in(line: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("streamflow ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "streamflow ".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            continue;
        }
        let command: String = after.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        if command.is_empty() {
            continue;
        }
        let mut tail = &after[command.len()..];
        // A subcommand of the command (`offsets reset`, `dead-letters list`).
        let word: String =
            tail.strip_prefix(' ').unwrap_or("").chars().take_while(|c| c.is_ascii_lowercase()).collect();
        let command = match SUBCOMMANDS.iter().find(|(c, s)| *c == command && *s == word) {
            Some(_) => {
                tail = &tail[1 + word.len()..];
                format!("{command} {word}")
            }
            None => command,
        };
        let end = tail.find(['|', '>', '#', '`']).unwrap_or(tail.len());
        found.push((command, tail[..end].to_owned()));
    }
    found
}

#[test]
fn every_command_and_flag_named_in_the_docs_exists() {
    let mut help = BTreeMap::new();
    let mut checked = 0;
    for (path, text) in documents() {
        for line in text.lines() {
            for (command, tail) in commands_in(line) {
                // Prose like "streamflow doctor — state" names no subcommand of the binary.
                let Some(flags) = flags_of(&command, &mut help) else {
                    assert!(
                        !["run", "replay", "generate", "serve", "produce", "offsets"].contains(&command.as_str()),
                        "{}: `streamflow {command}` has no --help",
                        path.display()
                    );
                    continue;
                };
                for flag in flags_in(&tail) {
                    assert!(
                        flags.contains(&flag),
                        "{}: `streamflow {command} {flag}` does not exist:\n{line}",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} flags were found to check");
}

#[test]
fn every_script_and_make_target_named_in_the_docs_exists() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    for (path, text) in documents() {
        for word in text.split(|c: char| c.is_whitespace() || "`()[],|;".contains(c)) {
            let word = word.trim_end_matches(['.', ':']);
            if let Some(script) = word.strip_prefix("scripts/").filter(|s| s.ends_with(".sh")) {
                let file = root().join("scripts").join(script);
                let executable = std::fs::metadata(&file)
                    .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
                assert!(executable, "{}: scripts/{script} is missing or not executable", path.display());
            }
        }
        for (at, _) in text.match_indices("make ") {
            let target: String = text[at + 5..].chars().take_while(|c| c.is_ascii_lowercase()).collect();
            if !target.is_empty() && text[..at].ends_with('`') {
                assert!(
                    makefile.contains(&format!("\n{target}:")),
                    "{}: `make {target}` is not in the Makefile",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn configuration_md_lists_every_flag_of_every_command() {
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut help = BTreeMap::new();
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            current = commands_in(heading).into_iter().next().map(|(command, _)| command);
            continue;
        }
        // The tables list a section's flags; its prose may name a subcommand's.
        if let Some(command) = current.as_ref().filter(|_| line.starts_with('|')) {
            let section = sections.entry(command.clone()).or_default();
            section.push_str(line);
            section.push('\n');
        }
    }
    for command in [
        "run",
        "replay",
        "generate",
        "serve",
        "produce",
        "offsets",
        "dead-letters list",
        "dead-letters export",
        "dead-letters redrive",
    ] {
        let flags = flags_of(command, &mut help).unwrap();
        let section = sections.get(command).unwrap_or_else(|| panic!("no section for `streamflow {command}`"));
        let documented: BTreeSet<String> = flags_in(section).into_iter().collect();
        for flag in &flags {
            // The global flags are in the section "Every command".
            if !["--help", "--log", "--log-format"].contains(&flag.as_str()) {
                assert!(documented.contains(flag), "docs/configuration.md does not list `streamflow {command} {flag}`");
            }
        }
        for flag in &documented {
            assert!(
                flags.contains(flag),
                "docs/configuration.md lists `streamflow {command} {flag}`, which does not exist"
            );
        }
    }
}

/// The series named in a PromQL expression, without a histogram's suffixes.
fn series_in(expression: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in expression.match_indices(['s', 'p']) {
        let rest = &expression[at..];
        if !(rest.starts_with("streamflow_") || rest.starts_with("process_")) {
            continue;
        }
        if expression[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let name =
            ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_owned));
        found.push(name);
    }
    found
}

#[test]
fn the_dashboard_and_the_alerts_use_documented_series_only() {
    let documented = documented_series();
    assert!(documented.len() > 25, "{documented:?}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("grafana/dashboards/streamflow.json")).unwrap())
            .unwrap();
    let mut expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    // The datasource is a variable, so that the dashboard imports into any Grafana.
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
    }
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
    let alerts = std::fs::read_to_string(root().join("prometheus/alerts.yml")).unwrap();
    expressions.push(alerts);
    for expression in &expressions {
        for series in series_in(expression) {
            assert!(documented.contains_key(&series), "{series} (in {expression}) is not in docs/metrics.md");
        }
    }
}

/// `promtool`, Prometheus' own checker (Debian's `prometheus`), if it is here.
fn promtool() -> Option<std::process::Command> {
    let found = std::process::Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("STREAMFLOW_REQUIRE_TOOLS").is_none(),
            "promtool is missing; scripts/install-test-deps.sh installs it"
        );
        eprintln!("promtool is missing: the alerting rules are not checked");
        return None;
    }
    let mut command = std::process::Command::new("promtool");
    command.current_dir(root().join("prometheus"));
    Some(command)
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let Some(mut check) = promtool() else { return };
    let checked = check.args(["check", "rules", "alerts.yml"]).output().unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let tested = promtool().unwrap().args(["test", "rules", "alerts.test.yml"]).output().unwrap();
    assert!(
        tested.status.success(),
        "{}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let config = promtool().unwrap().args(["check", "config", "--syntax-only", "prometheus.yml"]).output().unwrap();
    assert!(
        config.status.success(),
        "{}{}",
        String::from_utf8_lossy(&config.stdout),
        String::from_utf8_lossy(&config.stderr)
    );
}
