#!/usr/bin/env bash
# `streamflow replay --workers 2` beside a one-thread hand-written loop (benches/hand_loop.rs:
# serde_json with borrowed strings + HashMap) over the same file of EVENTS events of 1,000
# streams: both must print the same rows; 3 interleaved rounds; prints each figure and the
# ratio of the medians.
#   scripts/bench-compare.sh [EVENTS]   (default 5,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

events=${1:-5000000}
work=$(mktemp -d /tmp/streamflow-compare-XXXXXX)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p streamflow-runner
cargo bench --quiet --bench hand_loop --no-run 2>/dev/null
bin=target/release/streamflow
say "generating $events events of 1,000 streams (2,000 events/s of event time, none late or malformed)"
"$bin" generate --output "$work/events.jsonl" --count "$events" --streams 1000 --event-rate 2000 --seed 5 --log warn

rate_of() { grep -oE '[0-9]+ (records|events)/s' | grep -oE '^[0-9]+'; }
loops=() replays=()
for round in 1 2 3; do
    loop=$(cargo bench --quiet --bench hand_loop -- "$work/events.jsonl" 2>&1 >"$work/loop.csv" | rate_of)
    replay=$("$bin" replay --input "$work/events.jsonl" --workers 2 --log warn 2>&1 >"$work/replay.csv" | rate_of)
    if [ "$round" -eq 1 ] && ! cmp -s <(sort "$work/loop.csv") <(sort "$work/replay.csv"); then
        echo "bench-compare: the loop and the replay give different rows" >&2
        diff <(sort "$work/loop.csv") <(sort "$work/replay.csv") | head >&2
        exit 1
    fi
    say "round $round: hand-written loop $loop events/s, replay --workers 2 $replay events/s"
    loops+=("$loop") replays+=("$replay")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
awk -v l="$(median "${loops[@]}")" -v r="$(median "${replays[@]}")" 'BEGIN {
    printf "median: hand-written loop %d events/s, replay --workers 2 %d events/s: %.2f x\n", l, r, r / l }'
