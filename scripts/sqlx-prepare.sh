#!/usr/bin/env bash
# Regenerate the .sqlx/ offline query cache (commit the result).
#
#   scripts/sqlx-prepare.sh        (also: make sqlx-prepare)
#
# Starts a throwaway cluster, applies the migrations, then recompiles the crate
# with SQLX_OFFLINE=false and SQLX_OFFLINE_DIR=.sqlx so the query macros check
# every query against the live schema and write one query-*.json per query.
#
# Migrations are applied with `rosterd migrate` when the binary still builds
# offline.  If it does not (typically: a query changed, so the old cache is
# stale — the very thing being fixed), migrations/*.sql are applied with psql
# instead; that creates the same schema, which is all the macros need.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib/throwaway-pg.sh
source scripts/lib/throwaway-pg.sh
throwaway_pg_start

if SQLX_OFFLINE=true cargo build --bin rosterd; then
    SQLX_OFFLINE=true cargo run --bin rosterd -- migrate
else
    echo "sqlx-prepare: offline build failed (stale .sqlx?); applying migrations/*.sql with psql" >&2
    throwaway_pg_apply_migrations scripts/pg.sh psql "$THROWAWAY_PG_DIR"
fi

# The macros only run when the crate is recompiled; cargo does not notice
# SQLX_OFFLINE* changes, so force it.
cargo clean -p rosterd
rm -rf .sqlx
mkdir .sqlx
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" cargo check --all-targets

n=$(find .sqlx -name 'query-*.json' | wc -l)
echo "sqlx-prepare: wrote $n queries to .sqlx/" >&2
