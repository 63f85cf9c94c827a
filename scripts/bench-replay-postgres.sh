#!/usr/bin/env bash
# Replays a file of events into a throwaway local PostgreSQL (durable: fsync on, as in
# production) and prints the figures: end-to-end events/s, commit latency p50/p99, and how long a
# restart takes to catch up after a kill -9 in the middle.
#   scripts/bench-replay-postgres.sh [EVENTS]   (default 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

events=${1:-1000000}
work=$(mktemp -d /tmp/streamflow-bench-XXXXXX)
[ "$(id -u)" -eq 0 ] && chmod 755 "$work"
trap 'pg_stop "$work/pg" immediate; rm -rf "$work"' EXIT

cargo build --release --quiet -p streamflow-runner
bin=target/release/streamflow
port=$(free_port)
pg_init "$work/pg" rt rt realtime "$port"
url="postgres://rt:rt@127.0.0.1:$port/realtime"

"$bin" generate --output "$work/events.jsonl" --count "$events" --streams 100 --late-ratio 0.01 --bad-ratio 0.01 --log warn
say "uninterrupted replay of $events events into PostgreSQL:"
STREAMFLOW_LOG=warn "$bin" replay --input "$work/events.jsonl" --database-url "$url" --workers 2 --log warn

reset_tables() {
    "$(pg_bindir)/psql" -q "$url" -c "DROP TABLE stream_metrics_minute, stream_state, dead_letters, source_offsets,
        pipeline_checkpoints, stream_checkpoints, schema_migrations"
}

say "again with a commit every 50 ms, for the commit latency of smaller transactions:"
reset_tables
"$bin" replay --input "$work/events.jsonl" --database-url "$url" --commit-interval-ms 50 --log warn 2>&1 | grep -v "^dead letters"

say "again, killed with SIGKILL as soon as a first commit lands, then restarted (lateness 1 hour):"
reset_tables
"$bin" replay --input "$work/events.jsonl" --database-url "$url" --lateness-seconds 3600 --commit-interval-ms 50 \
    --log warn 2>/dev/null &
victim=$!
until [ "$("$(pg_bindir)/psql" -At "$url" -c "SELECT count(*) FROM source_offsets" 2>/dev/null || echo 0)" -gt 0 ]; do
    sleep 0.01
done
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
say "after the kill: $("$(pg_bindir)/psql" -At "$url" -c "SELECT next_offset || ' records committed, ' ||
    next_offset - replay_from || ' of them to read again' FROM source_offsets")"
STREAMFLOW_LOG=info "$bin" replay --input "$work/events.jsonl" --database-url "$url" --lateness-seconds 3600 2>&1 \
    | grep -E "caught up|replayed|postgres:" | sed -e 's/\x1b\[[0-9;]*m//g'
