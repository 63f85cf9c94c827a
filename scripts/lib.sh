# Shared helpers of the scripts: a local PostgreSQL in a directory of ours, free ports, messages.
# Source it: `. "$(dirname "$0")/lib.sh"`.

say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "$*"; exit 1; }

# A TCP port nothing listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The directory of Debian's PostgreSQL programs.
pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    die "PostgreSQL is not installed: run scripts/install-test-deps.sh"
}

# Runs a PostgreSQL program as the owner of the data: initdb refuses root, so as root the server
# runs as the `postgres` user Debian's package creates.
pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_init DIR USER PASSWORD DATABASE PORT: a new cluster in DIR/data with a password-protected
# superuser and a database.
pg_init() {
    local dir=$1 user=$2 password=$3 database=$4 port=$5 bin
    bin=$(pg_bindir)
    mkdir -p "$dir"
    printf '%s\n' "$password" > "$dir/password"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    pg_as_owner "$bin/initdb" -D "$dir/data" -U "$user" -E UTF8 --locale=C --auth-local=trust \
        --auth-host=scram-sha-256 --pwfile="$dir/password" >"$dir/initdb.log" 2>&1 \
        || die "initdb failed: see $dir/initdb.log"
    pg_start "$dir" "$port"
    PGPASSWORD=$password "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE $database" \
        || die "cannot create the database $database"
}

# pg_start DIR PORT [EXTRA SERVER OPTIONS]: starts the cluster of DIR on PORT (loopback only).
pg_start() {
    local dir=$1 port=$2 extra=${3:-}
    pg_as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' $extra" start >/dev/null \
        || die "PostgreSQL did not start: see $dir/server.log"
}

# pg_stop DIR [MODE]: stops the cluster of DIR (fast by default).
pg_stop() {
    pg_as_owner "$(pg_bindir)/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
}

# ---- The local stack of scripts/up.sh and its siblings --------------------------------------
# Everything lives under one state directory; every setting can be overridden from the
# environment (docs/configuration.md lists them).
stack_config() {
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    STATE=${STREAMFLOW_STATE:-$ROOT/.streamflow}
    PG_PORT=${STREAMFLOW_PG_PORT:-55432}
    KAFKA_PORT=${STREAMFLOW_KAFKA_PORT:-9092}
    HTTP_PORT=${STREAMFLOW_HTTP_PORT:-8000}
    TOPIC=${KAFKA_TOPIC:-stream.events}
    GENERATOR_RATE=${STREAMFLOW_GENERATOR_RATE:-20}
    PARTITIONS=${STREAMFLOW_PARTITIONS:-3}
    DB_USER=rt DB_PASSWORD=rt DB_NAME=realtime
    DATABASE_URL="postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
    KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
    API="http://127.0.0.1:$HTTP_PORT"
    TOOLS_DIR=${STREAMFLOW_TOOLS_DIR:-$HOME/.cache/streamflow/tools}
    BIN=${STREAMFLOW_BIN:-$ROOT/target/release/streamflow}
    LOGS=$STATE/logs
}

# is_running NAME: whether the process of NAME's pid file is alive.
is_running() {
    local pid_file=$STATE/$1.pid
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# start_process NAME COMMAND...: runs COMMAND in the background, logging to $LOGS/NAME.log.
start_process() {
    local name=$1
    shift
    if is_running "$name"; then
        say "$name is already running (pid $(cat "$STATE/$name.pid"))"
        return 0
    fi
    mkdir -p "$LOGS"
    nohup "$@" >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$STATE/$name.pid"
    say "started $name (pid $!, log $LOGS/$name.log)"
}

# stop_process NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 30).
stop_process() {
    local name=$1 grace=${2:-30} pid
    is_running "$name" || { rm -f "$STATE/$name.pid"; return 0; }
    pid=$(cat "$STATE/$name.pid")
    kill -TERM "$pid"
    for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop in ${grace} s; killing it"
        kill -KILL "$pid"
    fi
    rm -f "$STATE/$name.pid"
    say "stopped $name"
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "$what did not come up in ${seconds} s"
}

# start_postgres: the stack's database, created once, started when it is not running.
start_postgres() {
    if [ ! -d "$STATE/pg/data" ]; then
        say "creating the database in $STATE/pg"
        pg_init "$STATE/pg" "$DB_USER" "$DB_PASSWORD" "$DB_NAME" "$PG_PORT"
    elif ! pg_is_up; then
        pg_start "$STATE/pg" "$PG_PORT"
    fi
    say "PostgreSQL up on port $PG_PORT"
}

# start_broker: the stack's Kafka-protocol broker (tansu), its log in SQLite so that it survives
# a restart.
start_broker() {
    mkdir -p "$STATE/kafka"
    if ! is_running kafka; then
        (cd "$STATE/kafka" && start_process kafka "$TOOLS_DIR/bin/tansu" broker \
            --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" \
            --storage-engine sqlite://tansu.db)
        wait_for "the broker" 30 port_is_open "$KAFKA_PORT"
        # Fetching from SQLite is slow without this index.
        python3 -c "import sqlite3; c = sqlite3.connect('$STATE/kafka/tansu.db'); \
c.execute('create index if not exists header_topition_offset on header(topition, offset_id)'); c.commit()"
    fi
    say "Kafka-protocol broker up on $KAFKA_BROKERS"
}

# add_partitions TOPIC N: grows TOPIC to N partitions, with the broker stopped meanwhile (see
# tansu-add-partitions.py), and starts it again.
add_partitions() {
    local topic=$1 partitions=$2
    stop_process kafka
    "$ROOT/scripts/tansu-add-partitions.py" "$STATE/kafka/tansu.db" "$topic" "$partitions"
    start_broker
}

pg_is_up() {
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

port_is_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
