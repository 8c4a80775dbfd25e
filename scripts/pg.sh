#!/usr/bin/env bash
# pg.sh — a private, loopback-only PostgreSQL cluster for development and tests.
#
#   scripts/pg.sh start <dir> [port]    init (if needed) + start; prints the URL
#   scripts/pg.sh stop  <dir>           fast shutdown; succeeds if not running
#   scripts/pg.sh url   <dir>           prints the URL of the running cluster
#   scripts/pg.sh psql  <dir> [args]    psql on the running cluster
#
# Only the URL (postgres://rosterd@127.0.0.1:PORT/rosterd) goes to stdout, so
# `URL=$(scripts/pg.sh start .data/postgres)` works; everything else goes to
# stderr.  `start` is idempotent: on a running cluster it only prints the URL.
#
# Layout of <dir> (created if missing):
#   <dir>/pgdata          the PostgreSQL data directory (initdb -U rosterd, trust auth)
#   <dir>/port            the port the cluster was last started on
#   <dir>/log             server log
#   <dir>/.s.PGSQL.PORT   unix socket (unix_socket_directories=<dir>)
# The server listens on TCP 127.0.0.1 only; auth is "trust", which is acceptable
# only because the cluster is private and loopback-only.  Do not use it for
# anything else.
#
# Without [port], the remembered port is reused if still free, otherwise the
# first free port from 54329 upwards is taken.
#
# Environment:
#   PG_FAST=1          fsync, synchronous_commit and full_page_writes off
#                      (throwaway test clusters; never for data you care about)
#   PG_BIN_DIR=DIR     use initdb/pg_ctl/psql from DIR only (no other search,
#                      no apt)
#   ROSTERD_PG_ROOT    where versioned installs live (default
#                      /usr/lib/postgresql; the highest <ver>/bin wins)
#   ROSTERD_NO_APT=1   never try to apt-get install postgresql
#   To simulate "no PostgreSQL":
#     PATH=/usr/bin:/bin ROSTERD_PG_ROOT=/nonexistent ROSTERD_NO_APT=1 scripts/pg.sh start /tmp/x
#
# Binary search order: PG_BIN_DIR, then PATH, then $ROSTERD_PG_ROOT/*/bin; if
# nothing is found and apt-get is usable (root, or passwordless sudo), install
# postgresql + postgresql-client and search again.  The Debian package creates
# and starts its own cluster on 5432; we leave that alone.
#
# Running as root: initdb and postgres refuse to run as root, so they run as
# the user "postgres" if it exists, otherwise as a system user "rosterd-pg"
# created on demand.  <dir> is chowned to that user.  That user must be able to
# traverse every parent of <dir>; where it cannot (e.g. a mktemp dir, or a repo
# under /root, both 0700) we grant search permission only — `setfacl u:USER:x`
# if setfacl exists, else `chmod o+x` — on exactly the blocking directories,
# and say so on stderr.  Search (x) without read (r) lets the user reach paths
# it already knows but not list the directory.  If that still fails (read-only
# or root-squashed filesystems), we stop with a message telling you to put the
# cluster elsewhere.
set -euo pipefail

readonly DB_USER=rosterd
readonly DB_NAME=rosterd
readonly FIRST_PORT=54329
readonly LAST_PORT=54999
readonly FALLBACK_USER=rosterd-pg

say() { printf 'pg.sh: %s\n' "$*" >&2; }
die() {
    printf 'rosterd: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- binaries

BIN=""

has_pg_bins() { [[ -x $1/initdb && -x $1/pg_ctl ]]; }

search_bins() {
    if [[ -n ${PG_BIN_DIR:-} ]]; then
        has_pg_bins "$PG_BIN_DIR" && BIN=$PG_BIN_DIR
        return 0
    fi
    local initdb pg_ctl
    initdb=$(command -v initdb || true)
    pg_ctl=$(command -v pg_ctl || true)
    if [[ -n $initdb && -n $pg_ctl ]]; then
        # Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin)
        # so psql/postgres from the same installation are found next to them.
        local d
        d=$(dirname "$(readlink -f "$initdb")")
        if has_pg_bins "$d"; then BIN=$d; else BIN=$(dirname "$initdb"); fi
        has_pg_bins "$BIN" && return 0
        BIN=""
    fi
    local root=${ROSTERD_PG_ROOT:-/usr/lib/postgresql} dir
    local -a versions=()
    for dir in "$root"/*/bin; do
        has_pg_bins "$dir" && versions+=("$dir")
    done
    ((${#versions[@]})) || return 0
    BIN=$(printf '%s\n' "${versions[@]}" | sort -V | tail -n 1)
}

apt_usable() {
    [[ -z ${PG_BIN_DIR:-} && ${ROSTERD_NO_APT:-0} != 1 ]] || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    [[ $EUID -eq 0 ]] && return 0
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null
}

apt_install_pg() {
    local sudo=()
    [[ $EUID -eq 0 ]] || sudo=(sudo -n)
    say "no PostgreSQL found; installing it with apt-get (postgresql, postgresql-client)"
    "${sudo[@]}" apt-get update >&2 || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends postgresql postgresql-client >&2
}

find_bins() {
    search_bins
    if [[ -z $BIN ]] && apt_usable; then
        apt_install_pg || say "apt-get install failed"
        search_bins
    fi
    if [[ -z $BIN ]]; then
        if [[ -n ${PG_BIN_DIR:-} ]]; then
            die "no initdb/pg_ctl in PG_BIN_DIR=$PG_BIN_DIR; fix it or unset it"
        fi
        die "no PostgreSQL found; install it (Debian: apt-get install postgresql) or set DATABASE_URL"
    fi
}

psql_bin() {
    if [[ -n $BIN && -x $BIN/psql ]]; then
        printf '%s\n' "$BIN/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        return 1
    fi
}

# ------------------------------------------------------------ root handling

RUN_USER=""   # empty: run PostgreSQL binaries as ourselves

pick_run_user() {
    [[ $EUID -eq 0 ]] || return 0
    if id -u postgres >/dev/null 2>&1; then
        RUN_USER=postgres
    elif id -u "$FALLBACK_USER" >/dev/null 2>&1; then
        RUN_USER=$FALLBACK_USER
    else
        say "running as root; creating system user $FALLBACK_USER to run PostgreSQL"
        local nologin=/usr/sbin/nologin
        [[ -x $nologin ]] || nologin=/sbin/nologin
        [[ -x $nologin ]] || nologin=/bin/false
        if command -v useradd >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell "$nologin" --user-group "$FALLBACK_USER" >&2
        elif command -v adduser >/dev/null 2>&1; then
            adduser -S -D -H -s "$nologin" "$FALLBACK_USER" >&2
        else
            die "running as root and cannot create an unprivileged user for PostgreSQL (no useradd/adduser)"
        fi
        RUN_USER=$FALLBACK_USER
    fi
}

# POSIX-sh single-quoting, for the `su -c` fallback and pg_ctl -o.
shq() {
    local s=$1
    printf "'%s'" "${s//\'/\'\\\'\'}"
}

# Run a command as the PostgreSQL user, from / (the user may not be able to
# enter the caller's working directory, e.g. /root).
as_pg() {
    if [[ -z $RUN_USER ]]; then
        (cd / && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$RUN_USER" -- "$@")
    else
        local cmd="" a
        for a in "$@"; do cmd+="$(shq "$a") "; done
        (cd / && su "$RUN_USER" -s /bin/sh -c "$cmd")
    fi
}

grant_search() {
    local path=$1
    as_pg test -x "$path" 2>/dev/null && return 0
    if command -v setfacl >/dev/null 2>&1 && setfacl -m "u:$RUN_USER:x" "$path" 2>/dev/null; then
        say "granted $RUN_USER search permission on $path (setfacl -m u:$RUN_USER:x)"
    elif chmod o+x "$path" 2>/dev/null; then
        say "granted search permission on $path (chmod o+x) so $RUN_USER can reach the cluster"
    fi
}

# Give RUN_USER search permission on every directory from / down to $1 that
# blocks it (see the comment at the top).
ensure_reachable() {
    local target=$1 path="" comp
    [[ -n $RUN_USER ]] || return 0
    as_pg test -x "$target" 2>/dev/null && return 0
    local -a comps
    IFS=/ read -r -a comps <<<"${target#/}"
    grant_search /
    for comp in "${comps[@]}"; do
        [[ -n $comp ]] || continue
        path+=/$comp
        grant_search "$path"
    done
    as_pg test -x "$target" 2>/dev/null ||
        die "user $RUN_USER cannot reach $target (check permissions of its parent directories, or put the cluster under /tmp)"
}

# ------------------------------------------------------------------ helpers

DIR=""
PGDATA_DIR=""

set_dir() {
    [[ -n ${1:-} ]] || usage
    DIR=$1
    [[ $DIR == /* ]] || DIR=$PWD/$DIR
    DIR=$(realpath -m -- "$DIR")
    PGDATA_DIR=$DIR/pgdata
}

is_running() {
    [[ -f $PGDATA_DIR/PG_VERSION ]] || return 1
    as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

running_port() {
    # Line 4 of postmaster.pid is the port of the running server.
    local p=""
    if [[ -r $PGDATA_DIR/postmaster.pid ]]; then
        p=$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
    fi
    if [[ ! $p =~ ^[0-9]+$ && -r $DIR/port ]]; then
        p=$(<"$DIR/port")
    fi
    [[ $p =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$p"
}

url_for() { printf 'postgres://%s@127.0.0.1:%s/%s\n' "$DB_USER" "$1" "$DB_NAME"; }

port_in_use() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && return 0
    fi
    # Fallback (and belt-and-braces): can we connect to it?
    if command -v timeout >/dev/null 2>&1; then
        timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null && return 0
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
    fi
    return 1
}

free_port() {
    local p=${1:-$FIRST_PORT}
    for ((; p <= LAST_PORT; p++)); do
        port_in_use "$p" || {
            printf '%s\n' "$p"
            return 0
        }
    done
    die "no free TCP port on 127.0.0.1 between ${1:-$FIRST_PORT} and $LAST_PORT"
}

# ----------------------------------------------------------------- commands

init_cluster() {
    # Create <dir> with readable parents even under a restrictive umask.
    (umask 022 && mkdir -p -- "$DIR")
    if [[ -n $RUN_USER ]]; then
        ensure_reachable "$(dirname "$DIR")"
        # chown -R only if needed (e.g. the cluster was created by another user).
        if [[ $(stat -c %U "$DIR") != "$RUN_USER" ]] ||
            { [[ -d $PGDATA_DIR ]] && [[ $(stat -c %U "$PGDATA_DIR") != "$RUN_USER" ]]; }; then
            chown -R "$RUN_USER:" "$DIR"
        fi
    fi
    chmod 700 "$DIR"
    [[ -f $PGDATA_DIR/PG_VERSION ]] && return 0
    if [[ -e $PGDATA_DIR ]] && [[ -n $(ls -A "$PGDATA_DIR") ]]; then
        die "$PGDATA_DIR exists, is not empty and is not a PostgreSQL data directory; remove it"
    fi
    say "initialising cluster in $PGDATA_DIR"
    local -a extra=()
    [[ ${PG_FAST:-0} != 1 ]] || extra=(--no-sync)
    local out
    if ! out=$(as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U "$DB_USER" --auth=trust \
        -E UTF8 --locale=C "${extra[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        die "initdb failed (see messages above)"
    fi
}

server_opts() {
    local port=$1 opts
    opts="-c listen_addresses=127.0.0.1 -p $port -c max_connections=300"
    # Unix socket path must fit in sun_path (~107 bytes incl. ".s.PGSQL.NNNNN.lock").
    if ((${#DIR} + 20 < 107)); then
        opts+=" -k $(shq "$DIR")"
    else
        say "path $DIR too long for a unix socket; TCP only"
        opts+=" -c unix_socket_directories=''"
    fi
    if [[ ${PG_FAST:-0} == 1 ]]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    printf '%s\n' "$opts"
}

ensure_database() {
    local port=$1 psql exists
    psql=$(psql_bin) || die "psql not found (install postgresql-client)"
    exists=$(PGCONNECT_TIMEOUT=10 "$psql" -X -q -At -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ||
        die "cannot connect to the cluster on 127.0.0.1:$port (see $DIR/log)"
    if [[ $exists != 1 ]]; then
        say "creating database $DB_NAME"
        PGCONNECT_TIMEOUT=10 "$psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
            -c "CREATE DATABASE $DB_NAME" >&2
    fi
}

cmd_start() {
    set_dir "${1:-}"
    local want=${2:-}
    if [[ -n $want && ! $want =~ ^[0-9]+$ ]]; then
        die "port must be a number, got '$want'"
    fi
    find_bins
    pick_run_user

    if is_running; then
        local port
        port=$(running_port) || die "cluster in $DIR is running but its port is unknown; stop it with: $0 stop $DIR"
        if [[ -n $want && $want != "$port" ]]; then
            say "cluster in $DIR already running on port $port (not $want); stop it first to change the port"
        fi
        ensure_database "$port"
        url_for "$port"
        return 0
    fi

    local port auto=0 tries
    if [[ -n $want ]]; then
        port_in_use "$want" && die "port $want on 127.0.0.1 is already in use; pick another port"
        port=$want
    fi

    init_cluster

    if [[ -z $want ]]; then
        auto=1
        local remembered=""
        [[ -r $DIR/port ]] && remembered=$(<"$DIR/port")
        if [[ $remembered =~ ^[0-9]+$ ]] && ! port_in_use "$remembered"; then
            port=$remembered
        else
            port=$(free_port)
        fi
    fi

    for ((tries = 1; ; tries++)); do
        say "starting PostgreSQL ($BIN) on 127.0.0.1:$port, data in $PGDATA_DIR${PG_FAST:+, PG_FAST=$PG_FAST}"
        local logsize=0
        [[ -f $DIR/log ]] && logsize=$(stat -c %s "$DIR/log")
        local out
        if out=$(as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$DIR/log" -w -t 60 \
            -o "$(server_opts "$port")" start 2>&1); then
            break
        fi
        # Lost a race for an auto-picked port?  Try the next one.
        if ((auto && tries < 5)) &&
            tail -c +"$((logsize + 1))" "$DIR/log" 2>/dev/null | grep -q 'could not bind\|could not create any TCP/IP sockets'; then
            say "port $port was taken meanwhile; trying another"
            port=$(free_port "$((port + 1))")
            continue
        fi
        printf '%s\n' "$out" >&2
        say "server failed to start; last lines of $DIR/log:"
        tail -n 20 "$DIR/log" >&2 2>/dev/null || true
        die "PostgreSQL did not start (data in $PGDATA_DIR)"
    done

    printf '%s\n' "$port" >"$DIR/port"
    ensure_database "$port"
    url_for "$port"
}

cmd_stop() {
    set_dir "${1:-}"
    if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
        say "no cluster in $DIR; nothing to stop"
        return 0
    fi
    # No pid file: certainly not running (and no need to look for binaries).
    if [[ ! -f $PGDATA_DIR/postmaster.pid ]]; then
        say "cluster in $DIR is not running"
        return 0
    fi
    find_bins
    pick_run_user
    if is_running; then
        say "stopping cluster in $DIR"
        as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >&2
    else
        say "cluster in $DIR is not running"
    fi
}

cmd_url() {
    set_dir "${1:-}"
    [[ -f $PGDATA_DIR/PG_VERSION ]] || die "no cluster in $DIR; start it with: $0 start $DIR"
    [[ -f $PGDATA_DIR/postmaster.pid ]] || die "cluster in $DIR is not running; start it with: $0 start $DIR"
    find_bins
    pick_run_user
    is_running || die "cluster in $DIR is not running; start it with: $0 start $DIR"
    local port
    port=$(running_port) || die "cannot tell the port of the cluster in $DIR"
    url_for "$port"
}

cmd_psql() {
    local url psql
    url=$(cmd_url "${1:-}")
    shift || true
    find_bins
    psql=$(psql_bin) || die "psql not found (install postgresql-client)"
    exec "$psql" "$url" "$@"
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    url) cmd_url "$@" ;;
    psql) cmd_psql "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
