#!/usr/bin/env bash
# Run the test suite against PostgreSQL.
#
#   scripts/test.sh [cargo test args...]      (also: make test)
#
# If DATABASE_URL is set it is used as is; it must allow CREATE DATABASE,
# because #[sqlx::test] creates a database per test from it.  Otherwise a
# throwaway cluster (fsync off) is started in a fresh temporary directory on a
# free port and removed when this script exits, however it exits.
# Exits with cargo's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z ${DATABASE_URL:-} ]]; then
    # shellcheck source=scripts/lib/throwaway-pg.sh
    source scripts/lib/throwaway-pg.sh
    throwaway_pg_start
fi
export DATABASE_URL

status=0
SQLX_OFFLINE=true cargo test --lib --bins --tests "$@" || status=$?
exit "$status"
