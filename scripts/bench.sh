#!/usr/bin/env bash
# Benchmarks: build the release service, run it against a private durable
# PostgreSQL, load it, print figures.  Asserts nothing (exit 0 even when a
# target is missed); exits non-zero only when the bench cannot run.
#
#   scripts/bench.sh                  (also: make bench)
#
# Sections (BENCH_SECTIONS, space-separated, default "ingest lookup provision invitations first_logins push reconcile history"):
#   invitations  benches/invitations.rs: BENCH_MAILS (2,000) queued invitation
#            mails drained by the worker at C = 1, 8, 32 through a real SMTP
#            server (tests/smtp/smtpd.py, aiosmtpd) on loopback: mails/s.
#   provision  benches/provision.rs: 10,000 queued people drained through the
#            Supabase provider against the GoTrue stand-in answering after
#            10 ms, at worker concurrency 1 (1,000 people), 8 and 32; jobs/s
#            and the ratio to the ideal (concurrency / 10 ms), the CPU split,
#            and the rate of the same provider calls alone (no database): on
#            a small machine the stand-in and HTTP client cost part of the
#            ideal themselves.  Then the rate
#            of the first 5,000 jobs with 10k, 100k and 1M people queued
#            (BENCH_QUEUED), local provider at C=8 and stand-in at C=32: the
#            same rate on every line means a queue whose cost per job does not
#            grow with its length.
#   first_logins  launch day, benches/first_logins.rs: people in the roster
#            but never provisioned log in, C at a time (16, 200, 2000;
#            BENCH_FIRST_LOGINS_LEVELS), BENCH_FIRST_LOGINS (4,000) people
#            per level, against its own `rosterd serve` (worker on, default
#            pool), local provider and the GoTrue stand-in at 10 ms; a 503
#            is retried after its Retry-After.  Provisioned people per
#            second, per-answer p50/p99/max, and the share of 503 answers.
#   push     `rosterd push` of BENCH_PUSH_ROWS people (default 100,000) as a
#            CSV, then as YAML, every row new, each into an empty database:
#            wall time and peak RSS.  After the CSV, `rosterd worker --once`
#            (local provider, C=8) provisions everyone the push queued.
#   reconcile  `rosterd provision --json` over BENCH_RECONCILE_ROWS roster rows
#            already in sync with the local provider: wall time and peak RSS
#            of the real binary (/usr/bin/time).
#   ingest   POST /api/sync/users/inbound.  For each C: benches/ingest.rs
#            posts N unique signed events over C connections, then replays
#            them (duplicate path); right after, pgbench runs the service's
#            own transaction (benches/ingest.pgbench.sql) with C clients
#            against the same database.  Target (issue): at C=16 the
#            service sustains >= 0.8x the pgbench rate with p99 < 20 ms.
#   lookup   GET /api/users/lookup for known people.  Seeds
#            BENCH_LOOKUP_PEOPLE roster rows (p{i}@bench.example, active, each
#            linked to an auth account, no provisioning jobs: never inline
#            provisioning).  For C = 1, 16, 64 (BENCH_LOOKUP_CONCURRENCY):
#            benches/lookup.rs sends BENCH_LOOKUP_REQUESTS random lookups over
#            C connections, then pgbench runs the same indexed select
#            (benches/lookup.pgbench.sql) with C clients.  Target (issue): at
#            C=16 the service sustains >= 0.5x the pgbench rate with p99 < 5 ms.
#            Then, on the same people, SCIM: `GET /scim/v2/Users?filter=
#            userName eq "p{i}@bench.example"` at C=16 (benches/lookup.rs
#            --scim), and one full paged listing of all of them, count=100
#            (--scim-list), as an identity provider's import does.
#   history  its own database and service: ingest at C=16 (benches/ingest.rs)
#            and the admin event listing's latency (benches/listing.rs: first
#            pages under each filter, and walks 200 pages deep along
#            nextCursor), first on an empty table, then after storing
#            BENCH_HISTORY_EVENTS (default 10,000,000) events; the database
#            (about 7 GB) is dropped afterwards.  Target (issue): ingest on
#            the full table within 10% of the empty one's rate.
# To add a section (provisioning worker, ...): write section_NAME,
# which builds what it needs (build_exe, e.g. `build_exe bench bench --bench
# NAME --no-run`), may use the running service ($SERVICE_URL, $BENCH_SECRET;
# it runs with WORKER_ENABLED=false) and the cluster ($DATABASE_URL, a
# superuser that may create databases; run_psql), prints its figures and
# appends its summary lines to $SUMMARY; then add NAME to the default of
# BENCH_SECTIONS.
#
# Environment:
#   BENCH_EVENTS=4000        unique events per concurrency level
#   BENCH_CONCURRENCY=1,4,16 concurrency levels (connections / pgbench clients)
#   BENCH_PGBENCH_SECS=10    pgbench duration per level
#   BENCH_SECTIONS="ingest lookup provision reconcile"   sections to run
#   BENCH_LOOKUP_PEOPLE=100000    roster rows for the lookup section
#   BENCH_LOOKUP_REQUESTS=20000   lookups per concurrency level
#   BENCH_LOOKUP_CONCURRENCY=1,16,64   lookup levels (connections / pgbench clients)
#   BENCH_RECONCILE_ROWS=100000   roster rows for the reconcile section
#   BENCH_QUEUED=10000,100000,1000000   queue lengths for the provision section
#   BENCH_KEEP_LOGS=1        keep the work dir (service log, pgbench logs)
#
# The cluster is a fresh throwaway one (scripts/lib/throwaway-pg.sh) with
# PostgreSQL's default durability (fsync and synchronous_commit on), because
# commit latency is most of what is measured.  The service and the load
# generator share this machine's cores with PostgreSQL and pgbench; so does
# anything else running (e.g. a compile), so read the figures with the load
# average printed at the start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_EVENTS=${BENCH_EVENTS:-4000}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-1,4,16}
BENCH_PGBENCH_SECS=${BENCH_PGBENCH_SECS:-10}
BENCH_SECTIONS=${BENCH_SECTIONS:-ingest lookup provision invitations first_logins push reconcile history}
BENCH_RECONCILE_ROWS=${BENCH_RECONCILE_ROWS:-100000}
BENCH_LOOKUP_PEOPLE=${BENCH_LOOKUP_PEOPLE:-100000}
BENCH_LOOKUP_REQUESTS=${BENCH_LOOKUP_REQUESTS:-20000}
BENCH_LOOKUP_CONCURRENCY=${BENCH_LOOKUP_CONCURRENCY:-1,16,64}

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

[[ $BENCH_EVENTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_EVENTS must be a positive number"
[[ $BENCH_PGBENCH_SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PGBENCH_SECS must be a positive number"
[[ $BENCH_CONCURRENCY =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
    die "BENCH_CONCURRENCY must be comma-separated positive numbers, e.g. 1,4,16"
IFS=, read -r -a LEVELS <<<"$BENCH_CONCURRENCY"
[[ $BENCH_LOOKUP_PEOPLE =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOOKUP_PEOPLE must be a positive number"
[[ $BENCH_LOOKUP_REQUESTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOOKUP_REQUESTS must be a positive number"
[[ $BENCH_LOOKUP_CONCURRENCY =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
    die "BENCH_LOOKUP_CONCURRENCY must be comma-separated positive numbers, e.g. 1,16,64"
IFS=, read -r -a LOOKUP_LEVELS <<<"$BENCH_LOOKUP_CONCURRENCY"

# A PostgreSQL client tool: from PG_BIN_DIR (as scripts/pg.sh), PATH, else
# the newest versioned install.
pg_tool() {
    local name=$1 found
    if [[ -n ${PG_BIN_DIR:-} && -x $PG_BIN_DIR/$name ]]; then
        printf '%s\n' "$PG_BIN_DIR/$name"
        return 0
    fi
    if found=$(command -v "$name"); then
        printf '%s\n' "$found"
        return 0
    fi
    found=$(printf '%s\n' "${ROSTERD_PG_ROOT:-/usr/lib/postgresql}"/*/bin/"$name" | sort -V | tail -n 1)
    [[ -x $found ]] || return 1
    printf '%s\n' "$found"
}

# ------------------------------------------------------------------ setup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rosterd-bench.XXXXXX")
SUMMARY=$WORK/summary.txt
: >"$SUMMARY"
SERVICE_PID=""
HISTORY_PID=""

stop_pid() { # pid
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "rosterd (pid $pid) did not stop within 10 s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

stop_service() {
    stop_pid "${LAUNCHED_PID:-}"
    stop_pid "$HISTORY_PID"
    HISTORY_PID=""
    stop_pid "$SERVICE_PID"
    SERVICE_PID=""
}

remove_work() {
    if [[ ${BENCH_KEEP_LOGS:-0} == 1 ]]; then
        say "logs kept in $WORK"
    else
        rm -rf -- "$WORK"
    fi
}

# shellcheck source=scripts/lib/throwaway-pg.sh
source scripts/lib/throwaway-pg.sh
# Registered first so they run last: the service stops before the cluster,
# the work dir goes after both.
throwaway_pg_at_exit remove_work
throwaway_pg_at_exit stop_service
THROWAWAY_PG_DURABLE=1 throwaway_pg_start

PSQL=$(pg_tool psql) || die "psql not found (install postgresql-client)"
PGBENCH=$(pg_tool pgbench) || die "pgbench not found (Debian: it is in postgresql-client)"
CLUSTER_URL=${DATABASE_URL%/*} # postgres://rosterd@127.0.0.1:PORT

run_psql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# ------------------------------------------------------------------ build

# The sqlx query macros check every query at compile time: against the
# committed .sqlx/ cache when there is one (SQLX_OFFLINE=true), otherwise
# against a live database with the schema.  For the latter the migrations
# are applied with psql to a scratch database `macros` in the same cluster:
# not the `rosterd` database, which the service migrates itself at start and
# would find already populated but without its _sqlx_migrations record.
# (Once .sqlx/ is committed the first branch is always taken.)
CARGO_ENV=()
OFFLINE_HINT=""
if [[ -d .sqlx ]]; then
    CARGO_ENV=(SQLX_OFFLINE=true)
    OFFLINE_HINT=" (built offline from .sqlx/; if a query has no cached data, run make sqlx-prepare)"
else
    say "no .sqlx/ cache: building against a scratch database 'macros'"
    run_psql "$CLUSTER_URL/postgres" -c "CREATE DATABASE macros"
    throwaway_pg_apply_migrations "$PSQL" "$CLUSTER_URL/macros"
    CARGO_ENV=(SQLX_OFFLINE=false "DATABASE_URL=$CLUSTER_URL/macros")
fi
cargo_() { env "${CARGO_ENV[@]}" cargo "$@"; }

# Builds one target and prints the path of its executable.  The benchmarks
# run these files directly (which is all `cargo bench` does after building),
# so a source edit while the bench runs cannot trigger a rebuild between
# measurements or swap the binary being measured.
build_exe() { # kind cargo-args...
    local kind=$1 exe
    shift
    exe=$(cargo_ "$@" --message-format=json-render-diagnostics |
        grep "\"kind\":\[\"$kind\"\]" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n 1) ||
        die "cargo $* failed${OFFLINE_HINT}"
    [[ -n $exe && -x $exe ]] || die "cargo $* built no $kind executable"
    printf '%s\n' "$exe"
}

say "building (release)"
ROSTERD_BIN=$(build_exe bin build --release --bin rosterd)

# ---------------------------------------------------------------- service

free_port() {
    local p
    for ((p = 18080; p < 18200; p++)); do
        [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] || continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        printf '%s\n' "$p"
        return 0
    done
    die "no free TCP port on 127.0.0.1 between 18080 and 18199"
}

http_ok() {
    local url=$1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 2 --noproxy '*' "$url" 2>/dev/null
    else
        # host:port/path from http://host:port/path
        local rest=${url#http://} hostport path
        hostport=${rest%%/*}
        path=/${rest#*/}
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout 3 bash -c '
            exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
            printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
            IFS= read -r line <&3
            [[ $line == "HTTP/1.1 200"* ]]' _ "$hostport" "$path" 2>/dev/null
    fi
}

# A fresh signing secret per run (48 hex digits); passed in the environment,
# never on a command line.
BENCH_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# Likewise the login lookup's bearer token.
BENCH_LOOKUP_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# And the admin API's (the history section lists events).
BENCH_ADMIN_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# And SCIM's (the lookup section asks SCIM's filter the same question).
BENCH_SCIM_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
SERVICE_PORT=$(free_port)
SERVICE_URL=http://127.0.0.1:$SERVICE_PORT
SERVICE_LOG=$WORK/service.log

# Starts `rosterd serve` on DB_URL at 127.0.0.1:PORT and waits until it is
# ready; its pid is left in LAUNCHED_PID.
# WORKER_ENABLED=false: every benchmark event queues a provisioning job, and
# an in-process worker would run them during the measurements (and during
# pgbench, woken by its NOTIFYs), competing for the same cores and database.
# The worker gets its own section when it is benchmarked.  RUST_LOG=warn: one
# info line per request would otherwise be part of what is measured.
launch_service() { # db_url port log
    local db_url=$1 port=$2 log=$3 i
    say "starting rosterd on http://127.0.0.1:$port (log: $log)"
    env RUST_LOG=warn WORKER_ENABLED=false \
        DATABASE_URL="$db_url" \
        BIND_ADDR="127.0.0.1:$port" \
        AIRTABLE_USER_SYNC_SECRET="$BENCH_SECRET" \
        LOGIN_API_TOKENS="$BENCH_LOOKUP_TOKEN" \
        ADMIN_TOKENS="bench:$BENCH_ADMIN_TOKEN" \
        SCIM_TOKENS="bench:$BENCH_SCIM_TOKEN" \
        "$ROSTERD_BIN" serve 2>"$log" &
    LAUNCHED_PID=$!
    for ((i = 0; i < 300; i++)); do # 30 s
        if ! kill -0 "$LAUNCHED_PID" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "rosterd exited before becoming ready (log above)"
        fi
        http_ok "http://127.0.0.1:$port/readyz" && return 0
        sleep 0.1
    done
    tail -n 20 "$log" >&2 || true
    die "rosterd not ready within 30 s"
}

launch_service "$DATABASE_URL" "$SERVICE_PORT" "$SERVICE_LOG"
SERVICE_PID=$LAUNCHED_PID

# Figures taken against a dead service are worthless: stop there.
service_alive() {
    kill -0 "$SERVICE_PID" 2>/dev/null && return 0
    tail -n 20 "$SERVICE_LOG" >&2 || true
    die "rosterd exited during the benchmark (log above)"
}

# -------------------------------------------------------------- sections

# Nearest-rank percentiles (0.5, 0.99, 1 = max) of the numbers on stdin.
percentiles() { # p...
    sort -n | awk -v ps="$*" '
        { v[NR] = $1 }
        END {
            n = split(ps, p, " ")
            for (i = 1; i <= n; i++) {
                r = int(p[i] * NR); if (r < p[i] * NR) r++; if (r < 1) r = 1
                printf "%s%s", (i > 1 ? " " : ""), (NR ? v[r] : "nan")
            }
            print ""
        }'
}

# Where the machine's CPU went during one measurement: the service, the
# load generator (pgbench, or our own; a child of this shell, so it is in
# this shell's children's times once waited for) and everything else
# (PostgreSQL, mostly).  On a machine this small they share the same cores,
# so this is what explains a rate: cpu_mark before, cpu_report after.
CLK_TCK=$(getconf CLK_TCK)
cpu_mark() {
    CPU_MARK=("$EPOCHREALTIME" \
        "$(awk -v hz="$CLK_TCK" '/^cpu / { printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1000 / hz }' /proc/stat)" \
        "$(awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f", ($12 + $13) * 1000 / hz }' "/proc/$SERVICE_PID/stat")" \
        "$(awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$$/stat")")
}
cpu_report() { # label: prints one line, and appends it to $WORK/cpu.txt
    local before=("${CPU_MARK[@]}") line
    cpu_mark
    line=$(awk -v label="$1" -v cores="$(nproc)" \
        -v w0="${before[0]}" -v m0="${before[1]}" -v s0="${before[2]}" -v c0="${before[3]}" \
        -v w1="${CPU_MARK[0]}" -v m1="${CPU_MARK[1]}" -v s1="${CPU_MARK[2]}" -v c1="${CPU_MARK[3]}" 'BEGIN {
            wall = (w1 - w0) * 1000; m = m1 - m0; s = s1 - s0; c = c1 - c0; rest = m - s - c
            if (rest < 0) rest = 0
            printf "cpu  %-26s machine %3.0f%% of %d00%%: rosterd %3.0f%%, load generator %3.0f%%, PostgreSQL and the rest %3.0f%%\n",
                label, 100 * m / wall, cores, 100 * s / wall, 100 * c / wall, 100 * rest / wall
        }')
    printf '%s\n' "$line" | tee -a "$WORK/cpu.txt"
}

# pgbench on the service's own transaction at one concurrency level.
# Runs benches/NAME.pgbench.sql with C clients for BENCH_PGBENCH_SECS, prints
# its figures and appends them to $WORK/NAME-pgbench.tsv.  Extra arguments go
# to pgbench (the script's -D variables).
pgbench_level() { # NAME C [pgbench args...]
    local name=$1 c=$2
    shift 2
    local j=$((c < 2 ? c : 2)) out=$WORK/$name-pgbench-c$c.out logdir=$WORK/$name-pgbench-c$c
    local tps avg failed p50 p99 max
    mkdir -p "$logdir"
    run_psql "$DATABASE_URL" -c CHECKPOINT
    cpu_mark
    "$PGBENCH" -n -M prepared -c "$c" -j "$j" -T "$BENCH_PGBENCH_SECS" "$@" \
        -l --log-prefix="$logdir/log" \
        -f "benches/$name.pgbench.sql" "$DATABASE_URL" >"$out" 2>&1 || {
        cat "$out" >&2
        die "pgbench ($name) failed at C=$c (output above)"
    }
    cpu_report "$name C=$c pgbench"
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    avg=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    [[ -n $tps && -n $avg ]] || {
        cat "$out" >&2
        die "cannot read tps/latency from pgbench's output (above)"
    }
    # Per-transaction log lines: client, tx no, latency (us), script, epoch, us.
    read -r p50 p99 max < <(cat "$logdir"/log* | awk '{ print $3 / 1000 }' | percentiles 0.50 0.99 1)
    printf 'pgbench C=%-3s %-10s %8.0f tx/s  p50 %6.2f ms  p99 %6.2f ms  max %6.1f ms  (avg %.2f ms, %s failed, %s s)\n' \
        "$c" "$name" "$tps" "$p50" "$p99" "$max" "$avg" "${failed:-?}" "$BENCH_PGBENCH_SECS"
    printf 'pgbench\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$tps" "$p50" "$p99" "$max" "${failed:-0}" >>"$WORK/$name-pgbench.tsv"
}

section_ingest() {
    local run_tag c ingest_bin
    run_tag=r$(date +%s)
    ingest_bin=$(build_exe bench bench --bench ingest --no-run)

    # Each level measures the service and then pgbench back to back, so the
    # ratio compares figures taken under the same background load.
    echo
    echo "== ingest: service (benches/ingest.rs, $BENCH_EVENTS events) and pgbench (benches/ingest.pgbench.sql, ${BENCH_PGBENCH_SECS} s) per level =="
    for c in "${LEVELS[@]}"; do
        run_psql "$DATABASE_URL" -c CHECKPOINT
        cpu_mark
        AIRTABLE_USER_SYNC_SECRET=$BENCH_SECRET "$ingest_bin" --bench \
            --url "$SERVICE_URL" --events "$BENCH_EVENTS" --concurrency "$c" \
            --seed-prefix "$run_tag" --summary "$WORK/ingest-service-c$c.tsv" |
            sed '/^ingest: /d' # its preamble; the header above says the same
        cpu_report "ingest C=$c service"
        cat "$WORK/ingest-service-c$c.tsv" >>"$WORK/ingest-service.tsv"
        service_alive
        pgbench_level ingest "$c" -D prefix="pgb_${run_tag}_c$c" -D i=0
    done

    {
        echo "ingest (POST /api/sync/users/inbound; target at C=16: >= 0.8x pgbench, p99 < 20 ms)"
        printf '  %-4s %10s %8s %8s   %10s %8s   %11s %8s   %6s  %s\n' \
            C "svc ev/s" p50 p99 "dup ev/s" "dup p99" "pgbench tps" "pgb p99" ratio verdict
        for c in "${LEVELS[@]}"; do
            awk -F'\t' -v c="$c" '
                FILENAME ~ /service/ && $2 == c && $3 == "unique"    { u = $5; u50 = $6; u99 = $7; uerr = $9 }
                FILENAME ~ /service/ && $2 == c && $3 == "duplicate" { d = $5; d99 = $7; derr = $9 }
                FILENAME ~ /pgbench/ && $2 == c                      { t = $3; t99 = $5 }
                END {
                    ratio = (t > 0 && u != "") ? u / t : 0
                    if (uerr + derr > 0)      verdict = "invalid: " (uerr + derr) " errors"
                    else if (c != 16)         verdict = "-"
                    else if (ratio >= 0.8 && u99 < 20) verdict = "target met"
                    else                      verdict = "target missed"
                    printf "  %-4s %10.0f %8.1f %8.1f   %10.0f %8.1f   %11.0f %8.1f   %5.2fx  %s\n",
                        c, u, u50, u99, d, d99, t, t99, ratio, verdict
                }' "$WORK/ingest-service.tsv" "$WORK/ingest-pgbench.tsv"
        done
        if [[ ,$BENCH_CONCURRENCY, != *,16,* ]]; then
            echo "  (C=16 not measured: no verdict)"
        fi
    } >>"$SUMMARY"
}

section_lookup() {
    local n=$BENCH_LOOKUP_PEOPLE c lookup_bin
    lookup_bin=$(build_exe bench bench --bench lookup --no-run)

    # One statement: the auth accounts first, then the roster rows linked to
    # them; no provisioning_jobs rows, so no lookup provisions inline.
    say "lookup: seeding $n people"
    run_psql "$DATABASE_URL" -c "
        with a as (
            insert into auth_accounts (id, email, user_metadata, app_metadata, created_at)
            select gen_random_uuid(), 'p' || i || '@bench.example', '{\"name\": null}',
                   jsonb_build_object('roles', '[]'::jsonb, 'roster_id', 'rec' || i, 'managed_by', 'rosterd'), now()
            from generate_series(1, $n) i
            returning id, email, app_metadata->>'roster_id' as roster_id)
        insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at,
                            last_event_id, auth_user_id, auth_linked_at)
        select a.roster_id, a.email, 'active', now(), 'e' || a.roster_id, now(),
               'e' || a.roster_id, a.id, now()
        from a" >/dev/null
    run_psql "$DATABASE_URL" -c "vacuum analyze" >/dev/null

    # Each level measures the service and then pgbench back to back, so the
    # ratio compares figures taken under the same background load.
    echo
    echo "== lookup: service (benches/lookup.rs, $BENCH_LOOKUP_REQUESTS requests) and pgbench (benches/lookup.pgbench.sql, ${BENCH_PGBENCH_SECS} s) per level, $n people =="
    : >"$WORK/lookup-service.tsv"
    : >"$WORK/lookup-pgbench.tsv"
    for c in "${LOOKUP_LEVELS[@]}"; do
        cpu_mark
        BENCH_LOOKUP_TOKEN=$BENCH_LOOKUP_TOKEN "$lookup_bin" --bench \
            --url "$SERVICE_URL" --people "$n" --requests "$BENCH_LOOKUP_REQUESTS" \
            --concurrency "$c" --summary "$WORK/lookup-service.tsv" |
            sed '/^lookup: /d' # its preamble; the header above says the same
        cpu_report "lookup C=$c service"
        service_alive
        pgbench_level lookup "$c" -D people="$BENCH_LOOKUP_PEOPLE"
    done

    # What an identity provider asks of the same people: SCIM's indexed
    # `userName eq` filter at C=16, and one full paged listing.
    echo
    echo "== scim: GET /scim/v2/Users?filter=userName eq … at C=16, and a paged listing of all $n (count=100) =="
    : >"$WORK/scim.tsv"
    cpu_mark
    BENCH_LOOKUP_TOKEN=$BENCH_SCIM_TOKEN "$lookup_bin" --bench --scim \
        --url "$SERVICE_URL" --people "$n" --requests "$BENCH_LOOKUP_REQUESTS" \
        --concurrency 16 --summary "$WORK/scim.tsv" | sed '/^scim-filter: /d'
    cpu_report "scim filter C=16"
    service_alive
    BENCH_LOOKUP_TOKEN=$BENCH_SCIM_TOKEN "$lookup_bin" --bench --scim-list \
        --url "$SERVICE_URL" --people "$n" | tee "$WORK/scim-list.txt"
    service_alive

    {
        echo "lookup (GET /api/users/lookup, known people, $n rows; target at C=16: >= 0.5x pgbench, p99 < 5 ms)"
        printf '  %-4s %10s %8s %8s   %11s %8s   %6s  %s\n' \
            C "svc req/s" p50 p99 "pgbench tps" "pgb p99" ratio verdict
        for c in "${LOOKUP_LEVELS[@]}"; do
            awk -F'\t' -v c="$c" '
                FILENAME ~ /service/ && $2 == c { s = $4; s50 = $5; s99 = $6; serr = $8 }
                FILENAME ~ /pgbench/ && $2 == c { t = $3; t99 = $5 }
                END {
                    ratio = (t > 0 && s != "") ? s / t : 0
                    if (serr > 0)             verdict = "invalid: " serr " errors"
                    else if (c != 16)         verdict = "-"
                    else if (ratio >= 0.5 && s99 < 5) verdict = "target met"
                    else                      verdict = "target missed"
                    printf "  %-4s %10.0f %8.2f %8.2f   %11.0f %8.2f   %5.2fx  %s\n",
                        c, s, s50, s99, t, t99, ratio, verdict
                }' "$WORK/lookup-service.tsv" "$WORK/lookup-pgbench.tsv"
        done
        if [[ ,$BENCH_LOOKUP_CONCURRENCY, != *,16,* ]]; then
            echo "  (C=16 not measured: no verdict)"
        fi
        echo "scim (GET /scim/v2/Users?filter=userName eq …, same people, C=16; and the full listing)"
        awk -F'\t' '{ printf "  C=%-3s %10.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s\n", $2, $4, $5, $6, $8 }' "$WORK/scim.tsv"
        sed -n 's/^scim-list  /  /p' "$WORK/scim-list.txt"
    } >>"$SUMMARY"
}

section_provision() {
    local prov_bin
    prov_bin=$(build_exe bench bench --bench provision --no-run)
    echo
    echo "== provision: worker drain against the GoTrue stand-in (benches/provision.rs) =="
    "$prov_bin" --bench --queued "${BENCH_QUEUED:-10000,100000,1000000}" | tee "$WORK/provision.txt"
    {
        echo "provision (drain; target at C=32: >= 0.8 of ideal)"
        sed -n -e 's/^drain  /  /p' -e 's/^       cpu: /      cpu: /p' \
            -e 's/^       provider calls alone/      provider calls alone/p' "$WORK/provision.txt"
        echo "queue length (first 5,000 jobs; the rate should not fall as the queue grows)"
        sed -n 's/^queue  /  /p' "$WORK/provision.txt"
    } >>"$SUMMARY"
}

section_invitations() {
    local bin py=${ROSTERD_SMTPD_PYTHON:-/usr/bin/python3}
    bin=$(build_exe bench bench --bench invitations --no-run)
    "$py" -c 'import aiosmtpd' 2>/dev/null ||
        die "invitations: $py has no aiosmtpd (Debian: apt-get install python3-aiosmtpd; or set ROSTERD_SMTPD_PYTHON)"
    echo
    echo "== invitations: mail jobs drained through a real SMTP server (benches/invitations.rs) =="
    ROSTERD_SMTPD_PYTHON=$py "$bin" --bench --mails "${BENCH_MAILS:-2000}" | tee "$WORK/invitations.txt"
    {
        echo "invitations (mail jobs through aiosmtpd on loopback)"
        sed -n 's/^mail  /  /p' "$WORK/invitations.txt"
    } >>"$SUMMARY"
}

section_first_logins() {
    local bin
    bin=$(build_exe bench bench --bench first_logins --no-run)
    echo
    echo "== first logins: herds of people in the roster, never provisioned (benches/first_logins.rs) =="
    "$bin" --bench --rosterd "$ROSTERD_BIN" --cluster-url "$CLUSTER_URL" \
        --levels "${BENCH_FIRST_LOGINS_LEVELS:-16,200,2000}" \
        --logins "${BENCH_FIRST_LOGINS:-4000}" | tee "$WORK/first_logins.txt"
    {
        echo "first logins (inline provisioning; a 503 is overloaded, retried after its Retry-After)"
        sed -n 's/^first  /  /p' "$WORK/first_logins.txt"
    } >>"$SUMMARY"
}

# Stores N events (10M by default) the way the service would have: ids,
# types, a person per 50 events, 0.1% failed and 1/7 stale, received over
# the last 100 days, with payloads and hashes. Two loaders, one per core.
load_history() { # db_url n
    local db_url=$1 n=$2 chunk=1000000 lo hi started=$SECONDS pids=()
    for part in 0 1; do
        (
            for ((lo = 1 + part * chunk; lo <= n; lo += 2 * chunk)); do
                hi=$((lo + chunk - 1 < n ? lo + chunk - 1 : n))
                run_psql "$db_url" -c "
                    insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                                                payload_hash, source, outcome, error, received_at, processed_at)
                    select 'evt_h' || i, k, t, 'rec_h' || (i % ($n / 50 + 1)),
                           jsonb_build_object('eventId', 'evt_h' || i, 'eventType', k, 'occurredAt', t,
                               'user', jsonb_build_object('id', 'rec_h' || (i % ($n / 50 + 1)),
                                   'email', 'p' || (i % ($n / 50 + 1)) || '@history.example',
                                   'name', 'Person ' || (i % ($n / 50 + 1)), 'status', 'active',
                                   'groups', jsonb_build_array('staff'))),
                           sha256(convert_to('evt_h' || i, 'UTF8')), 'webhook',
                           case when i % 1000 = 0 then 'failed' when i % 7 = 0 then 'stale' else 'applied' end,
                           case when i % 1000 = 0 then 'new row violates check constraint' end,
                           t, t
                    from generate_series($lo, $hi) i,
                         lateral (select (array['user.created', 'user.updated', 'user.updated', 'user.deleted'])[1 + i % 4] as k,
                                         now() - interval '100 days' + (i * 8640.0 / $n) * interval '1000 seconds' as t) x" >/dev/null
                say "history: events $lo..$hi stored ($((SECONDS - started)) s)"
            done
        ) &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || die "loading the history failed"
    done
    run_psql "$db_url" -c "vacuum analyze inbound_events" >/dev/null
    run_psql "$db_url" -c "checkpoint" >/dev/null
}

# Ingest into a table of 10M stored events against the same empty, and the
# admin listing's latency on it. Its own database and service, so the other
# sections' tables stay small.
section_history() {
    local n=${BENCH_HISTORY_EVENTS:-10000000} c=16 ingest_bin listing_bin db_url port url tag
    local window_since window_until person
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_HISTORY_EVENTS must be a positive number"
    ingest_bin=$(build_exe bench bench --bench ingest --no-run)
    listing_bin=$(build_exe bench bench --bench listing --no-run)
    run_psql "$DATABASE_URL" -c "drop database if exists rosterd_bench_history" >/dev/null
    run_psql "$DATABASE_URL" -c "create database rosterd_bench_history" >/dev/null
    db_url=${DATABASE_URL%/*}/rosterd_bench_history
    port=$(free_port)
    launch_service "$db_url" "$port" "$WORK/history-service.log"
    HISTORY_PID=$LAUNCHED_PID
    url=http://127.0.0.1:$port
    tag=h$(date +%s)
    window_since=$(date -u -d '50 days ago' +%Y-%m-%dT%H:%M:%SZ)
    window_until=$(date -u -d '49 days ago' +%Y-%m-%dT%H:%M:%SZ)
    person=rec_h$((n / 100))
    : >"$WORK/history-ingest.tsv"
    : >"$WORK/history-listing.tsv"

    history_level() { # label
        local label=$1
        echo "-- $label: $(run_psql "$db_url" -c "select count(*) from inbound_events") events stored"
        run_psql "$db_url" -c CHECKPOINT
        AIRTABLE_USER_SYNC_SECRET=$BENCH_SECRET "$ingest_bin" --bench \
            --url "$url" --events "$BENCH_EVENTS" --concurrency "$c" \
            --seed-prefix "${tag}_$label" --summary "$WORK/history-ingest-$label.tsv" |
            sed '/^ingest: /d'
        sed "s/^/$label\t/" "$WORK/history-ingest-$label.tsv" >>"$WORK/history-ingest.tsv"
        BENCH_ADMIN_TOKEN=$BENCH_ADMIN_TOKEN "$listing_bin" --bench --url "$url" \
            --requests 200 --summary "$WORK/history-listing-$label.tsv" \
            --query "newest=limit=50" \
            --query "failed=status=failed&limit=50" \
            --query "deleted=eventType=user.deleted&limit=50" \
            --query "person=userId=$person&limit=50" \
            --query "one-day=since=$window_since&until=$window_until&limit=50"
        BENCH_ADMIN_TOKEN=$BENCH_ADMIN_TOKEN "$listing_bin" --bench --url "$url" \
            --requests 200 --walk --summary "$WORK/history-listing-$label.tsv" \
            --query "walk-newest=limit=50" \
            --query "walk-failed=status=failed&limit=50"
        sed "s/^/$label\t/" "$WORK/history-listing-$label.tsv" >>"$WORK/history-listing.tsv"
        kill -0 "$HISTORY_PID" 2>/dev/null || die "rosterd (history) exited during the benchmark"
    }

    echo
    echo "== history: ingest (C=$c, $BENCH_EVENTS events) and admin event listing, empty vs $n stored events =="
    history_level empty
    say "history: storing $n events (two loaders)"
    local loading=$SECONDS
    load_history "$db_url" "$n"
    echo "-- stored $n events in $((SECONDS - loading)) s; table and indexes: $(run_psql "$db_url" -c "select pg_size_pretty(pg_total_relation_size('inbound_events'))")"
    history_level full

    {
        echo "history (target: ingest with $n stored events within 10% of the empty table's rate)"
        awk -F'\t' '
            $4 == "unique" && $1 == "empty" { e = $6; e99 = $8 }
            $4 == "unique" && $1 == "full"  { f = $6; f99 = $8 }
            END {
                printf "  ingest C=16 unique: empty %.0f ev/s (p99 %.1f ms), full %.0f ev/s (p99 %.1f ms), ratio %.2f  %s\n",
                    e, e99, f, f99, (e > 0 ? f / e : 0), (e > 0 && f / e >= 0.9 ? "target met" : "target missed")
            }' "$WORK/history-ingest.tsv"
        echo "  admin event listing (50 per page, one at a time; walk = following nextCursor 200 pages deep)"
        printf '    %-12s %26s   %26s\n' "" "empty: p50 / p99 / max ms" "full: p50 / p99 / max ms"
        awk -F'\t' '
            { key = $2; if (!(key in seen)) { seen[key] = 1; order[++k] = key }
              v[$1, key] = sprintf("%7.2f %7.2f %7.2f", $4, $5, $6); if ($8 > 0) err += $8 }
            END {
                for (i = 1; i <= k; i++) printf "    %-12s %26s   %26s\n", order[i], v["empty", order[i]], v["full", order[i]]
                if (err > 0) printf "    invalid: %d errors\n", err
            }' "$WORK/history-listing.tsv"
    } >>"$SUMMARY"

    stop_pid "$HISTORY_PID"
    HISTORY_PID=""
    # Seven gigabytes the other sections do not need.
    run_psql "$DATABASE_URL" -c "drop database rosterd_bench_history" >/dev/null
}

# GNU time gives the peak-memory figures.
ensure_gnu_time() {
    if [[ ! -x /usr/bin/time ]] && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing GNU time for the peak-memory figure"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2 || true
    fi
}

section_push() {
    local db_url n=${BENCH_PUSH_ROWS:-100000} timing format file
    ensure_gnu_time
    [[ -x /usr/bin/time ]] || { say "no /usr/bin/time: skipping push"; return 0; }
    # The same people in both formats, each pushed into an empty database.
    awk -v n="$n" 'BEGIN {
        print "id,email,name,status,groups"
        for (i = 1; i <= n; i++) printf "rec%07d,person%d@bulk.example,Person %d,active,%s\n", i, i, i, (i % 10 ? "staff" : "admins")
    }' >"$WORK/roster.csv"
    awk -v n="$n" 'BEGIN {
        for (i = 1; i <= n; i++) printf "- id: rec%07d\n  email: person%d@bulk.example\n  name: Person %d\n  status: active\n  groups: [%s]\n", i, i, i, (i % 10 ? "staff" : "admins")
    }' >"$WORK/roster.yaml"
    for format in csv yaml; do
        file=$WORK/roster.$format
        run_psql "$DATABASE_URL" -c "drop database if exists rosterd_bench_push" >/dev/null
        run_psql "$DATABASE_URL" -c "create database rosterd_bench_push" >/dev/null
        db_url=${DATABASE_URL%/*}/rosterd_bench_push
        DATABASE_URL=$db_url "$ROSTERD_BIN" migrate >/dev/null
        echo
        echo "== push: rosterd push of a $n-person ${format^^} file, all new (worker off) =="
        timing=$( { DATABASE_URL=$db_url ROLE_MAP=admins=admin /usr/bin/time -f '%e %M' "$ROSTERD_BIN" push "$file" >"$WORK/push.out"; } 2>&1 | tail -n 1)
        tail -n 9 "$WORK/push.out"
        read -r secs kib <<<"$timing"
        printf 'push %s rows (%s): %.2f s wall, peak RSS %.1f MiB\n' "$n" "${format^^}" "$secs" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" |
            tee -a "$WORK/push.txt"
        [[ $format == csv ]] || continue
        # Then the first load's other half: provisioning every one of them.
        echo
        echo "== drain: rosterd worker --once over the $n jobs the push queued (local provider, C=8) =="
        timing=$( { DATABASE_URL=$db_url AUTH_PROVIDER=local WORKER_CONCURRENCY=8 RUST_LOG=warn \
            /usr/bin/time -f '%e %M %U %S' "$ROSTERD_BIN" worker --once >"$WORK/drain.out"; } 2>&1 | tail -n 1)
        cat "$WORK/drain.out"
        read -r secs kib user sys <<<"$timing"
        printf 'drain %s jobs (local, C=8): %.1f s wall, %.0f jobs/s, rosterd CPU %.1f s, peak RSS %.1f MiB\n' \
            "$n" "$secs" "$(awk -v n="$n" -v s="$secs" 'BEGIN { print n / s }')" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" \
            "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" | tee -a "$WORK/drain.txt"
    done
    {
        echo "push (target: < 10 s and < 100 MiB for 100,000 new rows)"
        sed 's/^/  /' "$WORK/push.txt"
        echo "drain after the push (target: < 60 s for 100,000 jobs)"
        sed 's/^/  /' "$WORK/drain.txt"
    } >>"$SUMMARY"
}

section_reconcile() {
    local db_url n=$BENCH_RECONCILE_ROWS timing
    ensure_gnu_time
    [[ -x /usr/bin/time ]] || { say "no /usr/bin/time: skipping reconcile"; return 0; }
    run_psql "$DATABASE_URL" -c "drop database if exists rosterd_bench_reconcile" >/dev/null
    run_psql "$DATABASE_URL" -c "create database rosterd_bench_reconcile" >/dev/null
    db_url=${DATABASE_URL%/*}/rosterd_bench_reconcile
    DATABASE_URL=$db_url "$ROSTERD_BIN" migrate >/dev/null
    run_psql "$db_url" -c "
        insert into auth_accounts (id, email, user_metadata, app_metadata, created_at)
        select gen_random_uuid(), 'p' || i || '@bench.example', '{\"name\": null}',
               jsonb_build_object('roles', '[]'::jsonb, 'roster_id', 'rec' || i, 'managed_by', 'rosterd'),
               now() - make_interval(secs => $n - i)
        from generate_series(1, $n) i;
        insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at,
                            last_event_id, auth_user_id)
        select 'rec' || i, a.email, 'active', now(), 'e' || i, now(), 'e' || i, a.id
        from generate_series(1, $n) i join auth_accounts a on a.email = 'p' || i || '@bench.example';" >/dev/null
    run_psql "$db_url" -c "vacuum analyze" >/dev/null
    echo
    echo "== reconcile: rosterd provision over $n people already in sync (local provider) =="
    timing=$( { DATABASE_URL=$db_url /usr/bin/time -f '%e %M' "$ROSTERD_BIN" provision --json >"$WORK/reconcile.json"; } 2>&1 | tail -n 1)
    cat "$WORK/reconcile.json"
    read -r secs kib <<<"$timing"
    printf 'reconcile %s rows: %.2f s wall, peak RSS %.1f MiB\n' "$n" "$secs" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" |
        tee -a "$WORK/reconcile.txt"
    {
        echo "reconcile (target: < 10 s and < 200 MiB for 100,000 unchanged rows)"
        sed 's/^/  /' "$WORK/reconcile.txt"
    } >>"$SUMMARY"
}

say "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $("$PSQL" --version)"
say "PostgreSQL: fsync=$(run_psql "$DATABASE_URL" -c 'show fsync'), synchronous_commit=$(run_psql "$DATABASE_URL" -c 'show synchronous_commit')"
for section in $BENCH_SECTIONS; do
    declare -F "section_$section" >/dev/null || die "unknown section '$section' in BENCH_SECTIONS"
    "section_$section"
done

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
cat "$SUMMARY"
if [[ -s $WORK/cpu.txt ]]; then
    echo "where the CPU went (the ingest service figure includes its duplicate pass)"
    sed 's/^cpu  /  /' "$WORK/cpu.txt"
fi
