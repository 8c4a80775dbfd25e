# Development entry points.  Everything PostgreSQL goes through scripts/pg.sh,
# which finds (or, on Debian as root, installs) PostgreSQL and runs a private
# loopback-only cluster; no system service or password setup needed.
#
#   make run            dev cluster in .data/postgres + the service
#   make test           test suite against a throwaway cluster (or $DATABASE_URL),
#                       then schemathesis against the real server (whole suite only)
#   make schemathesis   only the schemathesis run (scripts/schemathesis.sh)
#   make scim-suites    only the SCIM conformance suites (scripts/scim-suites.sh)
#   make soak           the black-box convergence test with 1,000 histories
#   make bench          release build + benchmarks on a throwaway durable cluster;
#                       prints figures, asserts nothing (see scripts/bench.sh)
#   make db-stop        stop the dev cluster (make run leaves it running)
#   make clean-db       stop it and delete .data/
#
# Overridable: PGPORT (dev cluster port), DEV_SECRET, BIND_ADDR, TEST_ARGS,
# e.g. `make run PGPORT=54400` or `make test TEST_ARGS='webhook -- --nocapture'`.

PGPORT     ?= 54329
DEV_SECRET ?= dev-secret-0123456789abcdef
DEV_LOGIN_TOKEN ?= dev-login-token
DEV_ADMIN_TOKEN ?= dev-admin-token-0123456789
DEV_SCIM_TOKEN ?= dev-scim-token-0123456789abcdef0123
BIND_ADDR  ?= 127.0.0.1:8080
TEST_ARGS  ?=
PGDIR      := .data/postgres
PG         := scripts/pg.sh

.PHONY: run db-start db-stop db-url psql test schemathesis scim-suites soak bench lint sqlx-prepare clean-db

# `exec` hands the shell's place to cargo, so Ctrl-C stops the service.  The
# cluster runs in its own session and keeps running; `make db-stop` stops it.
run:
	@url=$$($(PG) start $(PGDIR) $(PGPORT)) || exit 1; \
	printf '\nrosterd (development)\n  database:            %s\n  listening on:        http://%s\n  development secret:  %s\n  login lookup token:  %s\n  admin token (dev):   %s\n  SCIM token (dev):    %s  (http://%s/scim/v2)\n  operator console:    http://%s/console\n  See README.md for a curl example. Ctrl-C stops the service; `make db-stop` stops PostgreSQL.\n\n' \
		"$$url" '$(BIND_ADDR)' '$(DEV_SECRET)' '$(DEV_LOGIN_TOKEN)' '$(DEV_ADMIN_TOKEN)' '$(DEV_SCIM_TOKEN)' '$(BIND_ADDR)' '$(BIND_ADDR)' >&2; \
	DATABASE_URL="$$url" AIRTABLE_USER_SYNC_SECRET='$(DEV_SECRET)' BIND_ADDR='$(BIND_ADDR)' \
		ROLE_MAP="$${ROLE_MAP-admins=admin}" ROLE_DEFAULTS="$${ROLE_DEFAULTS-reader}" \
		LOGIN_API_TOKENS='$(DEV_LOGIN_TOKEN)' ADMIN_TOKENS='dev:$(DEV_ADMIN_TOKEN)' \
		SCIM_TOKENS='dev:$(DEV_SCIM_TOKEN)' \
		SQLX_OFFLINE=true exec cargo run --bin rosterd -- serve

db-start:
	@$(PG) start $(PGDIR) $(PGPORT)

db-stop:
	@$(PG) stop $(PGDIR)

db-url:
	@$(PG) url $(PGDIR)

psql:
	@$(PG) start $(PGDIR) $(PGPORT) >/dev/null
	@exec $(PG) psql $(PGDIR)

test:
	scripts/test.sh $(TEST_ARGS)

schemathesis:
	scripts/schemathesis.sh

scim-suites:
	scripts/scim-suites.sh

# The black-box convergence test at length: both providers, one and two
# replicas, STRESS_HISTORIES histories each (Supabase's split between the
# stand-in's two answers to a taken id or email), one case at a time.
STRESS_HISTORIES ?= 250
soak:
	STRESS_HISTORIES=$(STRESS_HISTORIES) scripts/test.sh -- stress:: --test-threads=1 --nocapture

bench:
	scripts/bench.sh

lint:
	cargo fmt --check
	SQLX_OFFLINE=true cargo clippy --all-targets -- -D warnings

sqlx-prepare:
	scripts/sqlx-prepare.sh

clean-db:
	@$(PG) stop $(PGDIR)
	rm -rf .data
