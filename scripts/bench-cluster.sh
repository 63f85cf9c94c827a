#!/usr/bin/env bash
# Timely's cluster mode on this machine: `streamflow replay` of one file by one process of two
# workers against two processes of one worker (the cost of exchanging over TCP), the bytes the
# two processes exchanged per event, and how long a process takes to stop once its peer died
# (kill -9) or fell silent (SIGSTOP).
#   scripts/bench-cluster.sh [EVENTS]      (default 2,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-2000000}
cargo build --release --locked -q -p streamflow-runner
BIN=target/release/streamflow
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
hosts() { echo "127.0.0.1:$(free_port),127.0.0.1:$(free_port)"; }

"$BIN" generate --output "$DIR/events.jsonl" --count "$EVENTS" --streams 1000 --partitions 1 \
    --event-rate 2000 --late-ratio 0.01 --bad-ratio 0.01 2>/dev/null
# 2,000 events a second of event time, as the window benchmark. A file is one partition, read
# by process 0: what the cluster spreads is the decoded events (by stream) and the rows.
echo "cluster bench: $EVENTS events of 1,000 streams"

for round in 1 2 3; do
    t0=$(now)
    "$BIN" replay --input "$DIR/events.jsonl" --workers 2 > "$DIR/alone.csv" 2>/dev/null
    t1=$(now)
    HOSTS=$(hosts)
    STREAMFLOW_LOG=info "$BIN" replay --input "$DIR/events.jsonl" --workers 1 --processes 2 --process 0 \
        --hosts "$HOSTS" > "$DIR/cluster.csv" 2> "$DIR/zero.log" &
    zero=$!
    STREAMFLOW_LOG=info "$BIN" replay --input "$DIR/events.jsonl" --workers 1 --processes 2 --process 1 \
        --hosts "$HOSTS" > /dev/null 2> "$DIR/one.log"
    wait $zero
    t2=$(now)
    cmp -s "$DIR/alone.csv" "$DIR/cluster.csv" || { echo "the CSVs differ" >&2; exit 1; }
    alone=$(echo "$EVENTS / ($t1 - $t0)" | bc -l)
    clustered=$(echo "$EVENTS / ($t2 - $t1)" | bc -l)
    bytes=$(grep -o 'sent_bytes=[0-9]* received_bytes=[0-9]*' "$DIR/zero.log" | head -1 |
        awk -F'[= ]' '{ print $2 + $4 }')
    printf 'round %d: 1 process x 2 workers %9.0f events/s; 2 processes x 1 worker %9.0f events/s (%.2fx); %.1f bytes exchanged per event\n' \
        "$round" "$alone" "$clustered" "$(echo "$clustered / $alone" | bc -l)" "$(echo "$bytes / $EVENTS" | bc -l)"
done

# Detection: a peer killed, and a peer stopped, while a longer replay runs (20 events a second
# of event time: many more windows and rows per event).
"$BIN" generate --output "$DIR/slow.jsonl" --count "$EVENTS" --streams 1000 --partitions 1 2>/dev/null
detect() { # $1: the signal for process 1; prints the seconds process 0 took to stop after it
    local signal=$1 HOSTS
    HOSTS=$(hosts)
    "$BIN" replay --input "$DIR/slow.jsonl" --workers 1 --processes 2 --process 0 --hosts "$HOSTS" \
        --peer-timeout-seconds 5 > /dev/null 2> "$DIR/detect.log" &
    local zero=$!
    "$BIN" replay --input "$DIR/slow.jsonl" --workers 1 --processes 2 --process 1 --hosts "$HOSTS" \
        --peer-timeout-seconds 5 > /dev/null 2>&1 &
    local one=$!
    sleep 1.5
    local t0
    t0=$(now)
    kill "-$signal" "$one"
    wait "$zero" || true
    local t1
    t1=$(now)
    kill -9 "$one" 2>/dev/null || true
    wait "$one" 2>/dev/null || true
    grep -q "lost process 1" "$DIR/detect.log" || { echo "process 0 did not name the lost peer" >&2; exit 1; }
    echo "$t1 - $t0" | bc -l
}
printf 'a killed peer (SIGKILL) stops the other in %.2f s\n' "$(detect KILL)"
printf 'a silent peer (SIGSTOP, --peer-timeout-seconds 5) stops the other in %.2f s\n' "$(detect STOP)"
