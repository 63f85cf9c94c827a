#!/usr/bin/env bash
# Installs what the tests need and is not there yet: PostgreSQL (initdb, pg_ctl) and Chromium
# (and Node.js) from Debian's packages, the tansu Kafka-protocol broker from crates.io, Python
# virtual environments of the tests' own with the third-party tools they check against
# (confluent-kafka; schemathesis, from PyPI), and puppeteer-core from npm to drive Chromium.
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

# apt_install PACKAGE…: Debian packages, as root.
apt_updated=no
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        say "$* missing; run as root, or: sudo apt-get install -y $*"
        exit 1
    fi
    if [ "$apt_updated" = no ]; then
        apt-get update -qq
        apt_updated=yes
    fi
    say "Installing $* (apt-get install)."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if pg_bindir >/dev/null; then
    say "PostgreSQL found in $(pg_bindir)."
else
    apt_install postgresql
    # The package starts a cluster of its own; the tests start their own on free ports.
    command -v service >/dev/null && service postgresql stop >/dev/null 2>&1 || true
fi

# TLS tests put stunnel in front of the broker (tansu 0.6 has no TLS listener); the alerting
# rules are checked with promtool.
command -v stunnel4 >/dev/null || apt_install stunnel4
command -v openssl >/dev/null || apt_install openssl
command -v promtool >/dev/null || apt_install prometheus
command -v service >/dev/null && service prometheus stop >/dev/null 2>&1 || true

# The dashboard's test drives the page in Chromium.
if command -v chromium >/dev/null; then
    say "Chromium found at $(command -v chromium)."
else
    apt_install chromium
fi
if command -v node >/dev/null && command -v npm >/dev/null; then
    say "Node.js $(node --version) found."
else
    apt_install nodejs npm
fi
puppeteer="$TOOLS_DIR/node/node_modules/puppeteer-core/package.json"
if [ -f "$puppeteer" ]; then
    say "puppeteer-core found in $TOOLS_DIR/node."
else
    say "Installing puppeteer-core into $TOOLS_DIR/node."
    mkdir -p "$TOOLS_DIR/node"
    npm install --prefix "$TOOLS_DIR/node" --no-audit --no-fund --silent "puppeteer-core@24.43.1"
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

schemathesis="$TOOLS_DIR/schemathesis"
if "$schemathesis/bin/schemathesis" --version 2>/dev/null | grep -q "4.32.5"; then
    say "schemathesis found in $schemathesis."
else
    say "Installing schemathesis into $schemathesis (a virtual environment of its own)."
    python3 -m venv "$schemathesis"
    "$schemathesis/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
