#!/usr/bin/env bash
# Loads a throwaway PostgreSQL with 1,008,000 rows (100 streams × a week of minutes), serves the
# API over it with `streamflow serve`, and drives /streams/top and /metrics with wrk, paced at
# about 1,000 requests/s and as fast as it goes, with the answer cache (default) and without.
# Prints requests/s, p50, p99 and errors of each run.
#   scripts/load-api.sh [SECONDS]   (default 30 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds=${1:-30}
if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "wrk is missing: sudo apt-get install -y wrk"
    say "installing wrk"
    apt-get install -y -qq wrk >/dev/null
fi
work=$(mktemp -d /tmp/streamflow-load-XXXXXX)
[ "$(id -u)" -eq 0 ] && chmod 755 "$work"
trap 'kill $servers 2>/dev/null; pg_stop "$work/pg" immediate; rm -rf "$work"' EXIT

cargo build --release --quiet -p streamflow-runner
port=$(free_port)
pg_init "$work/pg" rt rt realtime "$port"
url="postgres://rt:rt@127.0.0.1:$port/realtime"
psql=("$(pg_bindir)/psql" -q "$url" -v ON_ERROR_STOP=1)
for migration in sql/0*.sql; do "${psql[@]}" -f "$migration"; done
say "loading 1,008,000 rows"
"${psql[@]}" <<'SQL'
INSERT INTO stream_metrics_minute (window_start, window_end, stream_id, events, chat_messages, donations_count,
    donations_usd, viewer_joins, viewer_leaves, net_viewer_delta, unique_viewers, active_viewers, is_final)
SELECT t, t + interval '1 minute', 'stream_' || s, 100 + (m * 7 + s * 13) % 400, (m * 3 + s) % 150,
       (m + s * 7) % 30, ((m * 17 + s * 31) % 500000) / 100.0, (m + s) % 120, (m * 5 + s) % 110,
       (m + s) % 120 - (m * 5 + s) % 110, 50 + (m * 11 + s) % 300, (m * 13 + s * 17) % 5000, true
FROM generate_series(0, 10079) AS m, generate_series(1, 100) AS s,
     LATERAL (SELECT timestamptz '2025-12-20T00:00:00Z' + m * interval '1 minute' AS t) AS w;
-- A pipeline's checkpoint, for the freshness every answer carries.
INSERT INTO pipeline_checkpoints (pipeline, closed_through, results_table)
VALUES ('streamflow', timestamptz '2025-12-26T23:50:00Z', 'stream_metrics_minute');
INSERT INTO stream_state (stream_id, active_viewers, window_start)
SELECT stream_id, active_viewers, window_start FROM stream_metrics_minute
WHERE window_start = timestamptz '2025-12-20T00:00:00Z' + 10079 * interval '1 minute';
ANALYZE;
SQL
say "$("${psql[@]}" -At -c "SELECT count(*) || ' rows' FROM stream_metrics_minute")"

load() { # load PORT DELAY_MS CONNECTIONS: one wrk run over the routes
    LOAD_AT=2025-12-27T00:00:00Z WRK_DELAY_MS=$2 wrk -t2 -c"$3" -d"${seconds}s" -s scripts/load-api.lua \
        "http://127.0.0.1:$1" | tail -1
}
serve() { # serve CACHE_MS: a server on a free port, left in $http
    http=$(free_port)
    target/release/streamflow serve --database-url "$url" --http-addr "127.0.0.1:$http" --api-cache-ms "$1" \
        --log warn >/dev/null 2>&1 &
    servers="$servers $!"
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/health" >/dev/null && break; sleep 0.1; done
}
servers=

serve 500
cached=$http
say "answers kept 500 ms (the default): 10 connections each pausing 10 ms (about 1,000 requests/s)"
load "$cached" 10 10
say "answers kept 500 ms: 32 connections as fast as they go"
load "$cached" 0 32
kill $servers
serve 0
uncached=$http
say "no cache, every request a query: 10 connections each pausing 10 ms"
load "$uncached" 10 10
say "no cache: 14 connections each pausing 10 ms"
load "$uncached" 10 14
say "no cache: 32 connections as fast as they go"
load "$uncached" 0 32
