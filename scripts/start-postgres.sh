#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the receiver's tests; print its SQLAlchemy URL.
#
#   scripts/start-postgres.sh [DIR]      (DIR defaults to .pgdata in the repo)
#
# Idempotent: installs Debian's postgresql when no initdb/pg_ctl is found,
# creates the cluster in DIR once, starts it on a free 127.0.0.1 port (unix
# socket in DIR) unless it is already running, creates the database
# `pytest_rt`, and prints `postgresql+psycopg://postgres@127.0.0.1:PORT/pytest_rt`
# as its last line. Runs the server as the `postgres` user when we are root
# (initdb refuses root). Authentication is `trust` on loopback only: a test
# database, never a production one. Stop it with scripts/stop-postgres.sh DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$here/.pgdata}"
db=pytest_rt

find_bin() {
    local name="$1" found
    if found="$(command -v "$name" 2>/dev/null)"; then echo "$found"; return 0; fi
    found="$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$found" ]]; then echo "$found"; return 0; fi
    return 1
}

if ! find_bin initdb >/dev/null || ! find_bin pg_ctl >/dev/null; then
    echo "start-postgres: installing postgresql (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
initdb="$(readlink -f "$(find_bin initdb)")"
pg_ctl="$(readlink -f "$(find_bin pg_ctl)")"
bindir="$(dirname "$pg_ctl")"
psql="$bindir/psql"

as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home postgres
    chown postgres: "$dir"
    chmod 700 "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
        # A checkout under a private home (/root is 0700): the postgres user cannot
        # reach it. Keep the cluster in /tmp instead, under a name stop-postgres.sh
        # derives the same way.
        rmdir "$dir" 2>/dev/null || true
        dir="${TMPDIR:-/tmp}/pytest-rt-pg-$(printf '%s' "$dir" | md5sum | cut -c1-12)"
        echo "start-postgres: the postgres user cannot reach the checkout; using $dir" >&2
        mkdir -p "$dir"
        chown postgres: "$dir"
        chmod 700 "$dir"
    fi
fi

if [[ ! -f "$dir/PG_VERSION" ]]; then
    as_owner "$initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi

if as_owner "$pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    port="$(cat "$dir/rt_port")"
else
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    echo "$port" | as_owner tee "$dir/rt_port" >/dev/null
    as_owner "$pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" >&2
fi

exists="$(as_owner "$psql" -h "$dir" -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'")"
if [[ "$exists" != 1 ]]; then
    as_owner "$psql" -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $db" >&2
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$port/$db"
