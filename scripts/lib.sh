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
