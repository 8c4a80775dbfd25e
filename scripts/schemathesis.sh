#!/usr/bin/env bash
# Property-based tests of openapi.yaml against the real server, with
# schemathesis (https://schemathesis.readthedocs.io).
#
#   scripts/schemathesis.sh [extra `st run` args...]   (also: make schemathesis;
#                                                       make test runs it last)
#
# Builds rosterd, starts `rosterd serve` on a free loopback port against its
# own throwaway PostgreSQL cluster (removed on exit, like the server), and
# runs every operation of openapi.yaml against it, every check on: no 5xx,
# responses as documented, schema-valid requests accepted, invalid ones
# refused. The lookup and admin calls carry their tokens
# (scripts/schemathesis/schemathesis.toml); inbound events are signed by
# scripts/schemathesis/hooks.py. Exits with schemathesis's status.
#
# schemathesis comes from PyPI into a virtualenv of its own,
# $CARGO_TARGET_DIR/schemathesis-venv (default target/), made on first use.
# Python 3.9+ with venv is needed; on Debian as root python3-venv is
# apt-installed when missing (unless ROSTERD_NO_APT=1).
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 25) test cases per
# operation and phase; SCHEMATHESIS_SEED for a reproducible run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly ST_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-target}
venv=$target/schemathesis-venv

# shellcheck source=scripts/lib/python-venv.sh
source scripts/lib/python-venv.sh

ensure_venv() {
    if [[ -x $venv/bin/st ]] && "$venv/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
        return
    fi
    make_venv schemathesis "$venv" "schemathesis==$ST_VERSION"
}
ensure_venv

SQLX_OFFLINE=true cargo build -q --bin rosterd
bin=$target/debug/rosterd

# Its own cluster, so nothing else's data is in the way (or in danger).
unset DATABASE_URL
# shellcheck source=scripts/lib/throwaway-pg.sh
source scripts/lib/throwaway-pg.sh
throwaway_pg_start

port=$(free_port)
base=http://127.0.0.1:$port
export ROSTERD_ST_SECRET=schemathesis-secret-0123456789
export ROSTERD_ST_LOGIN_TOKEN=schemathesis-login-0123456789
export ROSTERD_ST_ADMIN_TOKEN=schemathesis-admin-0123456789
export ROSTERD_ST_SCIM_TOKEN=schemathesis-scim-0123456789abcdef0123
export ROSTERD_ST_MAX_FUTURE_SECS=300
log=$THROWAWAY_PG_TMP/rosterd.log

serve_rosterd schemathesis "$bin" "$log" "$port" \
    AIRTABLE_USER_SYNC_SECRET="$ROSTERD_ST_SECRET" \
    LOGIN_API_TOKENS="$ROSTERD_ST_LOGIN_TOKEN" \
    ADMIN_TOKENS="st:$ROSTERD_ST_ADMIN_TOKEN" \
    SCIM_TOKENS="st:$ROSTERD_ST_SCIM_TOKEN" \
    ROLE_MAP=admins=admin ROLE_DEFAULTS=reader \
    MAX_EVENT_FUTURE_SECS="$ROSTERD_ST_MAX_FUTURE_SECS"

status=0
SCHEMATHESIS_HOOKS=scripts/schemathesis/hooks.py \
    "$venv/bin/st" --config-file scripts/schemathesis/schemathesis.toml run openapi.yaml \
    --url "$base" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
    --checks all \
    --report-dir "$THROWAWAY_PG_TMP/report" \
    "$@" || status=$?
if ((status != 0)); then
    cp "$log" "$target/schemathesis-rosterd.log"
    echo "schemathesis: failed; the server's errors follow (whole log: $target/schemathesis-rosterd.log)" >&2
    grep -E 'ERROR|panicked' "$log" | tail -n 20 >&2 || true
fi
exit "$status"
