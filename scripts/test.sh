#!/usr/bin/env bash
# Run the test suite against PostgreSQL.
#
#   scripts/test.sh [cargo test args...]      (also: make test)
#
# Without arguments (the whole suite) it then runs scripts/schemathesis.sh
# (openapi.yaml against the real server, every operation) and
# scripts/scim-suites.sh (the SCIM conformance suites against it). With
# arguments (a targeted run) it does not, unless SCHEMATHESIS=1;
# SCHEMATHESIS=0 skips both always.
#
# If DATABASE_URL is set it is used as is; it must allow CREATE DATABASE,
# because #[sqlx::test] creates a database per test from it.  Otherwise a
# throwaway cluster (fsync off) is started in a fresh temporary directory on a
# free port and removed when this script exits, however it exits.
# Exits with cargo's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# tests/api/airtable_script.rs runs docs/airtable-automation.js under Node
# (18 or newer).  Like scripts/pg.sh does for PostgreSQL, install it with
# apt-get when missing and we are root (or have password-less sudo), unless
# ROSTERD_NO_APT=1.
ensure_node() {
    if ! command -v node >/dev/null 2>&1 && [[ ${ROSTERD_NO_APT:-0} != 1 ]] &&
        command -v apt-get >/dev/null 2>&1; then
        local sudo=()
        [[ $EUID -eq 0 ]] || sudo=(sudo -n)
        if [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
            echo "test: no node found; installing it with apt-get (nodejs)" >&2
            { "${sudo[@]}" apt-get update &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                    apt-get install -y --no-install-recommends nodejs; } >&2 ||
                echo "test: apt-get install nodejs failed" >&2
        fi
    fi
    if ! command -v node >/dev/null 2>&1; then
        echo "test: node not found; the Airtable script's tests need Node.js 18+ (Debian: apt-get install nodejs)" >&2
        exit 1
    fi
    if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
        echo "test: node $(node --version) is too old; the Airtable script's tests need Node.js 18+" >&2
        exit 1
    fi
}
ensure_node

# tests/api/console.rs drives the operator console in headless Chromium over
# WebDriver: Debian's chromium and chromium-driver, installed the same way.
ensure_chromium() {
    if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
        if [[ ${ROSTERD_NO_APT:-0} != 1 ]] && command -v apt-get >/dev/null 2>&1; then
            local sudo=()
            [[ $EUID -eq 0 ]] || sudo=(sudo -n)
            if [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
                echo "test: no chromium/chromedriver found; installing them with apt-get (chromium chromium-driver)" >&2
                { "${sudo[@]}" apt-get update &&
                    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                        apt-get install -y --no-install-recommends chromium chromium-driver; } >&2 ||
                    echo "test: apt-get install chromium chromium-driver failed" >&2
            fi
        fi
    fi
    if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
        echo "test: chromium and chromedriver not found; the console's browser tests need them (Debian: apt-get install chromium chromium-driver)" >&2
        exit 1
    fi
}
ensure_chromium

# tests/api/invitations.rs mails through a real SMTP server,
# tests/smtp/smtpd.py, which needs aiosmtpd: Debian's python3-aiosmtpd,
# installed the same way. ROSTERD_SMTPD_PYTHON names the Python that has it.
ensure_aiosmtpd() {
    local py
    for py in "${ROSTERD_SMTPD_PYTHON:-}" /usr/bin/python3 python3; do
        if [[ -n $py ]] && "$py" -c 'import aiosmtpd' 2>/dev/null; then
            export ROSTERD_SMTPD_PYTHON=$py
            return
        fi
    done
    if [[ ${ROSTERD_NO_APT:-0} != 1 ]] && command -v apt-get >/dev/null 2>&1; then
        local sudo=()
        [[ $EUID -eq 0 ]] || sudo=(sudo -n)
        if [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
            echo "test: no aiosmtpd found; installing it with apt-get (python3-aiosmtpd)" >&2
            { "${sudo[@]}" apt-get update &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                    apt-get install -y --no-install-recommends python3-aiosmtpd; } >&2 ||
                echo "test: apt-get install python3-aiosmtpd failed" >&2
        fi
    fi
    if /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
        export ROSTERD_SMTPD_PYTHON=/usr/bin/python3
        return
    fi
    echo "test: no Python with aiosmtpd; the invitation tests need a real SMTP server (Debian: apt-get install python3-aiosmtpd)" >&2
    exit 1
}
ensure_aiosmtpd

if [[ -z ${DATABASE_URL:-} ]]; then
    # shellcheck source=scripts/lib/throwaway-pg.sh
    source scripts/lib/throwaway-pg.sh
    throwaway_pg_start
fi
export DATABASE_URL

status=0
if (($#)); then
    SQLX_OFFLINE=true cargo test --lib --bins --tests "$@" || status=$?
else
    # The launch-day herds (tests/api/herd.rs) time the server's answers to
    # thousands of clients: they run after the rest, alone on the machine,
    # as a herd has a production machine to itself.
    SQLX_OFFLINE=true cargo test --lib --bins --tests -- --skip herd:: || status=$?
    SQLX_OFFLINE=true cargo test --test api -- herd:: --test-threads=1 || { st=$?; ((status)) || status=$st; }
fi
schemathesis=${SCHEMATHESIS:-}
[[ -n $schemathesis ]] || { (($#)) && schemathesis=0 || schemathesis=1; }
if [[ $schemathesis == 1 ]]; then
    # Its own cluster and server; this one's DATABASE_URL stays untouched.
    scripts/schemathesis.sh || { st=$?; ((status)) || status=$st; }
    # Likewise the SCIM conformance suites.
    scripts/scim-suites.sh || { st=$?; ((status)) || status=$st; }
fi
exit "$status"
