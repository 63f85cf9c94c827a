#!/usr/bin/env bash
# Prints the state of every part of the local stack and, for each problem, the likely fix.
# Exits non-zero when something is wrong.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
problems=0
good() { printf '  ok    %-12s %s\n' "$1" "$2"; }
bad() { printf '  FAIL  %-12s %s\n        fix: %s\n' "$1" "$2" "$3"; problems=$((problems + 1)); }

echo "streamflow doctor — state in $STATE"
if [ -x "$TOOLS_DIR/bin/tansu" ]; then good tools "tansu at $TOOLS_DIR/bin/tansu"; else bad tools "tansu is not installed" "scripts/install-test-deps.sh"; fi
if pg_bindir >/dev/null 2>&1; then good tools "PostgreSQL in $(pg_bindir)"; else bad tools "PostgreSQL is not installed" "sudo scripts/install-test-deps.sh"; fi
if [ -x "$BIN" ]; then good binary "$BIN"; else bad binary "$BIN is missing" "cargo build --release -p streamflow-runner"; fi

if [ ! -d "$STATE/pg/data" ]; then
    bad postgres "no database in $STATE/pg" "scripts/up.sh"
elif pg_is_up; then
    rows=$("$(pg_bindir)/psql" -At "$DATABASE_URL" -c "SELECT count(*) FROM stream_metrics_minute" 2>&1) \
        && good postgres "up on port $PG_PORT, $rows rows in stream_metrics_minute" \
        || bad postgres "up on port $PG_PORT but the tables cannot be read: $rows" "scripts/logs.sh pipeline; scripts/reset.sh to start over"
else
    bad postgres "not answering on port $PG_PORT" "scripts/up.sh (log: $STATE/pg/server.log)"
fi

if is_running kafka && port_is_open "$KAFKA_PORT"; then
    if offsets=$("$BIN" offsets --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --database-url "$DATABASE_URL" --log error 2>&1); then
        good kafka "up on $KAFKA_BROKERS, topic $TOPIC:"
        sed 's/^/              /' <<<"$offsets"
        lag=$(awk 'NR > 1 && $4 != "-" { sum += $4 } END { print sum + 0 }' <<<"$offsets")
        [ "$lag" -lt 10000 ] || bad lag "the pipeline is $lag records behind" "scripts/logs.sh pipeline; a slow database or a failing commit shows there"
    else
        bad kafka "up, but the topic $TOPIC cannot be read: $offsets" "the generator creates it: scripts/up.sh, scripts/logs.sh generator"
    fi
else
    bad kafka "not running on $KAFKA_BROKERS" "scripts/up.sh (log: $LOGS/kafka.log)"
fi

if is_running pipeline; then
    if health=$(curl -s --max-time 3 "$API/health"); then
        good pipeline "running (pid $(cat "$STATE/pipeline.pid")), API $API/health: $health"
    else
        bad pipeline "running, but the API on $API does not answer" "scripts/logs.sh pipeline"
    fi
else
    bad pipeline "not running" "scripts/up.sh; if it stopped by itself, scripts/logs.sh pipeline says why"
fi
if is_running generator; then good generator "running (pid $(cat "$STATE/generator.pid"))"; else bad generator "not running" "scripts/up.sh (log: $LOGS/generator.log)"; fi
free=$(df -Pm "$(dirname "$STATE")" | awk 'NR == 2 { print $4 }')
if [ "${free:-0}" -gt 1024 ]; then good disk "${free} MB free"; else bad disk "only ${free} MB free" "free some disk, or scripts/reset.sh"; fi

if [ "$problems" -eq 0 ]; then echo "all good"; else echo "$problems problem(s)"; exit 1; fi
