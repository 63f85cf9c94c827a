//! A third-party fuzzer against the API's own description: schemathesis (from PyPI, in a
//! virtual environment of its own that `scripts/install-test-deps.sh` makes) runs every check
//! it has on every operation of `/openapi.json` of `streamflow serve` over a database filled by
//! a replay. A request the description allows must not be refused, an answer must match its
//! schema, status, content type and headers. Without schemathesis the test says so and passes,
//! unless `STREAMFLOW_REQUIRE_TOOLS` is set (the README's test command sets it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use streamflow_testkit::{free_port, tools_dir, wait_for_port, Postgres};

#[test]
fn schemathesis_finds_no_failure_in_the_described_api() {
    let schemathesis = tools_dir().join("schemathesis/bin/schemathesis");
    if !schemathesis.exists() {
        assert!(
            std::env::var_os("STREAMFLOW_REQUIRE_TOOLS").is_none(),
            "schemathesis is missing: run scripts/install-test-deps.sh"
        );
        eprintln!("skipped: no schemathesis (scripts/install-test-deps.sh installs it)");
        return;
    }
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(dir.path(), 20_000);
    succeed(&mut replay_into(&input, &pg.url(), LATENESS));
    let port = free_port();
    let _serve = Running::spawn(
        streamflow(&["serve", "--database-url", &pg.url(), "--http-addr"]).arg(format!("127.0.0.1:{port}")),
    );
    wait_for_port(port, Duration::from_secs(30)).unwrap();

    let output = Command::new(&schemathesis)
        .args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["--checks", "all", "--max-examples", "200", "--request-timeout", "10", "--seed", "1"])
        // An endless stream of events answers no fuzzer's request: /streams/top/live has a test
        // of its own (tests/api.rs).
        .args(["--exclude-path-regex", "/top/live$"])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{report}");
    assert!(output.status.success(), "schemathesis found failures:\n{report}");
}
