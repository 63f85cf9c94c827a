#!/usr/bin/env bash
# Kafka → PostgreSQL figures on this machine, broker (tansu) and database local: sustained
# throughput with the CPU each process spent, and freshness at 10,000 events/s.
#   EVENTS=2000000 scripts/bench-kafka.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --release --locked -p streamflow-runner --test kafka_figures -- --ignored --nocapture --test-threads 1 2>&1 \
    | grep -E "^(produce|kafka|cpu|written|freshness|meanwhile)|Commit latency" | sed -e 's/^.*INFO //' 
