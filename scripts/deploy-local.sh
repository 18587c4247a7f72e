#!/usr/bin/env bash
# A local deployment of pytest-rt as docs/deploy.md describes it: nginx in front of several
# `pytest-rt serve` processes on one PostgreSQL, the dashboard served under /rt/.
#
#   scripts/deploy-local.sh start DIR     # prints the public URL (http://127.0.0.1:PORT/rt/) last
#   scripts/deploy-local.sh stop DIR
#
# Everything lives in DIR: nginx's configuration, pid, logs and temp files; each receiver's
# pid and log; the PostgreSQL cluster when this script starts one. Ports are free ones on
# 127.0.0.1. Environment:
#   PYTEST_RT_DEPLOY_DB         a database URL to use instead of starting PostgreSQL in DIR/pg
#   PYTEST_RT_DEPLOY_RECEIVERS  how many receivers (default 2)
#   PYTEST_RT_SERVE             the pytest-rt command (default: the repo's .venv/bin/pytest-rt)
# Installs nginx (scripts/install-nginx.sh) and PostgreSQL (scripts/start-postgres.sh) when
# they are missing. DIR/url holds the public URL, DIR/receivers the receivers' URLs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action="${1:-}"
dir="${2:-}"
[[ -n "$action" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

nginx_bin() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }
}

stop() {
    local pid
    if [[ -f "$dir/nginx.pid" ]]; then
        pid="$(cat "$dir/nginx.pid")"
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/nginx.pid"
    fi
    for file in "$dir"/receiver-*.pid; do
        [[ -f "$file" ]] || continue
        pid="$(cat "$file")"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$file"
    done
    if [[ -f "$dir/pg.started" ]]; then
        "$here/scripts/stop-postgres.sh" "$dir/pg" >/dev/null 2>&1 || true
        rm -f "$dir/pg.started"
    fi
}

start() {
    mkdir -p "$dir/tmp"
    dir="$(cd "$dir" && pwd)"
    "$here/scripts/install-nginx.sh" >"$dir/install-nginx.log" 2>&1 \
        || { cat "$dir/install-nginx.log" >&2; exit 1; }
    local nginx db serve count port urls=() upstream="" i rport pid line
    nginx="$(nginx_bin)"
    db="${PYTEST_RT_DEPLOY_DB:-}"
    if [[ -z "$db" ]]; then
        db="$("$here/scripts/start-postgres.sh" "$dir/pg" 2>"$dir/pg.log" | tail -n 1)" \
            || { cat "$dir/pg.log" >&2; exit 1; }
        touch "$dir/pg.started"
    fi
    serve="${PYTEST_RT_SERVE:-$here/.venv/bin/pytest-rt}"
    count="${PYTEST_RT_DEPLOY_RECEIVERS:-2}"
    for i in $(seq 1 "$count"); do
        rport="$(free_port)"
        # Bound to loopback: only nginx reaches them. The root path is the one nginx strips.
        "$serve" serve --host 127.0.0.1 --port "$rport" --db "$db" --root-path /rt \
            >"$dir/receiver-$i.log" 2>&1 &
        pid=$!
        echo "$pid" >"$dir/receiver-$i.pid"
        line=""
        for _ in $(seq 1 300); do
            line="$(grep -m1 '^pytest-rt receiver: ' "$dir/receiver-$i.log" || true)"
            [[ -n "$line" ]] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [[ -n "$line" ]] || { cat "$dir/receiver-$i.log" >&2; stop; exit 1; }
        urls+=("http://127.0.0.1:$rport")
        upstream+="        server 127.0.0.1:$rport max_fails=1 fail_timeout=5s;"$'\n'
    done
    printf '%s\n' "${urls[@]}" >"$dir/receivers"
    port="$(free_port)"
    local user=""
    # As root, nginx's workers would run as nobody, who cannot reach DIR (its temp files).
    [[ "$(id -u)" == 0 ]] && user="user root;"
    cat >"$dir/nginx.conf" <<EOF
# pytest-rt behind nginx: written by scripts/deploy-local.sh (docs/deploy.md explains it).
$user
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/nginx-access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    upstream pytest_rt {
$upstream        keepalive 32;
    }

    server {
        listen 127.0.0.1:$port;
        client_max_body_size 10m;        # the receivers' --max-body
        client_body_buffer_size 1m;      # the plugin's batches stay in memory

        location = /rt { return 301 /rt/; }
        location /rt/ {
            proxy_pass http://pytest_rt/;            # strips /rt (the receivers' --root-path)
            proxy_http_version 1.1;
            proxy_set_header Connection "";          # keep-alive to the receivers
            proxy_set_header Host \$http_host;       # the dashboard link names the public host
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;                     # /api/events streams as it comes
            proxy_read_timeout 1h;                   # an open dashboard (pings every 15 s)
            proxy_connect_timeout 2s;
            # A receiver that is down or dies mid-request: the POST goes to the next one.
            # POST /loader is idempotent by event_id, so retrying it is safe.
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
        }
    }
}
EOF
    "$nginx" -e "$dir/nginx-error.log" -p "$dir" -c "$dir/nginx.conf" \
        || { cat "$dir/nginx-error.log" >&2; stop; exit 1; }
    local url="http://127.0.0.1:$port/rt/" ok=""
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + 'healthz', timeout=2)" "$url" 2>/dev/null; then
            ok=1; break
        fi
        sleep 0.1
    done
    [[ -n "$ok" ]] || { cat "$dir/nginx-error.log" >&2; stop; exit 1; }
    echo "$url" >"$dir/url"
    echo "$url"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
