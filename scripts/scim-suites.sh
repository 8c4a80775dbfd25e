#!/usr/bin/env bash
# The SCIM 2.0 surface against the world's conformance suites, on the real
# binary (make test runs this after schemathesis):
#
#   - scim2-tester (https://scim2-tester.readthedocs.io), through its Python
#     API: discovery, then create, read, list, replace, patch add/replace/
#     remove of every published attribute, and delete, for Users and Groups;
#   - scim-sanity (https://pypi.org/project/scim-sanity/) `probe`: the user
#     and group lifecycles, search and error handling.
#
#   scripts/scim-suites.sh        (also: make scim-suites)
#
# Builds rosterd, starts `rosterd serve` (worker on, local provider) on a
# free loopback port against its own throwaway PostgreSQL cluster (removed
# on exit, like the server), and runs both; exits non-zero when either
# reports a failure. The suites come from PyPI into a virtualenv of their
# own, $CARGO_TARGET_DIR/scim-venv (default target/), made on first use;
# Python 3.9+ with venv is needed (apt-installed on Debian as root when
# missing, unless ROSTERD_NO_APT=1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly PACKAGES=("scim2-tester==0.5.2" "scim2-client[httpx2]==0.13.2" "scim-sanity==0.7.4")
target=${CARGO_TARGET_DIR:-target}
venv=$target/scim-venv

# shellcheck source=scripts/lib/python-venv.sh
source scripts/lib/python-venv.sh

ensure_venv() {
    local stamp=$venv/.packages
    if [[ -x $venv/bin/scim-sanity && $(cat "$stamp" 2>/dev/null) == "${PACKAGES[*]}" ]]; then
        return
    fi
    make_venv scim-suites "$venv" "${PACKAGES[@]}"
    echo "${PACKAGES[*]}" >"$stamp"
}
ensure_venv

SQLX_OFFLINE=true cargo build -q --bin rosterd
bin=$target/debug/rosterd

unset DATABASE_URL
# shellcheck source=scripts/lib/throwaway-pg.sh
source scripts/lib/throwaway-pg.sh
throwaway_pg_start

port=$(free_port)
base=http://127.0.0.1:$port/scim/v2
token=scim-suites-token-0123456789abcdef0123
log=$THROWAWAY_PG_TMP/rosterd.log

serve_rosterd scim-suites "$bin" "$log" "$port" \
    AIRTABLE_USER_SYNC_SECRET=scim-suites-secret-0123456789 \
    SCIM_TOKENS="suites:$token" \
    ROLE_MAP=admins=admin ROLE_DEFAULTS=reader

status=0
echo "scim-suites: scim2-tester against $base" >&2
"$venv/bin/python" scripts/scim/scim2_tester_run.py "$base" "$token" || status=$?
echo "scim-suites: scim-sanity probe against $base" >&2
sanity=$THROWAWAY_PG_TMP/scim-sanity.txt
"$venv/bin/scim-sanity" probe "$base" --token "$token" --i-accept-side-effects >"$sanity" 2>&1 || { st=$?; ((status)) || status=$st; }
grep -E '\[(FAIL|ERROR)\]|passed|failed' "$sanity" >&2 || cat "$sanity" >&2
if grep -q 'panicked' "$log"; then
    echo "scim-suites: the server panicked:" >&2
    grep 'panicked' "$log" | tail -n 5 >&2
    status=1
fi
exit "$status"
