#!/usr/bin/env bash
# Stops what scripts/up.sh started, keeping every state: the generator first, then the pipeline
# (which commits what it has read), the broker and the database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
[ -d "$STATE" ] || { say "nothing to stop: $STATE does not exist"; exit 0; }
stop_process generator
stop_process pipeline 60
stop_process kafka
if [ -d "$STATE/pg/data" ] && pg_is_up; then
    pg_stop "$STATE/pg"
    say "stopped PostgreSQL"
fi
say "down; state kept in $STATE (scripts/reset.sh wipes it)"
