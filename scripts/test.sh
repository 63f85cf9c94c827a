#!/usr/bin/env bash
# Installs what the tests need when it is missing (PostgreSQL; the tansu Kafka-protocol broker),
# then runs every test of the workspace: unit, integration, end-to-end and documentation tests.
# Extra arguments go to `cargo test` (for example a test name).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export STREAMFLOW_TOOLS_DIR=${STREAMFLOW_TOOLS_DIR:-$HOME/.cache/streamflow/tools}
# What the install installed must be used: no test skips for a missing tool here.
export STREAMFLOW_REQUIRE_TOOLS=1
cargo test --workspace --locked "$@"

# The core without its connectors builds, and pulls in none of them.
if [ $# -eq 0 ]; then
    cargo check -p streamflow-core --no-default-features --locked --quiet
    if cargo tree -p streamflow-core --no-default-features -e normal --locked | grep -E '\b(rskafka|postgres|tokio)\b'; then
        echo "test.sh: streamflow-core without default features depends on the crates above" >&2
        exit 1
    fi
fi
