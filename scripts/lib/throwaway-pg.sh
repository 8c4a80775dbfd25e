# shellcheck shell=bash
# Sourced (not executed) by scripts/test.sh, scripts/sqlx-prepare.sh and
# scripts/bench.sh.
#
#   throwaway_pg_start    start a fast (PG_FAST=1) private cluster in a fresh
#                         mktemp dir on a free port and export DATABASE_URL;
#                         installs EXIT/INT/TERM/HUP traps that stop the
#                         cluster and delete the dir, whatever way the caller
#                         ends (success, failure, Ctrl-C).  The caller must not
#                         install its own EXIT trap afterwards; use
#                         throwaway_pg_at_exit instead.
#                         With THROWAWAY_PG_DURABLE=1 the cluster keeps
#                         PostgreSQL's default durability (fsync,
#                         synchronous_commit, full_page_writes on), for
#                         benchmarks whose figures must mean something:
#                           THROWAWAY_PG_DURABLE=1 throwaway_pg_start
#   throwaway_pg_at_exit FUNC
#                         run FUNC from the exit trap, before the cluster is
#                         stopped (e.g. to stop a service that uses it);
#                         several run in reverse order of registration.
#   throwaway_pg_apply_migrations PSQL...
#                         apply migrations/*.sql (not *.down.sql), in sqlx's
#                         order, each in one transaction unless it starts with
#                         `-- no-transaction`, by running PSQL... -f FILE; e.g.
#                           throwaway_pg_apply_migrations scripts/pg.sh psql "$THROWAWAY_PG_DIR"
#                           throwaway_pg_apply_migrations psql "$url"
#                         This gives the schema (what the sqlx query macros
#                         need) but no _sqlx_migrations table, so do it in a
#                         database that `rosterd migrate/serve` will not use.
#                         Call from the repository root.
#   THROWAWAY_PG_DIR      the cluster directory (for `scripts/pg.sh psql ...`)
#
# Keep the caller's `cargo ...` a plain child (no `exec`), or the trap never runs.

THROWAWAY_PG_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/pg.sh
THROWAWAY_PG_TMP=""
THROWAWAY_PG_DIR=""
THROWAWAY_PG_AT_EXIT=()

throwaway_pg_at_exit() {
    THROWAWAY_PG_AT_EXIT+=("$1")
}

throwaway_pg_cleanup() {
    local i
    for ((i = ${#THROWAWAY_PG_AT_EXIT[@]} - 1; i >= 0; i--)); do
        "${THROWAWAY_PG_AT_EXIT[i]}" || true
    done
    THROWAWAY_PG_AT_EXIT=()
    [[ -n $THROWAWAY_PG_TMP ]] || return 0
    if [[ -f $THROWAWAY_PG_DIR/pgdata/postmaster.pid ]]; then
        "$THROWAWAY_PG_SH" stop "$THROWAWAY_PG_DIR" >/dev/null 2>&1 ||
            echo "throwaway-pg: could not stop the cluster in $THROWAWAY_PG_DIR" >&2
    fi
    rm -rf -- "$THROWAWAY_PG_TMP"
    THROWAWAY_PG_TMP=""
}

throwaway_pg_apply_migrations() {
    local f
    local -a files=()
    shopt -s nullglob
    for f in migrations/*.sql; do
        [[ $f == *.down.sql ]] || files+=("$f")
    done
    shopt -u nullglob
    ((${#files[@]})) || return 0
    # sqlx orders by the numeric version before the first "_".
    while IFS= read -r f; do
        echo "throwaway-pg: applying $f" >&2
        local -a single=(--single-transaction)
        grep -q -- '^-- no-transaction' "$f" && single=()
        "$@" -X -q -v ON_ERROR_STOP=1 "${single[@]}" -f "$f" >&2
    done < <(printf '%s\n' "${files[@]}" | sort -t/ -k2,2n)
}

_throwaway_pg_on_exit() {
    local rc=$?
    trap - EXIT
    throwaway_pg_cleanup
    exit "$rc"
}

throwaway_pg_start() {
    local fast=1
    [[ ${THROWAWAY_PG_DURABLE:-0} != 1 ]] || fast=0
    THROWAWAY_PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rosterd-pg.XXXXXX")
    # mktemp makes it 0700; when we are root the cluster runs as another user,
    # which must be able to traverse it (pg.sh would otherwise chmod it itself).
    chmod 755 "$THROWAWAY_PG_TMP"
    THROWAWAY_PG_DIR=$THROWAWAY_PG_TMP/pg
    trap _throwaway_pg_on_exit EXIT
    # Turn signals into a normal exit so the EXIT trap runs.
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Durable: PG_FAST is removed even if the caller's environment has it.
    local -a pg_env=(env PG_FAST=1)
    local kind="fsync off"
    if ((!fast)); then
        pg_env=(env -u PG_FAST)
        kind="durable"
    fi
    DATABASE_URL=$("${pg_env[@]}" "$THROWAWAY_PG_SH" start "$THROWAWAY_PG_DIR")
    export DATABASE_URL
    echo "throwaway PostgreSQL ($kind): $DATABASE_URL (removed on exit)" >&2
}
