#!/usr/bin/env bash
# Starts the whole pipeline on this machine, no Docker needed: a local PostgreSQL and a local
# Kafka-protocol broker (tansu), `streamflow run` with the HTTP API, and the event generator, as
# background processes with pid files and logs under one state directory ($STREAMFLOW_STATE,
# default ./.streamflow). Installs what is missing first. Running it again starts what is not
# running; after scripts/down.sh it resumes where the pipeline stopped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
mkdir -p "$STATE" "$LOGS"
[ "$(id -u)" -eq 0 ] && chmod 755 "$STATE"

"$ROOT/scripts/install-test-deps.sh"
if [ -z "${STREAMFLOW_BIN:-}" ]; then
    say "building streamflow (release)"
    (cd "$ROOT" && cargo build --release --quiet -p streamflow-runner)
fi

# PostgreSQL: created once, started when it is not running.
if [ ! -d "$STATE/pg/data" ]; then
    say "creating the database in $STATE/pg"
    pg_init "$STATE/pg" "$DB_USER" "$DB_PASSWORD" "$DB_NAME" "$PG_PORT"
elif ! pg_is_up; then
    pg_start "$STATE/pg" "$PG_PORT"
fi
say "PostgreSQL up on port $PG_PORT"

# The broker keeps its log in SQLite, so that it survives down and up.
mkdir -p "$STATE/kafka"
if ! is_running kafka; then
    (cd "$STATE/kafka" && start_process kafka "$TOOLS_DIR/bin/tansu" broker \
        --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" \
        --storage-engine sqlite://tansu.db)
    wait_for "the broker" 30 port_is_open "$KAFKA_PORT"
    # Fetching from SQLite is slow without this index.
    python3 -c "import sqlite3; c = sqlite3.connect('$STATE/kafka/tansu.db'); \
c.execute('create index if not exists header_topition_offset on header(topition, offset_id)'); c.commit()"
fi
say "Kafka-protocol broker up on $KAFKA_BROKERS"

# The pipeline reads the topic from its start the first time, then from its committed offsets.
start_process pipeline "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --database-url "$DATABASE_URL" \
    --start-offsets earliest --http-addr "127.0.0.1:$HTTP_PORT"
start_process generator "$BIN" generate --brokers "$KAFKA_BROKERS" --topic "$TOPIC" \
    --partitions "$PARTITIONS" --rate "$GENERATOR_RATE"
wait_for "the API" 60 curl -sf "$API/health"
say "up: API on $API, logs in $LOGS (scripts/logs.sh), check with scripts/smoke.sh"
