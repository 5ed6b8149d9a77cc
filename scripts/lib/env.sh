# shellcheck shell=bash
# Shared setup for scripts/serve, scripts/test, scripts/check and scripts/stop.
#
# Source it, then call what you need:
#   shoplink_setup            venv + PostgreSQL + Redis, exports SHOPLINK_DATABASE_URL / SHOPLINK_REDIS_URL
#   shoplink_ensure_venv      .venv with `pip install -e '.[dev]'` (re-run only when pyproject.toml changes)
#   shoplink_ensure_postgres  project-local PostgreSQL unless SHOPLINK_DATABASE_URL is set
#   shoplink_ensure_redis     project-local Redis unless SHOPLINK_REDIS_URL is set
#   shoplink_ensure_redis_server_binary   redis-server on PATH (the test suite starts its own)
#   shoplink_ensure_web_assets  `npm ci` in web/ (chart.js for the dashboard) when node_modules is missing or stale
#   shoplink_stop_services    stop the project-local PostgreSQL and Redis
# Run directly (`bash scripts/lib/env.sh`) it does the whole setup and prints `export` lines:
#   eval "$(bash scripts/lib/env.sh)"
#
# Works as root on a fresh Debian machine (installs PostgreSQL / redis-server with apt when missing,
# runs PostgreSQL as the `postgres` user) and as an ordinary user (everything runs as that user).
# Knobs: SHOPLINK_LOCAL_PG_PORT (55432), SHOPLINK_LOCAL_REDIS_PORT (56379), SHOPLINK_PYTHON (python to
# build .venv with), SHOPLINK_PG_BINDIR (PostgreSQL server binaries).
#
# The local PostgreSQL is for development and tests only: trust auth on 127.0.0.1, fsync off.

set -euo pipefail

SHOPLINK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
SHOPLINK_VENV="$SHOPLINK_ROOT/.venv"
SHOPLINK_LOCAL="$SHOPLINK_ROOT/.local"
# Remember whether the PostgreSQL port was chosen by the user: a default port that another checkout's
# server already holds is then skipped for the next free one instead of failing.
_SHOPLINK_PG_PORT_SET="${SHOPLINK_LOCAL_PG_PORT:+1}"
SHOPLINK_LOCAL_PG_PORT="${SHOPLINK_LOCAL_PG_PORT:-55432}"
SHOPLINK_LOCAL_REDIS_PORT="${SHOPLINK_LOCAL_REDIS_PORT:-56379}"
_SHOPLINK_APT_UPDATED=0
_SHOPLINK_PG_BINDIR=""

shoplink_log() {
    printf '[shoplink] %s\n' "$*" >&2
}

shoplink_die() {
    printf '[shoplink] error: %s\n' "$*" >&2
    exit 1
}

_shoplink_is_root() {
    [[ "$(id -u)" -eq 0 ]]
}

# Install Debian packages (root only). Runs `apt-get update` once per process.
_shoplink_apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || shoplink_die "need to install $*, but apt-get is not available; install it by hand"
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$_SHOPLINK_APT_UPDATED" -eq 0 ]]; then
        shoplink_log "apt-get update"
        apt-get update -qq </dev/null >&2
        _SHOPLINK_APT_UPDATED=1
    fi
    shoplink_log "apt-get install -y $*"
    apt-get install -y -q "$@" </dev/null >&2
}

_shoplink_hash() {
    # sha256 of stdin, hex only.
    sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------------------------------------
# Python virtualenv
# ---------------------------------------------------------------------------------------------

_shoplink_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

_shoplink_pick_python() {
    local candidate
    for candidate in ${SHOPLINK_PYTHON:+"$SHOPLINK_PYTHON"} python3.11 python3 python3.12 python3.13 python3.14; do
        if command -v "$candidate" >/dev/null 2>&1 && _shoplink_python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

shoplink_ensure_venv() {
    local pyproject="$SHOPLINK_ROOT/pyproject.toml"
    local stamp="$SHOPLINK_VENV/.shoplink-pyproject.sha256"
    [[ -f "$pyproject" ]] || shoplink_die "no pyproject.toml in $SHOPLINK_ROOT"

    if [[ -x "$SHOPLINK_VENV/bin/python" ]] && ! _shoplink_python_ok "$SHOPLINK_VENV/bin/python"; then
        shoplink_log "$SHOPLINK_VENV is broken or older than Python 3.11; recreating it"
        rm -rf -- "$SHOPLINK_VENV"
    fi
    if [[ ! -x "$SHOPLINK_VENV/bin/python" ]]; then
        local python
        python="$(_shoplink_pick_python)" \
            || shoplink_die "Python 3.11+ not found (tried python3.11, python3, python3.12+); set SHOPLINK_PYTHON"
        shoplink_log "creating $SHOPLINK_VENV with $python ($("$python" -c 'import platform; print(platform.python_version())'))"
        if ! "$python" -m venv "$SHOPLINK_VENV" >&2; then
            rm -rf -- "$SHOPLINK_VENV"
            if _shoplink_is_root; then
                _shoplink_apt_install python3-venv
                "$python" -m venv "$SHOPLINK_VENV" >&2
            else
                shoplink_die "'$python -m venv' failed; install the venv module (Debian: apt-get install python3-venv)"
            fi
        fi
    fi

    local want have=""
    want="$(_shoplink_hash <"$pyproject")"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ "$want" != "$have" ]]; then
        shoplink_log "installing shoplink and dev dependencies into .venv (pyproject.toml changed)"
        (
            cd "$SHOPLINK_ROOT"
            PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
                "$SHOPLINK_VENV/bin/python" -m pip install --quiet -e '.[dev]' </dev/null >&2
        )
        printf '%s\n' "$want" >"$stamp"
    fi

    export VIRTUAL_ENV="$SHOPLINK_VENV"
    case ":$PATH:" in
        *":$SHOPLINK_VENV/bin:"*) ;;
        *) export PATH="$SHOPLINK_VENV/bin:$PATH" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

# Directory holding initdb, pg_ctl, postgres, pg_isready, psql. Prints it, or fails.
_shoplink_pg_bindir() {
    local dir
    if [[ -n "${SHOPLINK_PG_BINDIR:-}" ]]; then
        printf '%s\n' "$SHOPLINK_PG_BINDIR"
        return 0
    fi
    # Debian/Ubuntu keep the server binaries off PATH: take the newest version installed.
    dir="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sort -V | tail -n 1)"
    if [[ -n "$dir" ]]; then
        dirname "$dir"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Sets _SHOPLINK_PG_BINDIR, installing PostgreSQL with apt when root and missing.
_shoplink_pg_require_bindir() {
    local bindir
    if ! bindir="$(_shoplink_pg_bindir)"; then
        if _shoplink_is_root; then
            _shoplink_apt_install postgresql
            bindir="$(_shoplink_pg_bindir)" || shoplink_die "PostgreSQL installed but initdb not found"
        else
            shoplink_die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them" \
                "(Debian: sudo apt-get install postgresql), set SHOPLINK_PG_BINDIR, or point" \
                "SHOPLINK_DATABASE_URL at an existing server"
        fi
    fi
    local tool
    for tool in initdb pg_ctl pg_isready psql; do
        [[ -x "$bindir/$tool" ]] || shoplink_die "$bindir/$tool missing (install the PostgreSQL server package)"
    done
    _SHOPLINK_PG_BINDIR="$bindir"
}

# Where the project-local cluster lives: .local/postgres, or (root, when the `postgres` user cannot
# reach the project directory) /var/lib/shoplink-postgres/<hash of the project path>.
_shoplink_pg_base() {
    local local_base="$SHOPLINK_LOCAL/postgres"
    local outside_base
    outside_base="/var/lib/shoplink-postgres/$(printf '%s' "$SHOPLINK_ROOT" | _shoplink_hash | cut -c1-16)"
    if [[ -f "$local_base/data/PG_VERSION" ]]; then
        printf '%s\n' "$local_base"
    elif [[ -f "$outside_base/data/PG_VERSION" ]]; then
        printf '%s\n' "$outside_base"
    elif _shoplink_is_root && ! runuser -u postgres -- test -x "$SHOPLINK_LOCAL" 2>/dev/null; then
        printf '%s\n' "$outside_base"
    else
        printf '%s\n' "$local_base"
    fi
}

# Run a PostgreSQL server tool: as `postgres` when we are root (the server refuses root).
_shoplink_pg_as_owner() {
    if _shoplink_is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

_shoplink_pg_running() {
    local bindir="$1" data="$2"
    [[ -f "$data/PG_VERSION" ]] && _shoplink_pg_as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1
}

# After a machine restart the PID in postmaster.pid (or a socket lock file) may belong to some
# other process, and PostgreSQL would refuse to start. Remove such files when no postmaster owns them.
_shoplink_pg_clear_stale_locks() {
    local data="$1" rundir="$2" pid=""
    [[ -f "$data/postmaster.pid" ]] || return 0
    pid="$(head -n 1 "$data/postmaster.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$pid/comm" ]] && grep -qx 'postgres' "/proc/$pid/comm" \
        && [[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]; then
        return 0
    fi
    shoplink_log "PostgreSQL: removing stale postmaster.pid (pid ${pid:-?} is not a running postgres)"
    rm -f -- "$data/postmaster.pid" "$rundir"/.s.PGSQL.*
}

_shoplink_pg_conf_quote() {
    printf "'%s'" "${1//\'/\'\'}"
}

shoplink_ensure_postgres() {
    if [[ -n "${SHOPLINK_DATABASE_URL:-}" ]]; then
        shoplink_log "PostgreSQL: using SHOPLINK_DATABASE_URL from the environment"
        return 0
    fi
    local port="$SHOPLINK_LOCAL_PG_PORT"
    local bindir base data log rundir
    _shoplink_pg_require_bindir
    bindir="$_SHOPLINK_PG_BINDIR"

    mkdir -p "$SHOPLINK_LOCAL"
    if _shoplink_is_root; then
        id -u postgres >/dev/null 2>&1 || {
            shoplink_log "creating system user postgres"
            useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
        }
    fi
    base="$(_shoplink_pg_base)"
    data="$base/data"
    log="$base/postgres.log"
    rundir="$base/run"
    if [[ "$base" != "$SHOPLINK_LOCAL/postgres" ]]; then
        shoplink_log "PostgreSQL: user postgres cannot reach $SHOPLINK_ROOT; cluster lives in $base instead"
    fi
    mkdir -p "$base" "$rundir"
    if _shoplink_is_root; then
        chown -R postgres: "$base"
    fi
    chmod 700 "$base"

    local server_version
    server_version="$("$bindir/pg_ctl" --version | awk '{ split($3, v, /[^0-9]/); print v[1] }')"
    if [[ ! -f "$data/PG_VERSION" ]]; then
        shoplink_log "PostgreSQL $server_version: initdb $data"
        rm -rf -- "$data"
        local locale_args=(--no-locale)
        if locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null; then
            locale_args=(--locale=C.UTF-8)
        fi
        _shoplink_pg_as_owner "$bindir/initdb" -D "$data" --auth=trust -U postgres -E UTF8 \
            "${locale_args[@]}" >"$base/initdb.log" 2>&1 \
            || { tail -n 20 "$base/initdb.log" >&2; shoplink_die "initdb failed (log: $base/initdb.log)"; }
        printf "\ninclude_if_exists = 'shoplink.conf'\n" >>"$data/postgresql.conf"
    elif [[ "$(cat "$data/PG_VERSION")" != "$server_version" ]]; then
        shoplink_die "$data was made by PostgreSQL $(cat "$data/PG_VERSION") but the server here is" \
            "$server_version; run scripts/stop and remove $base to start afresh"
    fi

    if [[ -z "$_SHOPLINK_PG_PORT_SET" ]] && _shoplink_pg_running "$bindir" "$data"; then
        # Keep the port it runs on: an earlier start may have moved it off a taken default
        # (line 4 of postmaster.pid), and "restarting" it onto the default would fail.
        local running_port
        running_port="$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)"
        [[ "$running_port" =~ ^[0-9]+$ ]] && port="$running_port"
    elif [[ -z "$_SHOPLINK_PG_PORT_SET" ]]; then
        local tries_port=0
        while "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" >/dev/null 2>&1 && ((tries_port < 50)); do
            port=$((port + 1))
            tries_port=$((tries_port + 1))
        done
        ((tries_port == 0)) || shoplink_log "PostgreSQL: default port taken by another server; using $port"
    fi

    # Rewritten every time so a changed port or path takes effect on the next start.
    local socket_dirs="$rundir"
    if (( ${#rundir} + ${#port} + 11 > 107 )); then
        shoplink_log "PostgreSQL: $rundir is too long for a unix socket; TCP only"
        socket_dirs=""
    fi
    {
        echo "# Written by scripts/lib/env.sh on every start; edits are overwritten."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = $(_shoplink_pg_conf_quote "$socket_dirs")"
        echo "max_connections = 200"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
    } >"$data/shoplink.conf.new"
    if _shoplink_is_root; then
        chown postgres: "$data/shoplink.conf.new"
    fi
    local changed=0
    cmp -s "$data/shoplink.conf.new" "$data/shoplink.conf" 2>/dev/null || changed=1
    mv -f "$data/shoplink.conf.new" "$data/shoplink.conf"

    _shoplink_pg_clear_stale_locks "$data" "$rundir"
    if _shoplink_pg_running "$bindir" "$data"; then
        if [[ "$changed" -eq 1 ]]; then
            shoplink_log "PostgreSQL: settings changed, restarting on 127.0.0.1:$port"
            _shoplink_pg_as_owner "$bindir/pg_ctl" restart -D "$data" -l "$log" -m fast -w -t 60 \
                </dev/null >/dev/null 2>&1 \
                || { tail -n 20 "$log" >&2; shoplink_die "PostgreSQL restart failed (log: $log)"; }
        else
            shoplink_log "PostgreSQL: already running on 127.0.0.1:$port"
        fi
    else
        if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
            shoplink_die "port $port already has a PostgreSQL server that is not this checkout's;" \
                "set SHOPLINK_LOCAL_PG_PORT to a free port or SHOPLINK_DATABASE_URL to use that one"
        fi
        shoplink_log "PostgreSQL: starting on 127.0.0.1:$port (data $data)"
        _shoplink_pg_as_owner "$bindir/pg_ctl" start -D "$data" -l "$log" -w -t 60 \
            </dev/null >/dev/null 2>&1 \
            || { tail -n 20 "$log" >&2; shoplink_die "PostgreSQL did not start (log: $log)"; }
    fi

    local tries=0
    until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        tries=$((tries + 1))
        ((tries < 60)) || shoplink_die "PostgreSQL on 127.0.0.1:$port does not accept connections (log: $log)"
        sleep 0.5
    done

    local psql=("$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
    if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'shoplink'")" != "1" ]]; then
        shoplink_log "PostgreSQL: creating database shoplink"
        "${psql[@]}" -c 'CREATE DATABASE shoplink' >/dev/null
    fi
    export SHOPLINK_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/shoplink"
    shoplink_log "PostgreSQL: SHOPLINK_DATABASE_URL=$SHOPLINK_DATABASE_URL"
}

_shoplink_stop_postgres() {
    local bindir base
    bindir="$(_shoplink_pg_bindir)" || return 0
    base="$(_shoplink_pg_base)"
    if _shoplink_pg_running "$bindir" "$base/data"; then
        shoplink_log "PostgreSQL: stopping ($base/data)"
        _shoplink_pg_as_owner "$bindir/pg_ctl" stop -D "$base/data" -m fast -w -t 60 >/dev/null
    else
        shoplink_log "PostgreSQL: not running"
    fi
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

shoplink_ensure_redis_server_binary() {
    command -v redis-server >/dev/null 2>&1 && return 0
    if _shoplink_is_root; then
        _shoplink_apt_install redis-server
        command -v redis-server >/dev/null 2>&1 || shoplink_die "redis-server still not on PATH after install"
    else
        shoplink_die "redis-server not found; install it (Debian: sudo apt-get install redis-server)"
    fi
}

# True when something on 127.0.0.1:$1 answers PING with PONG.
_shoplink_redis_ping() {
    local port="$1"
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]
    else
        local python="python3"
        [[ -x "$SHOPLINK_VENV/bin/python" ]] && python="$SHOPLINK_VENV/bin/python"
        "$python" - "$port" <<'PY' >/dev/null 2>&1
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
PY
    fi
}

# PID from our pidfile when that process is alive and is a redis-server.
_shoplink_redis_pid() {
    local pidfile="$SHOPLINK_LOCAL/redis/redis.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    if [[ ! -r "/proc/$pid/comm" ]] || ! grep -q '^redis' "/proc/$pid/comm"; then
        return 1
    fi
    printf '%s\n' "$pid"
}

shoplink_ensure_redis() {
    if [[ -n "${SHOPLINK_REDIS_URL:-}" ]]; then
        shoplink_log "Redis: using SHOPLINK_REDIS_URL from the environment"
        return 0
    fi
    local port="$SHOPLINK_LOCAL_REDIS_PORT"
    local dir="$SHOPLINK_LOCAL/redis"
    shoplink_ensure_redis_server_binary
    if _shoplink_redis_ping "$port"; then
        if _shoplink_redis_pid >/dev/null; then
            shoplink_log "Redis: already running on 127.0.0.1:$port"
        else
            shoplink_log "Redis: 127.0.0.1:$port already answers PING (not started by this checkout); using it"
        fi
    else
        if _shoplink_redis_pid >/dev/null; then
            shoplink_log "Redis: this checkout's redis-server listens elsewhere; moving it to port $port"
            _shoplink_stop_redis
        fi
        mkdir -p "$dir"
        shoplink_log "Redis: starting on 127.0.0.1:$port (dir $dir)"
        redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
            --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
            --save "" --appendonly no </dev/null >/dev/null 2>&1 \
            || { tail -n 20 "$dir/redis.log" >&2 2>/dev/null; shoplink_die "redis-server did not start"; }
        local tries=0
        until _shoplink_redis_ping "$port"; do
            tries=$((tries + 1))
            if ((tries >= 50)); then
                tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
                shoplink_die "Redis on 127.0.0.1:$port does not answer PING (log: $dir/redis.log)"
            fi
            sleep 0.2
        done
    fi
    export SHOPLINK_REDIS_URL="redis://127.0.0.1:$port/0"
    shoplink_log "Redis: SHOPLINK_REDIS_URL=$SHOPLINK_REDIS_URL"
}

_shoplink_stop_redis() {
    local pid
    if pid="$(_shoplink_redis_pid)"; then
        shoplink_log "Redis: stopping (pid $pid)"
        kill "$pid"
        local tries=0
        while kill -0 "$pid" 2>/dev/null; do
            tries=$((tries + 1))
            ((tries < 50)) || shoplink_die "Redis (pid $pid) did not stop"
            sleep 0.2
        done
    else
        shoplink_log "Redis: not running"
    fi
}

# ---------------------------------------------------------------------------------------------
# Browser libraries for the web pages (web/package-lock.json -> web/node_modules, served under /vendor/)
# ---------------------------------------------------------------------------------------------

shoplink_ensure_web_assets() {
    local web="$SHOPLINK_ROOT/web"
    local lock="$web/package-lock.json"
    local stamp="$web/node_modules/.shoplink-lock.sha256"
    [[ -f "$lock" ]] || return 0
    local want have=""
    want="$(_shoplink_hash <"$lock")"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    [[ "$want" == "$have" ]] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        if _shoplink_is_root; then
            _shoplink_apt_install nodejs npm
        else
            shoplink_log "warning: npm not found (Debian: sudo apt-get install nodejs npm); dashboard charts will be missing"
            return 0
        fi
    fi
    shoplink_log "npm ci in web/ (package-lock.json changed)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2) \
        || shoplink_die "npm ci in $web failed"
    printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------------------------

shoplink_setup() {
    cd "$SHOPLINK_ROOT"
    shoplink_ensure_venv
    shoplink_ensure_web_assets
    shoplink_ensure_postgres
    shoplink_ensure_redis
}

shoplink_stop_services() {
    _shoplink_stop_postgres
    _shoplink_stop_redis
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    shoplink_setup
    printf 'export %s=%q\n' \
        VIRTUAL_ENV "$VIRTUAL_ENV" PATH "$PATH" \
        SHOPLINK_DATABASE_URL "$SHOPLINK_DATABASE_URL" SHOPLINK_REDIS_URL "$SHOPLINK_REDIS_URL"
fi
