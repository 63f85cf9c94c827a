#!/usr/bin/env bash
# Checks a running stack end to end, as the original's smoke test did, and stops at the first
# failure with a message saying what failed: the topic exists, the generator's offsets advance,
# PostgreSQL has recent rows, a donation made here shows up in its window with its exact amount,
# and the API answers with the documented shapes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
fail() { say "FAIL: $*"; exit 1; }
ok() { say "ok: $*"; }
psql_at() { "$(pg_bindir)/psql" -At "$DATABASE_URL" -c "$1"; }
end_offsets() { # the sum of the partitions' ends of log
    "$BIN" offsets --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --log error | awk 'NR > 1 { sum += $2 } END { print sum + 0 }'
}

"$BIN" offsets --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --log error >/dev/null 2>&1 \
    || fail "the topic $TOPIC does not exist on $KAFKA_BROKERS (is the generator running? scripts/doctor.sh)"
ok "topic $TOPIC exists"

before=$(end_offsets)
sleep 3
after=$(end_offsets)
[ "$after" -gt "$before" ] || fail "the topic's offsets did not advance in 3 s ($before, then $after): the generator is not producing"
ok "offsets advance ($before -> $after)"

recent=$(psql_at "SELECT count(*) FROM stream_metrics_minute WHERE updated_at > now() - interval '2 minutes'") \
    || fail "cannot query PostgreSQL at port $PG_PORT"
[ "$recent" -gt 0 ] || fail "no row of stream_metrics_minute changed in the last 2 minutes: the pipeline is not writing"
ok "$recent rows changed in the last 2 minutes"

# A donation of a known amount, now, on a stream of its own.
stream="smoke_$(date +%s)_$RANDOM"
ts=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
printf '{"event_id":"%s","ts":"%s","event_type":"donation","stream_id":"%s","user_id":"smoke","amount_usd":123.45}\n' \
    "$stream" "$ts" "$stream" | "$BIN" produce --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --log error \
    || fail "cannot produce to $KAFKA_BROKERS"
window=$(date -u -d "$ts" +%Y-%m-%dT%H:%M:00Z)
found=
for _ in $(seq 300); do
    found=$(psql_at "SELECT donations_usd::text || ' ' || donations_count || ' ' || (window_start = '$window')
        FROM stream_metrics_minute WHERE stream_id = '$stream'")
    [ -n "$found" ] && break
    sleep 0.1
done
[ -n "$found" ] || fail "the donation on $stream did not reach PostgreSQL in 30 s"
[ "$found" = "123.45 1 true" ] || fail "the donation on $stream arrived wrong: amount, count, in its window = $found"
ok "the donation of 123.45 on $stream is in its window $window"

api() { curl -sf --max-time 5 "$API$1" || fail "GET $1 failed: is the pipeline running with --http-addr? (scripts/doctor.sh)"; }
check_json() { # check_json PATH PYTHON-EXPRESSION-ON-body
    python3 -c "import json, sys; body = json.load(sys.stdin); sys.exit(0 if ($2) else 1)" <<<"$(api "$1")" \
        || fail "GET $1 did not answer as documented ($2)"
}
check_json /health 'body == {"ok": True}'
row_keys='{"window_start", "window_end", "stream_id", "events", "chat_messages", "donations_count", "donations_usd", "viewer_joins", "viewer_leaves", "net_viewer_delta", "unique_viewers", "active_viewers"}'
check_json "/metrics?minutes=5" "set(body) == {'latest_window_start', 'rows'} and body['rows'] and all(set(r) == $row_keys for r in body['rows'])"
check_json /metrics/latest "body['rows'] and all(set(r) == $row_keys for r in body['rows'])"
check_json "/streams/top?by=donations_usd&minutes=5&n=1000" \
    "{'stream_id': '$stream', 'donations_usd': 123.45} in body['rows'] and body['by'] == 'donations_usd'"
check_json "/streams/$stream/metrics?from=$window" "len(body['rows']) == 1 and body['rows'][0]['donations_usd'] == 123.45"
ok "the API answers /health, /metrics, /metrics/latest, /streams/top, /streams/{id}/metrics"
say "smoke test passed"
