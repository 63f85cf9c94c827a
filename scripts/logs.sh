#!/usr/bin/env bash
# Follows the logs of the stack: all of them, or one part (pipeline, generator, kafka, postgres).
#   scripts/logs.sh [PART] [--no-follow]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stack_config
part=${1:-}
follow=-F
[ "${2:-}" = --no-follow ] || [ "$part" = --no-follow ] && follow=
[ "$part" = --no-follow ] && part=
case "$part" in
    "") files=("$LOGS"/*.log "$STATE/pg/server.log") ;;
    postgres) files=("$STATE/pg/server.log") ;;
    pipeline|generator|kafka) files=("$LOGS/$part.log") ;;
    *) die "unknown part $part: use pipeline, generator, kafka or postgres" ;;
esac
if [ -n "$follow" ]; then
    exec tail -n 50 -F "${files[@]}"
fi
exec tail -n 50 "${files[@]}"
