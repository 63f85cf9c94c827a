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

start_postgres
start_broker

# The pipeline reads the topic from its start the first time, then from its committed offsets.
start_process pipeline "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --database-url "$DATABASE_URL" \
    --start-offsets earliest --http-addr "127.0.0.1:$HTTP_PORT"
start_process generator "$BIN" generate --brokers "$KAFKA_BROKERS" --topic "$TOPIC" \
    --partitions "$PARTITIONS" --rate "$GENERATOR_RATE"
wait_for "the API" 60 curl -sf "$API/health"
say "up: API on $API, logs in $LOGS (scripts/logs.sh), check with scripts/smoke.sh"
