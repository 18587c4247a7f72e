#!/usr/bin/env bash
# Stop the PostgreSQL that scripts/start-postgres.sh started in DIR (default .pgdata).
# Keeps the data; `rm -rf DIR` afterwards for a clean slate. Idempotent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$here/.pgdata}"
if [[ ! -f "$dir/PG_VERSION" ]]; then
    # start-postgres.sh moves the cluster to /tmp when the postgres user cannot reach DIR.
    abs="$(cd "$(dirname "$dir")" 2>/dev/null && pwd)/$(basename "$dir")"
    dir="${TMPDIR:-/tmp}/pytest-rt-pg-$(printf '%s' "$abs" | md5sum | cut -c1-12)"
    [[ -f "$dir/PG_VERSION" ]] || exit 0
fi

pg_ctl="$(command -v pg_ctl 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)"
if [[ "$(id -u)" == 0 ]]; then
    run=(runuser -u postgres --)
else
    run=()
fi
if "${run[@]}" "$pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    "${run[@]}" "$pg_ctl" -D "$dir" -m fast -w stop >&2
fi
