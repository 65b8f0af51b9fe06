# shellcheck shell=bash
# pg.sh: a throwaway PostgreSQL server for the convert tests. Source it from bash.
#
#   pg_install_if_missing   installs Debian's `postgresql` package when no server binaries
#                           are found (apt-get; needs root or sudo)
#   pg_start DIR            initialises a cluster in DIR/data (trust authentication, user
#                           `postgres`) and starts it listening only on a Unix socket in
#                           DIR; as root it runs as the unprivileged `postgres` user. Sets
#                           PG_HOST (the socket directory), PG_PORT, PG_BIN, PG_USER.
#                           Durability is off (fsync, synchronous_commit): test data only.
#   pg_stop                 stops the server started by pg_start (fast shutdown)
#   pg_url DB               prints the libpq URL zodbfs takes
#   pg_dsn DB               prints the key=value DSN RelStorage takes
#   pg_psql DB ARGS...      runs psql on DB quietly, stopping at the first error
#   pg_recreate_db DB       drops DB if it exists and creates it empty

pg_find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

pg_install_if_missing() {
    if pg_find_bin > /dev/null; then
        return 0
    fi
    echo "pg.sh: installing Debian's postgresql package" >&2
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        postgresql postgresql-contrib > /dev/null
    pg_find_bin > /dev/null
}

# Runs a command as the server's user: `postgres` when we are root, else ourselves.
pg_as_owner() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    local dir="$1"
    PG_BIN="$(pg_find_bin)" || { echo "pg.sh: no PostgreSQL server binaries" >&2; return 1; }
    PG_DIR="$dir"
    PG_HOST="$dir/sock"
    PG_PORT="${PG_PORT:-$((20000 + RANDOM % 20000))}"
    PG_USER=postgres
    mkdir -p "$PG_HOST"
    if [[ $(id -u) == 0 ]]; then
        chmod 755 "$dir"
        chown postgres "$dir" "$PG_HOST"
    fi
    pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --no-locale > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses='' -c unix_socket_directories='$PG_HOST' -p $PG_PORT \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_wal_size=4GB -c shared_buffers=256MB" > /dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    export PG_HOST PG_PORT PG_USER PG_BIN PG_DIR
}

pg_stop() {
    if [[ -n "${PG_DIR:-}" && -f "$PG_DIR/data/postmaster.pid" ]]; then
        pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop > /dev/null 2>&1 || true
    fi
}

pg_url() {
    echo "postgresql:///$1?host=$PG_HOST&port=$PG_PORT&user=$PG_USER"
}

pg_dsn() {
    echo "dbname=$1 host=$PG_HOST port=$PG_PORT user=$PG_USER"
}

pg_psql() {
    local db="$1"
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"
}

pg_recreate_db() {
    pg_psql postgres -c "DROP DATABASE IF EXISTS \"$1\"" -c "CREATE DATABASE \"$1\""
}
