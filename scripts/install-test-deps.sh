#!/usr/bin/env bash
# Installs what the tests need and is not there yet: PostgreSQL (initdb, pg_ctl) from Debian's
# packages, the tansu Kafka-protocol broker from crates.io, and a Python virtual environment of
# the tests' own with the third-party clients they check against (confluent-kafka, from PyPI).
# Safe to run again: what is installed is kept, so only a fresh machine pays for the build
# (about 15 minutes for tansu).
set -euo pipefail

TANSU_VERSION=0.6.0
TOOLS_DIR=${STREAMFLOW_TOOLS_DIR:-$HOME/.cache/streamflow/tools}

say() { printf 'install-test-deps: %s\n' "$*" >&2; }

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
    return 1
}

if pg_bindir >/dev/null; then
    say "PostgreSQL found in $(pg_bindir)."
else
    if [ "$(id -u)" -ne 0 ]; then
        say "PostgreSQL is missing; run as root, or: sudo apt-get install -y postgresql"
        exit 1
    fi
    say "Installing PostgreSQL (apt-get install postgresql)."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own; the tests start their own on free ports.
    command -v service >/dev/null && service postgresql stop >/dev/null 2>&1 || true
fi

tansu_bin="$TOOLS_DIR/bin/tansu"
if [ -x "$tansu_bin" ] && "$tansu_bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    say "tansu $TANSU_VERSION found at $tansu_bin."
else
    say "Building tansu $TANSU_VERSION into $TOOLS_DIR (once; 13 to 25 minutes on 2 cores)."
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
        --root "$TOOLS_DIR" --quiet
fi

venv="$TOOLS_DIR/python"
if "$venv/bin/python" -c "import confluent_kafka" 2>/dev/null; then
    say "confluent-kafka found in $venv."
else
    say "Installing confluent-kafka into $venv (a virtual environment of the tests' own)."
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "confluent-kafka==2.16.1"
fi
