#!/usr/bin/env bash
# Soak test: the local stack (the parts of scripts/up.sh) with the generator at 5,000 events/s
# over 4 partitions, late and malformed events among them. For the first two thirds of the time
# a loop kills `streamflow run` with SIGKILL at random moments, restarts PostgreSQL and the
# broker, and adds a partition once; the last third runs undisturbed while the pipeline's
# resident memory is sampled. At the end the generator stops, the pipeline catches up and stops,
# and `streamflow replay` reads the whole log back from the broker into a schema of its own: the
# two tables must be equal row for row, and the dead letters the same records, each once.
#   scripts/soak.sh MINUTES
# Settings: STREAMFLOW_SOAK_RATE (events/s, 5000), STREAMFLOW_STATE (a new temporary directory);
# everything stays under the state directory, which is kept for inspection.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MINUTES=${1:?usage: scripts/soak.sh MINUTES}
export STREAMFLOW_STATE=${STREAMFLOW_STATE:-$(mktemp -d /tmp/streamflow-soak.XXXXXX)}
export STREAMFLOW_PG_PORT=${STREAMFLOW_PG_PORT:-$(free_port)}
export STREAMFLOW_KAFKA_PORT=${STREAMFLOW_KAFKA_PORT:-$(free_port)}
export STREAMFLOW_HTTP_PORT=${STREAMFLOW_HTTP_PORT:-$(free_port)}
stack_config
RATE=${STREAMFLOW_SOAK_RATE:-5000}
TOPIC=soak.events
PSQL="$(pg_bindir)/psql -qAt -h 127.0.0.1 -p $PG_PORT -U $DB_USER -d $DB_NAME"
export PGPASSWORD=$DB_PASSWORD
mkdir -p "$STATE" "$LOGS"
[ "$(id -u)" -eq 0 ] && chmod 755 "$STATE"

"$ROOT/scripts/install-test-deps.sh"
if [ -z "${STREAMFLOW_BIN:-}" ]; then
    say "building streamflow (release)"
    (cd "$ROOT" && cargo build --release --quiet -p streamflow-runner)
fi

cleanup() {
    stop_process generator 5 || true
    stop_process pipeline 5 || true
    stop_process kafka 5 || true
    [ -d "$STATE/pg/data" ] && pg_stop "$STATE/pg"
    [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null || true
}
trap cleanup EXIT

start_generator() {
    start_process generator "$BIN" generate --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --partitions "$1" \
        --streams 40 --rate "$RATE" --late-ratio 0.01 --bad-ratio 0.01 --seed "$RANDOM"
}
start_pipeline() {
    start_process pipeline "$BIN" run --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --database-url "$DATABASE_URL" \
        --start-offsets earliest --http-addr "127.0.0.1:$HTTP_PORT"
}
kill_pipeline() {
    kill -KILL "$(cat "$STATE/pipeline.pid")" 2>/dev/null || true
    rm -f "$STATE/pipeline.pid"
}
restart_postgres() {
    pg_stop "$STATE/pg" immediate
    sleep 2
    pg_start "$STATE/pg" "$PG_PORT"
}
restart_broker() {
    kill -KILL "$(cat "$STATE/kafka.pid")" 2>/dev/null || true
    rm -f "$STATE/kafka.pid"
    sleep 2
    start_broker
}
# The end of every partition's log, summed.
end_of_log() {
    "$BIN" offsets --brokers "$KAFKA_BROKERS" --topic "$TOPIC" | awk 'NR > 1 { sum += $2 } END { print sum + 0 }'
}
committed() {
    $PSQL -c "SELECT coalesce(sum(next_offset), 0) FROM source_offsets WHERE pipeline = 'streamflow'" 2>/dev/null || echo 0
}

start_postgres
start_broker
start_generator 4
sleep 3
start_pipeline

# The pipeline's resident memory, every 10 s, whichever process runs it.
(
    while true; do
        pid=$(cat "$STATE/pipeline.pid" 2>/dev/null || true)
        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$(date +%s) $pid $rss" >>"$STATE/rss.log"
        sleep 10
    done
) &
SAMPLER=$!

started=$(date +%s)
disturb_until=$((started + MINUTES * 40))   # two thirds of MINUTES * 60 s
end=$((started + MINUTES * 60))
grow_at=$((started + MINUTES * 20))
kills=0 pg_restarts=0 broker_restarts=0 grown=no
next_pg=$((started + 300)) next_broker=$((started + 420))
while [ "$(date +%s)" -lt "$disturb_until" ]; do
    sleep $((20 + RANDOM % 40))
    now=$(date +%s)
    if [ "$grown" = no ] && [ "$now" -ge "$grow_at" ]; then
        say "adding a partition"
        stop_process generator 5
        add_partitions "$TOPIC" 5
        start_generator 5
        grown=yes broker_restarts=$((broker_restarts + 1))
    elif [ "$now" -ge "$next_pg" ]; then
        say "restarting PostgreSQL"
        restart_postgres
        pg_restarts=$((pg_restarts + 1)) next_pg=$((now + 300))
    elif [ "$now" -ge "$next_broker" ]; then
        say "restarting the broker"
        restart_broker
        broker_restarts=$((broker_restarts + 1)) next_broker=$((now + 420))
    else
        say "kill -9 of the pipeline"
        kill_pipeline
        sleep $((RANDOM % 4))
        start_pipeline
        kills=$((kills + 1))
    fi
done
calm_from=$(date +%s)
say "undisturbed until the end; $kills kills, $pg_restarts PostgreSQL restarts, $broker_restarts broker restarts so far"
while [ "$(date +%s)" -lt "$end" ]; do sleep 10; done

stop_process generator 10
total=$(end_of_log)
say "the log holds $total records; waiting for the pipeline to commit them all"
for _ in $(seq 600); do [ "$(committed)" -ge "$total" ] && break; sleep 1; done
[ "$(committed)" -ge "$total" ] || die "the pipeline committed $(committed) of $total records"
stop_process pipeline 60
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

say "replaying the log from the broker into the schema reference"
$PSQL -c "CREATE SCHEMA IF NOT EXISTS reference"
replay_started=$(date +%s)
"$BIN" replay --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --pipeline-name reference \
    --database-url "$DATABASE_URL?options=-csearch_path%3Dreference" 2>"$LOGS/replay.log"
replay_seconds=$(($(date +%s) - replay_started))

COLUMNS="window_start, window_end, stream_id, events, chat_messages, donations_count, donations_usd,
    viewer_joins, viewer_leaves, net_viewer_delta, unique_viewers, active_viewers"
rows=$($PSQL -c "SELECT count(*) FROM public.stream_metrics_minute")
reference_rows=$($PSQL -c "SELECT count(*) FROM reference.stream_metrics_minute")
differ=$($PSQL -c "SELECT count(*) FROM (
    (SELECT $COLUMNS FROM public.stream_metrics_minute EXCEPT SELECT $COLUMNS FROM reference.stream_metrics_minute)
    UNION ALL
    (SELECT $COLUMNS FROM reference.stream_metrics_minute EXCEPT SELECT $COLUMNS FROM public.stream_metrics_minute)) d")
state_differ=$($PSQL -c "SELECT count(*) FROM (
    (SELECT stream_id, active_viewers, window_start FROM public.stream_state
     EXCEPT SELECT stream_id, active_viewers, window_start FROM reference.stream_state)
    UNION ALL
    (SELECT stream_id, active_viewers, window_start FROM reference.stream_state
     EXCEPT SELECT stream_id, active_viewers, window_start FROM public.stream_state)) d")
letters=$($PSQL -c "SELECT count(*) FROM public.dead_letters")
reference_letters=$($PSQL -c "SELECT count(*) FROM reference.dead_letters")
letters_differ=$($PSQL -c "SELECT count(*) FROM (
    (SELECT partition, \"offset\", reason, payload FROM public.dead_letters
     EXCEPT SELECT partition, \"offset\", reason, payload FROM reference.dead_letters)
    UNION ALL
    (SELECT partition, \"offset\", reason, payload FROM reference.dead_letters
     EXCEPT SELECT partition, \"offset\", reason, payload FROM public.dead_letters)) d")
accepted=$($PSQL -c "SELECT sum(events) FROM public.stream_metrics_minute")
rss_first=$(awk -v from="$calm_from" '$1 >= from + 60 { print $3; exit }' "$STATE/rss.log")
rss_last=$(tail -n 1 "$STATE/rss.log" | awk '{ print $3 }')
rss_max=$(awk -v from="$calm_from" '$1 >= from + 60 && $3 > max { max = $3 } END { print max + 0 }' "$STATE/rss.log")

cat <<REPORT
soak: $MINUTES min at $RATE events/s: $total records ($accepted accepted, $letters dead letters) in 4 then 5 partitions
soak: $kills kills (SIGKILL) of the pipeline, $pg_restarts PostgreSQL restarts, $broker_restarts broker restarts (one to add a partition)
soak: rows $rows, the replay's $reference_rows, rows that differ $differ; stream_state rows that differ $state_differ
soak: dead letters $letters, the replay's $reference_letters, that differ $letters_differ
soak: pipeline RSS over the undisturbed last third: ${rss_first} KiB a minute in, ${rss_last} KiB at the end, ${rss_max} KiB at most
soak: the replay of the log took $replay_seconds s; state and logs in $STATE
REPORT
[ "$differ" -eq 0 ] && [ "$state_differ" -eq 0 ] && [ "$letters_differ" -eq 0 ] && [ "$rows" -eq "$reference_rows" ] \
    && [ "$letters" -eq "$reference_letters" ] && [ "$((accepted + letters))" -eq "$total" ] \
    || die "the pipeline's tables differ from the replay of its log"
say "passed"
