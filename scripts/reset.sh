#!/usr/bin/env bash
# Stops everything and wipes the state: the database, the broker's log, the logs. The next
# scripts/up.sh starts from nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
"$ROOT/scripts/down.sh"
rm -rf "$STATE"
say "reset: $STATE removed"
