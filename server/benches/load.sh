#!/usr/bin/env bash
# Enclave's load benchmark: `make bench` runs it on a release build,
# `make bench-smoke` (part of `make test`) runs a tiny version of it.
#
# In one run, on this machine:
#   1. the ceilings, on each PostgreSQL cluster: `pgbench -S` (select-only,
#      kept connections) and `pgbench -S -C` (a new connection per
#      transaction, the physics of churn), at the same concurrency; and on
#      the stock cluster, with STACK_BIN (server/examples/stack_ceiling.rs),
#      the stack without Enclave: the same HTTP loop, pool options and
#      `SELECT 1` through SeaORM over 10 pools, its HTTP alone, and the
#      query on 10 held sqlx connections (no pool, so no ping on release);
#   2. load: wrk sends GET /api/health (one query on the company's own
#      database) with the Host picked among N companies, uniformly or
#      Zipf-distributed (s = 0.99), against
#        - "stock": the machine's PostgreSQL (PG_NS uniform, PG_ZIPF_NS Zipf),
#        - "own": a cluster of the benchmark's own (OWN_NS): initdb into
#          $OWN_DIR, its own port, scram-sha-256 for company roles as in
#          production, max_connections $OWN_MAX_CONNECTIONS,
#        - SQLite (SQLITE_NS), with the open-file limit raised to
#          $SQLITE_NOFILE where this user may;
#      while it samples the tenant connections open and Enclave's RSS, and
#      reads the pool-cache hit rate (/metrics) and the connections opened
#      per second (PostgreSQL's session count; pools opened on SQLite);
#   3. a fleet (issue 14): FLEET_KS servers, each a cluster of the
#      benchmark's own with the stock max_connections (100), the first named
#      by ENCLAVE_TENANT_DB_URL and the others added with `dbserver add`,
#      FLEET_N companies placed across them, uniform load; each row as a
#      ratio to K × the one-server row of the same run (each fleet starts
#      empty and is removed after its row);
#   2b. signed-in pages (on the stock cluster, SIGNED_N companies): each
#      company's admin signed in once, then GET / (the dashboard) with
#      their session cookies, beside GET /api/health on the same companies,
#      counting the registry's transactions and the companies' per request
#      (pg_stat_database, read after STATS_WAIT s of quiet, so that idle
#      connections have reported theirs);
#   4. provisioning on the stock cluster, one company at a time, copied
#      from the tenant template and (ENCLAVE_TENANT_TEMPLATE=false) migrated
#      from empty, the mean time of each step (/metrics), and a bare
#      `CREATE DATABASE` as its ceiling;
# and prints Markdown tables, every row with its ratios to the ceilings of
# the same run, then issue 13's targets with what this run measured. It
# exits non-zero if a request failed or the tenant connections ever
# exceeded the open budget.
#
# Companies are created through the platform API and kept between runs
# ($WORK, and the own cluster in $OWN_DIR); BENCH_FRESH=1 starts over.
# Enclave runs with its default settings (the open budget derived from the
# server) unless BUDGET or POOL say otherwise.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=server/benches/sign_in.sh
. "$HERE/sign_in.sh"
BIN=${BIN:?set BIN to the server binary}
PG_NS=${PG_NS-10 100 1000}
PG_ZIPF_NS=${PG_ZIPF_NS-1000}
OWN_NS=${OWN_NS-10 1000}
OWN_MAX_CONNECTIONS=${OWN_MAX_CONNECTIONS:-1200}
OWN_PORT=${OWN_PORT:-5499}
OWN_DIR=${OWN_DIR:-/var/tmp/enclave-bench-pg}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
SQLITE_NS=${SQLITE_NS-10 10000}
FLEET_KS=${FLEET_KS-1 2 4}
FLEET_N=${FLEET_N:-2000}
FLEET_PORT=${FLEET_PORT:-5520}   # server i of the fleet listens on FLEET_PORT + i
FLEET_DIR=${FLEET_DIR:-/var/tmp/enclave-bench-fleet}
SQLITE_NOFILE=${SQLITE_NOFILE:-65536}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
CONCURRENCY=${CONCURRENCY:-32}
THREADS=${THREADS:-2}
BUDGET=${BUDGET:-}
POOL=${POOL:-}
PROVISION_COUNT=${PROVISION_COUNT:-20}
SIGNED_N=${SIGNED_N-10}
STATS_WAIT=${STATS_WAIT:-11}
SETUP_PARALLEL=${SETUP_PARALLEL:-4}
PORT=${PORT:-3200}
WORK=${WORK:-$HOME/.cache/enclave/bench}
STOCK=${PG:-postgres://postgres@127.0.0.1:5432}
OWN=postgres://postgres@127.0.0.1:$OWN_PORT
REGISTRY_DB=${REGISTRY_DB:-enclave_bench}
PGBENCH_DB=${PGBENCH_DB:-enclave_pgbench}
SITE_PKG=${SITE_PKG:-}
STACK_BIN=${STACK_BIN:-}
STACK_PORT=${STACK_PORT:-3299}
OUT=${OUT:-$WORK/results.md}
ZIPF_S=0.99

# Fixed so that the registry's encrypted URLs stay readable between runs.
# A benchmark key for a benchmark database: never use it for real data.
KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ORIGIN="http://127.0.0.1:$PORT"
SERVER_PID=
SAMPLER_PID=
STARTED=()     # data directories of the clusters this run started
PG=$STOCK      # the cluster pg() and the server use now
CLUSTER=stock
URLS=("$STOCK")  # every cluster the server uses now (a fleet has several)

pg() { psql "$PG/${1}?sslmode=disable" -v ON_ERROR_STOP=1 -Atq "${@:2}"; }
die() { echo "load.sh: $*" >&2; exit 1; }
for tool in wrk pgbench psql curl; do command -v $tool >/dev/null || die "$tool is missing (make setup-system)"; done
[ -x "$BIN" ] || die "no server binary at $BIN"

# initdb and postgres refuse to run as root.
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  [ -n "$SAMPLER_PID" ] && { pkill -P "$SAMPLER_PID"; kill "$SAMPLER_PID"; } 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  for dir in "${STARTED[@]}"; do
    [ -n "$dir" ] || continue
    as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# A cluster of the benchmark's own (start_cluster dir port max_connections),
# made once and started for the run. Company roles log in with
# scram-sha-256; the superuser (the benchmark's and Enclave's administrator
# URL) is trusted on loopback.
start_cluster() {
  local dir=$1 port=$2 max=$3
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL binaries in $PG_BIN"
  if [ ! -s "$dir/PG_VERSION" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_postgres "$PG_BIN/initdb" -D "$dir" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 >/dev/null
    as_postgres sh -c "printf '%s\n' 'local all all trust' \
      'host all postgres 127.0.0.1/32 trust' 'host all all 127.0.0.1/32 scram-sha-256' \
      >'$dir/pg_hba.conf'"
  fi
  as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=$max" \
    start >/dev/null || die "the benchmark's cluster did not start; see $dir/server.log"
  STARTED+=("$dir")
}

start_own_cluster() { start_cluster "$OWN_DIR" "$OWN_PORT" "$OWN_MAX_CONNECTIONS"; }

fleet_url() { echo "postgres://postgres@127.0.0.1:$((FLEET_PORT + $1))"; }

use_cluster() {
  CLUSTER=$1
  case $1 in stock) PG=$STOCK ;; own) PG=$OWN ;; esac
  URLS=("$PG")
  [ -n "$(pg postgres -c "select 1 from pg_database where datname = '$REGISTRY_DB'")" ] \
    || pg postgres -c "create database $REGISTRY_DB"
}

# Drops the companies a previous run left on the current cluster (names
# read from the registry and checked to be tenant_<hex>), then the registry.
fresh() {
  if [ -n "$(pg postgres -c "select 1 from pg_database where datname = '$REGISTRY_DB'")" ]; then
    for db in $(pg "$REGISTRY_DB" -c "select db_name from tenants" 2>/dev/null || true); do
      [[ $db =~ ^tenant_[0-9a-f]{32}$ ]] || continue
      pg postgres -c "drop database if exists \"$db\" with (force)" -c "drop role if exists \"$db\""
    done
    pg postgres -c "drop database $REGISTRY_DB with (force)"
  fi
  rm -f "$WORK/token-$CLUSTER" "$WORK/companies-$CLUSTER"
}

# Enclave's environment for a backend: sqlite | postgres (the current cluster).
server_env() {
  ENV=(ENCLAVE_DATA_DIR="$WORK/sqlite" ENCLAVE_SECRET_KEY=$KEY)
  if [ "$1" = postgres ]; then
    ENV+=(ENCLAVE_REGISTRY_URL="$PG/$REGISTRY_DB?sslmode=disable"
      ENCLAVE_TENANT_DB_URL="$PG/postgres?sslmode=disable")
  fi
  [ -n "$BUDGET" ] && ENV+=(ENCLAVE_CONNECTION_BUDGET="$BUDGET")
  [ -n "$POOL" ] && ENV+=(ENCLAVE_TENANT_POOL_SIZE="$POOL")
  return 0
}

# start_server sqlite|postgres [extra env...]
start_server() {
  local backend=$1; shift
  server_env "$backend"
  # 10,000 SQLite companies need some 30,000 files: raise the hard limit
  # where this user may (root; systemd's LimitNOFILE= in production).
  ( if [ "$backend" = sqlite ]; then ulimit -Hn "$SQLITE_NOFILE" 2>/dev/null || true; fi
    exec env "${ENV[@]}" ENCLAVE_LISTEN=127.0.0.1:$PORT ENCLAVE_BASE_DOMAIN=localhost \
      ENCLAVE_LOG_FORMAT=human RUST_LOG=${RUST_LOG:-info} "$@" "$BIN" serve \
  ) >>"$WORK/server-$backend-$CLUSTER.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null -H "Host: localhost:$PORT" "$ORIGIN/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited; see $WORK/server-$backend-$CLUSTER.log"
    sleep 0.2
  done
  die "the server did not answer in 60 s"
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# run_cli backend args...: the server binary's CLI against the same registry.
run_cli() {
  local backend=$1; shift
  server_env "$backend"
  env "${ENV[@]}" RUST_LOG=warn "$BIN" "$@"
}

# A platform API token for this backend's registry (made once, kept).
token() {
  local file="$WORK/token-$1-$CLUSTER"
  [ -s "$file" ] || run_cli "$1" superadmin token create --label bench 2>/dev/null >"$file"
  cat "$file"
}

# create_company token subdomain: prints "<http status> <seconds>".
create_company() {
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST \
    -H "Host: localhost:$PORT" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' \
    -d "{\"name\":\"Bench $2\",\"subdomain\":\"$2\",\"admin_email\":\"admin@$2.example\",\"admin_password\":\"bench-password\"}" \
    "$ORIGIN/api/admin/tenants"
}
export -f create_company
export PORT ORIGIN

# ensure_companies backend N: t00001 … tN exist (201 now, or 409 already).
ensure_companies() {
  local backend=$1 n=$2 have=0 file="$WORK/companies-$1-$CLUSTER"
  [ -s "$file" ] && have=$(cat "$file")
  [ "$have" -ge "$n" ] && return 0
  local tok started
  tok=$(token "$backend")
  started=$(date +%s)
  echo "creating companies $((have + 1))…$n on $backend ($CLUSTER, $SETUP_PARALLEL at a time)" >&2
  seq "$((have + 1))" "$n" | xargs -P "$SETUP_PARALLEL" -I{} bash -c '
    out=$(create_company "$0" "$(printf "t%05d" {})")
    case ${out%% *} in 201|409) ;; *) echo "creating t{} answered $out" >&2; exit 1 ;; esac' "$tok" \
    || die "creating companies failed"
  echo "$n" >"$file"
  echo "  took $(( $(date +%s) - started )) s" >&2
  # Each CREATE DATABASE wrote some 8 MB of WAL: checkpoint now, not
  # under the load that follows.
  if [ "$backend" = postgres ]; then pg postgres -c checkpoint; fi
}

metrics() { curl -fs -H "Host: localhost:$PORT" "$ORIGIN/metrics"; }
# metric NAME: its value in the last /metrics read ($METRICS).
metric() { awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print 0}' <<<"$METRICS"; }
# Sessions PostgreSQL has opened to tenant databases, ever (PostgreSQL 14+).
sessions() {
  local url total=0
  for url in "${URLS[@]}"; do
    total=$((total + $(PG=$url pg postgres -c "select coalesce(sum(sessions), 0) from pg_stat_database where datname like 'tenant\\_%'")))
  done
  echo "$total"
}
# Connections open to tenant databases now, on every cluster in use.
tenant_connections() {
  local url total=0 n
  for url in "${URLS[@]}"; do
    n=$(PG=$url pg postgres -c "select count(*) from pg_stat_activity where datname like 'tenant\\_%'" 2>/dev/null || echo 0)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# Samples, every 100 ms, "<tenant connections open> <Enclave RSS KiB>".
start_sampler() {
  local backend=$1 pid=$SERVER_PID
  : >"$WORK/samples"
  (while sleep 0.1; do
    local open rss
    if [ "$backend" = postgres ]; then
      open=$(tenant_connections)
    else
      open=$(metrics | awk '/^enclave_tenant_connections_open /{print $2}')
    fi
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    echo "${open:-0} ${rss:-0}"
  done >"$WORK/samples") 2>/dev/null &
  SAMPLER_PID=$!
}

# Stops the sampler; prints "<peak connections> <peak RSS MiB>".
stop_sampler() {
  pkill -P "$SAMPLER_PID" 2>/dev/null || true
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
  awk '{if ($1 > c) c = $1; if ($2 > r) r = $2} END {printf "%d %.0f\n", c, r / 1024}' "$WORK/samples"
}

# PostgreSQL's memory now: "<backends> <PSS of all its processes, MiB>".
pg_memory() {
  local dir pm
  dir=$(pg postgres -c 'show data_directory')
  pm=$(head -n1 "$dir/postmaster.pid" 2>/dev/null) || { echo "? ?"; return; }
  local pids
  pids="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
  local backends
  backends=$(pg postgres -c "select count(*) from pg_stat_activity where backend_type = 'client backend'")
  # shellcheck disable=SC2086
  echo "$backends $(cat $(printf '/proc/%s/smaps_rollup ' $pids) 2>/dev/null \
    | awk '/^Pss:/{s += $2} END {printf "%.0f", s / 1024}')"
}

# best_hit_rate dist N K: the share of requests that go to the K most
# popular of N companies, the best any cache of K pools can do.
best_hit_rate() {
  awk -v d="$1" -v n="$2" -v k="$3" -v s="$ZIPF_S" 'BEGIN {
    if (k >= n) { print 1; exit }
    if (d == "uniform") { printf "%.4f", k / n; exit }
    for (i = 1; i <= n; i++) { w = 1 / i ^ s; t += w; if (i <= k) top += w }
    printf "%.4f", top / t }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "–" }'; }
ms() { awk -v us="$1" 'BEGIN{printf "%.2f", us / 1000}'; }
pct() { awk -v r="$1" 'BEGIN{printf "%.1f %%", r * 100}'; }

# pgbench_ceilings: "<pgbench -S tps> <pgbench -S -C tps>" on the current
# cluster. -C logs in as a scram-sha-256 role on the own cluster, as a
# company's role would; the stock cluster trusts every role.
pgbench_ceilings() {
  if [ -z "$(pg postgres -c "select 1 from pg_database where datname = '$PGBENCH_DB'")" ]; then
    pg postgres -c "create database $PGBENCH_DB"
    pgbench -i -q -s 10 "$PG/$PGBENCH_DB?sslmode=disable" >/dev/null 2>&1
  fi
  pg postgres -c "do \$\$ begin create role enclave_pgbench login password 'pgbench-password';
    exception when duplicate_object then null; end \$\$" >/dev/null
  pg "$PGBENCH_DB" -c "grant select on all tables in schema public to enclave_pgbench" >/dev/null
  local as_role=${PG/postgres@/enclave_pgbench:pgbench-password@}
  local kept churn
  kept=$(pgbench -S -n -c "$CONCURRENCY" -j "$THREADS" -T "$DURATION" \
    "$PG/$PGBENCH_DB?sslmode=disable" 2>/dev/null | awk '/^tps = /{printf "%.0f", $3}')
  churn=$(pgbench -S -C -n -c "$CONCURRENCY" -j "$THREADS" -T "$DURATION" \
    "$as_role/$PGBENCH_DB?sslmode=disable" 2>/dev/null | awk '/^tps = /{printf "%.0f", $3}')
  echo "${kept:-0} ${churn:-0}"
}

# stack_ceilings: "<req/s of GET /api/health> <of GET /plain> <of GET /held> <failed>" from
# the stack alone (STACK_BIN), 10 pools of one connection on the pgbench
# database of the current cluster, under the same wrk as a row.
stack_ceilings() {
  STACK_DB_URL="$PG/$PGBENCH_DB?sslmode=disable" STACK_N=10 STACK_LISTEN=127.0.0.1:$STACK_PORT \
    "$STACK_BIN" >>"$WORK/stack.log" 2>&1 &
  local pid=$! path out requests duration_us non2xx socket p50_us p99_us rates=() failed=0
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$STACK_PORT/plain" && break
    kill -0 "$pid" 2>/dev/null || die "the stack's ceiling exited; see $WORK/stack.log"
    sleep 0.1
  done
  for path in /api/health /plain /held; do
    BENCH_N=10 BENCH_PATH=$path BENCH_DOMAIN="localhost:$STACK_PORT" wrk -t"$THREADS" -c"$CONCURRENCY" \
      -d"${WARMUP}s" -s "$HERE/rotate.lua" "http://127.0.0.1:$STACK_PORT" >/dev/null
    out=$(BENCH_N=10 BENCH_PATH=$path BENCH_DOMAIN="localhost:$STACK_PORT" wrk -t"$THREADS" -c"$CONCURRENCY" \
      -d"${DURATION}s" --timeout 10s -s "$HERE/rotate.lua" "http://127.0.0.1:$STACK_PORT" | grep '^RESULT')
    eval "$(echo "${out#RESULT }" | tr ' ' '\n')"
    failed=$((failed + non2xx + socket))
    rates+=("$(awk -v r="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "${rates[*]} $failed"
}

declare -A RPS HIT BEST RSS_MIB CEIL_S CEIL_C CEIL_STACK CEIL_HTTP CEIL_HELD
ROWS=()
FAILED=0

# sweep N: every one of N companies asked for once. wrk's threads stop
# after their share, but wrk itself waits out its duration: it is stopped
# once the server has counted N more requests.
sweep() {
  local n=$1 before pid
  METRICS=$(metrics)
  before=$(( $(metric enclave_tenant_pool_hits_total) + $(metric enclave_tenant_pool_misses_total) ))
  BENCH_N=$n BENCH_DIST=sweep BENCH_THREADS=$THREADS BENCH_DOMAIN="localhost:$PORT" \
    wrk -t"$THREADS" -c"$CONCURRENCY" -d600s --timeout 10s -s "$HERE/rotate.lua" "$ORIGIN" >/dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    METRICS=$(metrics)
    [ $(( $(metric enclave_tenant_pool_hits_total) + $(metric enclave_tenant_pool_misses_total) - before )) -ge "$n" ] && break
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# load backend dist N: one table row, for the current cluster.
load() {
  local backend=$1 dist=$2 n=$3 name
  name=$([ "$backend" = sqlite ] && echo sqlite || echo "$CLUSTER")
  local warm=$WARMUP
  # Every company asked for once (its pool opened, where the budget holds
  # it), then a longer warm-up, before the measured run.
  if [ "$n" -ge 1000 ]; then
    warm=$((WARMUP * 2))
    sweep "$n"
  fi
  BENCH_N=$n BENCH_DIST=$dist BENCH_DOMAIN="localhost:$PORT" wrk -t"$THREADS" -c"$CONCURRENCY" \
    -d"${warm}s" -s "$HERE/rotate.lua" "$ORIGIN" >/dev/null
  METRICS=$(metrics)
  local hits0 misses0 sessions0=0
  hits0=$(metric enclave_tenant_pool_hits_total)
  misses0=$(metric enclave_tenant_pool_misses_total)
  [ "$backend" = postgres ] && sessions0=$(sessions)
  start_sampler "$backend"
  local out
  out=$(BENCH_N=$n BENCH_DIST=$dist BENCH_DOMAIN="localhost:$PORT" wrk -t"$THREADS" -c"$CONCURRENCY" \
    -d"${DURATION}s" --timeout 10s -s "$HERE/rotate.lua" "$ORIGIN" | grep '^RESULT')
  local peak rss sampled
  sampled=$(stop_sampler)
  read -r peak rss <<<"$sampled"
  METRICS=$(metrics)
  local hits misses budget opened
  hits=$(( $(metric enclave_tenant_pool_hits_total) - hits0 ))
  misses=$(( $(metric enclave_tenant_pool_misses_total) - misses0 ))
  budget=$(metric enclave_tenant_connections_budget)
  # A fleet's budget is its servers' together.
  if [ "${#URLS[@]}" -gt 1 ]; then
    budget=$(awk '/^enclave_db_server_open_budget\{/ {s += $NF} END {print s + 0}' <<<"$METRICS")
  fi
  if [ "$backend" = postgres ]; then opened=$(( $(sessions) - sessions0 )); else opened=$misses; fi
  local requests duration_us non2xx socket p50_us p99_us
  eval "$(echo "${out#RESULT }" | tr ' ' '\n')"
  local rps errors hit best key="$name $dist $n"
  rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  errors=$((non2xx + socket))
  hit=$(awk -v h="$hits" -v m="$misses" 'BEGIN{printf "%.4f", (h + m) ? h / (h + m) : 0}')
  best=$(best_hit_rate "$dist" "$n" "$budget")
  RPS[$key]=$rps; HIT[$key]=$hit; BEST[$key]=$best; RSS_MIB[$key]=$rss
  local per_s
  per_s=$(awk -v o="$opened" -v d="$duration_us" 'BEGIN{printf "%.0f", o / (d / 1e6)}')
  local ceil_s="–" ceil_c="–" of10="–"
  [ "$backend" = postgres ] && { ceil_s=$(ratio "$rps" "${CEIL_S[$CLUSTER]}"); ceil_c=$(ratio "$rps" "${CEIL_C[$CLUSTER]}"); }
  [ -n "${RPS[$name uniform 10]:-}" ] && of10=$(ratio "$rps" "${RPS[$name uniform 10]}")
  ROWS+=("| $name | $dist | $n | $rps | $(ms "$p50_us") | $(ms "$p99_us") | $errors | $peak / $budget | $(pct "$hit") ($(pct "$best")) | $per_s | $rss | $ceil_s | $ceil_c | $of10 |")
  echo "${ROWS[-1]}" >&2
  [ "$errors" -eq 0 ] || { echo "  $errors requests failed" >&2; FAILED=1; }
  [ "$peak" -le "$budget" ] || { echo "  tenant connections exceeded the open budget" >&2; FAILED=1; }
}

# xacts DB_PATTERN: transactions committed and rolled back, ever, in the
# databases of the current cluster whose names are LIKE the pattern.
xacts() {
  pg postgres -c "select coalesce(sum(xact_commit + xact_rollback), 0) from pg_stat_database where datname like '$1'"
}

# signed_in N: the first N companies' admins sign in (once, kept in a
# cookie file), then GET /api/health and GET / (the dashboard, signed in)
# over them: one row each, with the registry's and the companies'
# transactions per request.
SIGNED_ROWS=()
declare -A SIGNED_RPS SIGNED_REGISTRY SIGNED_COMPANY
signed_in() {
  local n=$1 cookies="$WORK/cookies-$CLUSTER"
  sign_in_admins "$n" "$cookies" || die "signing in failed"
  local path label
  for path in /api/health /; do
    label=$([ "$path" = / ] && echo "GET / (dashboard, signed in)" || echo "GET /api/health")
    BENCH_N=$n BENCH_PATH=$path BENCH_COOKIES=$cookies BENCH_DOMAIN="localhost:$PORT" \
      wrk -t"$THREADS" -c"$CONCURRENCY" -d"${WARMUP}s" -s "$HERE/rotate.lua" "$ORIGIN" >/dev/null
    sleep "$STATS_WAIT"
    local reg0 ten0 out
    reg0=$(xacts "$REGISTRY_DB")
    ten0=$(xacts 'tenant\_%')
    out=$(BENCH_N=$n BENCH_PATH=$path BENCH_COOKIES=$cookies BENCH_DOMAIN="localhost:$PORT" \
      wrk -t"$THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 10s -s "$HERE/rotate.lua" "$ORIGIN" | grep '^RESULT')
    sleep "$STATS_WAIT"
    local reg ten requests duration_us non2xx socket p50_us p99_us rps
    reg=$(( $(xacts "$REGISTRY_DB") - reg0 ))
    ten=$(( $(xacts 'tenant\_%') - ten0 ))
    eval "$(echo "${out#RESULT }" | tr ' ' '\n')"
    rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
    SIGNED_RPS[$path]=$rps
    SIGNED_REGISTRY[$path]=$(awk -v x="$reg" -v r="$requests" 'BEGIN{printf "%.4f", r ? x / r : 0}')
    SIGNED_COMPANY[$path]=$(awk -v x="$ten" -v r="$requests" 'BEGIN{printf "%.2f", r ? x / r : 0}')
    SIGNED_ROWS+=("| $label | $n | $rps | $(ms "$p50_us") | $(ms "$p99_us") | $((non2xx + socket)) | ${SIGNED_REGISTRY[$path]} | ${SIGNED_COMPANY[$path]} |")
    echo "${SIGNED_ROWS[-1]}" >&2
    [ $((non2xx + socket)) -eq 0 ] || { echo "  $((non2xx + socket)) requests failed" >&2; FAILED=1; }
  done
}

# bare_create: ms of one `CREATE DATABASE` from template1 (no role, schema
# or admin), then dropped as a company is: the provisioning ceiling.
bare_create() {
  local ms
  ms=$({ echo '\timing on'; echo "create database enclave_bare;"; } | pg postgres 2>&1 \
    | awk '/^Time: /{print $2}')
  pg postgres -c "drop database enclave_bare with (force)"
  echo "$ms"
}

# provision label count [env...]: median and p90 creation time, one at a
# time, each after a bare CREATE DATABASE timed in the same conditions (a
# drop before each forces a checkpoint on PostgreSQL 15), and the mean time
# of each step.
PROVISION_ROWS=()
STEP_ROWS=()
declare -A PROVISION_RATIO
provision() {
  local label=$1 count=$2; shift 2
  start_server postgres "$@"
  local tok times=() bare=() stamp
  tok=$(token postgres)
  stamp=$(date +%s%N | tail -c 7)
  pg postgres -c "drop database if exists enclave_bare with (force)"
  # One creation first, not counted: one-time work such as building the
  # template after a change of migrations.
  for i in $(seq 0 "$count"); do
    local sub out
    sub=$(printf "p%s%03d" "$stamp" "$i")
    [ "$i" -gt 0 ] && bare+=("$(bare_create)")
    out=$(create_company "$tok" "$sub")
    [ "${out%% *}" = 201 ] || die "provisioning $sub answered $out"
    [ "$i" -gt 0 ] && times+=("$(awk -v s="${out#* }" 'BEGIN{printf "%.1f", s * 1000}')")
    curl -fs -o /dev/null -X DELETE -H "Host: localhost:$PORT" \
      -H "Authorization: Bearer $tok" "$ORIGIN/api/admin/tenants/$sub"
  done
  METRICS=$(metrics)
  stop_server
  local median bare_median
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR] = $1} END {print t[int((NR + 1) / 2)]}')
  bare_median=$(printf '%s\n' "${bare[@]}" | sort -n | awk '{t[NR] = $1} END {printf "%.1f", t[int((NR + 1) / 2)]}')
  PROVISION_RATIO[$label]=$(ratio "$median" "$bare_median")
  PROVISION_ROWS+=("| $label | $count | $(printf '%s\n' "${times[@]}" | sort -n | awk '
    {t[NR] = $1} END {printf "%.1f | %.1f | %.1f", t[int((NR + 1) / 2)], t[int(NR * 0.9 + 0.5)], t[1]}') | $bare_median | ${PROVISION_RATIO[$label]} |")
  echo "${PROVISION_ROWS[-1]}" >&2
  # Mean per step over the creations of this server's life (count + 1).
  STEP_ROWS+=("| $label | $(awk '
    /^enclave_provisioning_step_seconds_sum/ {match($0, /step="[^"]*"/); s = substr($0, RSTART + 6, RLENGTH - 7); sum[s] = $NF; order[++n] = s}
    /^enclave_provisioning_step_seconds_count/ {match($0, /step="[^"]*"/); s = substr($0, RSTART + 6, RLENGTH - 7); cnt[s] = $NF}
    END {for (i = 1; i <= n; i++) {s = order[i]; if (cnt[s] > 0) printf "%s%s %.1f", (i > 1 ? ", " : ""), s, 1000 * sum[s] / cnt[s]}}' <<<"$METRICS") |")
  echo "${STEP_ROWS[-1]}" >&2
}

PG_NOTES=()
# run_cluster stock|own: ceilings, then uniform (and Zipf) load.
run_cluster() {
  local which=$1 uniform=$2 zipf=$3
  [ -n "$uniform$zipf" ] || return 0
  use_cluster "$which"
  [ "${BENCH_FRESH:-0}" = 1 ] && { fresh; use_cluster "$which"; }
  local ceilings
  ceilings=$(pgbench_ceilings)
  read -r "CEIL_S[$which]" "CEIL_C[$which]" <<<"$ceilings"
  echo "$which: pgbench -S ${CEIL_S[$which]} tps, pgbench -S -C ${CEIL_C[$which]} tps" >&2
  if [ "$which" = stock ] && [ -n "$STACK_BIN" ]; then
    local failed
    read -r "CEIL_STACK[$which]" "CEIL_HTTP[$which]" "CEIL_HELD[$which]" failed <<<"$(stack_ceilings)"
    echo "$which: the stack alone ${CEIL_STACK[$which]} req/s, its HTTP alone ${CEIL_HTTP[$which]} req/s, held connections ${CEIL_HELD[$which]} req/s" >&2
    [ "$failed" -eq 0 ] || { echo "  the stack's ceiling: $failed requests failed" >&2; FAILED=1; }
  fi
  start_server postgres
  for n in $uniform; do
    ensure_companies postgres "$n"
    load postgres uniform "$n"
    if [ "$which" = stock ] && [ "$n" = "$SIGNED_N" ]; then signed_in "$n"; fi
  done
  for n in $zipf; do ensure_companies postgres "$n"; load postgres zipf "$n"; done
  local mem
  mem=$(pg_memory)
  PG_NOTES+=("$which cluster after its last row: ${mem% *} client backends, PostgreSQL's processes ${mem#* } MiB PSS in all.")
  stop_server
}

# run_fleet K: K servers of the benchmark's own (stock max_connections),
# FLEET_N companies placed across them, uniform load. The first server's
# pgbench ceilings stand for every K.
#
# Every fleet starts empty and is removed after its row: 2,000 companies
# take some 15 GB of disk, and three fleets' would not fit beside the rest.
run_fleet() {
  local k=$1 i
  for i in $(seq 1 "$k"); do
    rm -rf "$FLEET_DIR-$i"
    start_cluster "$FLEET_DIR-$i" "$((FLEET_PORT + i))" 100
  done
  rm -f "$WORK"/token-*-fleet"$k" "$WORK"/companies-*-fleet"$k"
  CLUSTER=fleet$k
  PG=$(fleet_url 1)
  URLS=()
  for i in $(seq 1 "$k"); do URLS+=("$(fleet_url "$i")"); done
  local registry_db=$REGISTRY_DB
  REGISTRY_DB=${registry_db}_fleet$k
  [ -n "$(pg postgres -c "select 1 from pg_database where datname = '$REGISTRY_DB'")" ] \
    || pg postgres -c "create database $REGISTRY_DB"
  if [ -z "${CEIL_S[fleet1]:-}" ]; then
    local ceilings
    ceilings=$(pgbench_ceilings)
    read -r "CEIL_S[fleet1]" "CEIL_C[fleet1]" <<<"$ceilings"
    echo "fleet server 1: pgbench -S ${CEIL_S[fleet1]} tps, pgbench -S -C ${CEIL_C[fleet1]} tps" >&2
  fi
  CEIL_S[$CLUSTER]=${CEIL_S[fleet1]}
  CEIL_C[$CLUSTER]=${CEIL_C[fleet1]}
  # The first start makes the registry; then the other servers are added.
  start_server postgres
  stop_server
  for i in $(seq 2 "$k"); do
    [ -n "$(pg "$REGISTRY_DB" -c "select 1 from db_servers where name = 'f$i'")" ] && continue
    echo "$(fleet_url "$i")/postgres?sslmode=disable" \
      | run_cli postgres dbserver add --name "f$i" --admin-url-stdin >/dev/null
  done
  start_server postgres
  ensure_companies postgres "$FLEET_N"
  load postgres uniform "$FLEET_N"
  stop_server
  REGISTRY_DB=$registry_db
  for i in $(seq 1 "$k"); do
    as_postgres "$PG_BIN/pg_ctl" -D "$FLEET_DIR-$i" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$FLEET_DIR-$i"
  done
  STARTED=("${STARTED[@]/#$FLEET_DIR-*/}")
}

mkdir -p "$WORK"
if [ "${BENCH_FRESH:-0}" = 1 ]; then
  rm -rf "$WORK/sqlite" "$WORK"/token-* "$WORK"/companies-*
fi

# 1, 2. PostgreSQL, the stock cluster then the benchmark's own; SQLite.
run_cluster stock "$PG_NS" "$PG_ZIPF_NS"
STOCK_VERSION=$(pg postgres -c 'show server_version' | cut -d' ' -f1)
STOCK_MAX=$(pg postgres -c 'show max_connections')
if [ -n "$OWN_NS" ]; then
  start_own_cluster
  run_cluster own "$OWN_NS" ""
fi
if [ -n "$SQLITE_NS" ]; then
  start_server sqlite
  for n in $SQLITE_NS; do ensure_companies sqlite "$n"; load sqlite uniform "$n"; done
  stop_server
fi

# 3. A fleet of K servers.
for k in $FLEET_KS; do run_fleet "$k"; done

# 4. Provisioning on the stock cluster.
use_cluster stock
if [ "$PROVISION_COUNT" -gt 0 ]; then
  provision "template copy" "$PROVISION_COUNT"
  provision "migrated from empty" "$PROVISION_COUNT" ENCLAVE_TENANT_TEMPLATE=false
fi

# Issue 13's targets, from this run's rows.
TARGETS=()
target() { # description measured wanted-minimum
  local verdict
  verdict=$(awk -v m="$2" -v w="$3" 'BEGIN{print (m != "" && m + 0 >= w + 0) ? "holds" : "does not hold"}')
  TARGETS+=("| $1 | $2 | ≥ $3 | $verdict |")
}
r() { [ -n "${RPS[$1]:-}" ] && [ -n "${RPS[$2]:-}" ] && ratio "${RPS[$1]}" "${RPS[$2]}" || true; }
[ -n "${RPS[own uniform 1000]:-}" ] && target "own cluster, uniform 1,000 ÷ its 10 companies" "$(r 'own uniform 1000' 'own uniform 10')" 0.5
[ -n "${RPS[stock uniform 1000]:-}" ] && target "stock, uniform 1,000 ÷ pgbench -S -C" "$(ratio "${RPS[stock uniform 1000]}" "${CEIL_C[stock]}")" 0.9
if [ -n "${RPS[stock zipf 1000]:-}" ]; then
  target "stock, Zipf 1,000: hit rate − best possible (points)" \
    "$(awk -v h="${HIT[stock zipf 1000]}" -v b="${BEST[stock zipf 1000]}" 'BEGIN{printf "%.1f", 100 * (h - b)}')" -5
  target "stock, Zipf 1,000 ÷ uniform 1,000" "$(r 'stock zipf 1000' 'stock uniform 1000')" 2
fi
if [ -n "${RPS[sqlite uniform 10000]:-}" ]; then
  target "SQLite, uniform 10,000 ÷ its 10 companies" "$(r 'sqlite uniform 10000' 'sqlite uniform 10')" 0.5
  target "SQLite, uniform 10,000: 512 MiB ÷ Enclave's peak RSS" "$(ratio 512 "${RSS_MIB[sqlite uniform 10000]}")" 1
fi
for k in $FLEET_KS; do
  [ "$k" -gt 1 ] && [ -n "${RPS[fleet1 uniform $FLEET_N]:-}" ] && [ -n "${RPS[fleet$k uniform $FLEET_N]:-}" ] \
    && target "$k servers, uniform $FLEET_N ÷ ($k × one server)" \
      "$(awk -v a="${RPS[fleet$k uniform $FLEET_N]}" -v b="${RPS[fleet1 uniform $FLEET_N]}" -v k="$k" 'BEGIN{printf "%.2f", a / (k * b)}')" 0.8
done
[ -n "${RPS[stock uniform 10]:-}" ] && target "stock, 10 companies ÷ pgbench -S" "$(ratio "${RPS[stock uniform 10]}" "${CEIL_S[stock]}")" 0.5
STACK_NOTE=""
if [ -n "${RPS[stock uniform 10]:-}" ] && [ -n "${CEIL_STACK[stock]:-}" ]; then
  STACK_NOTE="The stack without Enclave ÷ pgbench -S: $(ratio "${CEIL_STACK[stock]}" "${CEIL_S[stock]}") (the most the 10-company target could reach on this machine with Enclave costing nothing); stock, 10 companies ÷ the stack without Enclave: $(ratio "${RPS[stock uniform 10]}" "${CEIL_STACK[stock]}"). The same query on held connections, without the ping sqlx's pool sends on each return: $(ratio "${CEIL_HELD[stock]}" "${CEIL_S[stock]}") of pgbench -S."
fi
if [ -n "${SIGNED_RPS[/]:-}" ]; then
  # At most 0.01 registry transactions per signed-in page: 1 − it, at least 0.99.
  target "1 − registry transactions per signed-in dashboard (≤ 0.01 is ≥ 0.99)" \
    "$(awk -v x="${SIGNED_REGISTRY[/]}" 'BEGIN{printf "%.4f", 1 - x}')" 0.99
  target "dashboard req/s × its company transactions ÷ GET /api/health req/s" \
    "$(awk -v d="${SIGNED_RPS[/]}" -v q="${SIGNED_COMPANY[/]}" -v h="${SIGNED_RPS[/api/health]}" 'BEGIN{printf "%.2f", d * q / h}')" 0.5
fi
[ -n "${PROVISION_RATIO[template copy]:-}" ] && target "bare CREATE DATABASE ÷ provisioning median (≤ 2.5 × is ≥ 0.40)" \
  "$(awk -v r="${PROVISION_RATIO[template copy]}" 'BEGIN{printf "%.2f", 1 / r}')" 0.4

{
  echo "Enclave load benchmark, $(date -u +%Y-%m-%d), $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME")."
  [ -n "$FLEET_KS" ] && echo "Fleet: fleetK = K servers, each a cluster initdb'd by the benchmark (max_connections 100, as stock; scram-sha-256 for company roles), the first ENCLAVE_TENANT_DB_URL and the others added with dbserver add; $FLEET_N companies placed across them; its ceilings are the first server's."
  echo "Clusters: stock = the machine's PostgreSQL $STOCK_VERSION (max_connections $STOCK_MAX, trust); own = initdb by the benchmark ($("$PG_BIN/postgres" --version | awk '{print $3}'), max_connections $OWN_MAX_CONNECTIONS, scram-sha-256 for company roles)."
  echo "Load: wrk -t$THREADS -c$CONCURRENCY, ${DURATION} s after ${WARMUP} s of warm-up (twice that from 1,000 companies), GET /api/health with the Host uniform or Zipf (s = $ZIPF_S) over N companies; Enclave's default settings${BUDGET:+, budget $BUDGET}${POOL:+, pool $POOL}."
  for c in stock own; do
    [ -n "${CEIL_S[$c]:-}" ] && echo "Ceilings on $c: pgbench -S -c $CONCURRENCY -j $THREADS ${CEIL_S[$c]} tps; pgbench -S -C ${CEIL_C[$c]} tps${CEIL_STACK[$c]:+; the stack without Enclave (the same HTTP loop, pool options and SELECT 1 through SeaORM, 10 pools of one connection) ${CEIL_STACK[$c]} req/s, its HTTP alone ${CEIL_HTTP[$c]} req/s, its query on 10 held connections outside a pool ${CEIL_HELD[$c]} req/s}."
  done
  echo
  echo "| cluster | traffic | N | req/s | p50 ms | p99 ms | errors | peak tenant connections / open budget | pool hit rate (best possible) | connections opened/s | Enclave peak RSS MiB | ÷ pgbench -S | ÷ pgbench -S -C | ÷ its 10 companies |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  [ "${#PG_NOTES[@]}" -gt 0 ] && { echo; printf '%s\n' "${PG_NOTES[@]}"; }
  if [ "${#SIGNED_ROWS[@]}" -gt 0 ]; then
    echo
    echo "| signed-in pages on the stock cluster | companies | req/s | p50 ms | p99 ms | errors | registry transactions per request | company transactions per request |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${SIGNED_ROWS[@]}"
  fi
  if [ "${#PROVISION_ROWS[@]}" -gt 0 ]; then
    echo
    echo "| provisioning on the stock cluster (through the API, one at a time) | companies | median ms | p90 ms | min ms | bare CREATE DATABASE, median ms | ÷ bare |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${PROVISION_ROWS[@]}"
    echo
    echo "| provisioning, mean ms per step | steps |"
    echo "|---|---|"
    printf '%s\n' "${STEP_ROWS[@]}"
  fi
  if [ "${#TARGETS[@]}" -gt 0 ]; then
    echo
    echo "| target (issues 13 and 14) | measured | wanted | |"
    echo "|---|---:|---:|---|"
    printf '%s\n' "${TARGETS[@]}"
    [ -n "$STACK_NOTE" ] && { echo; echo "$STACK_NOTE"; }
  fi
  # Assets are named by their hash: the newest of each kind is this build's.
  WASM=""
  JS=""
  if [ -n "$SITE_PKG" ]; then
    WASM=$(ls -t "$SITE_PKG"/enclave*.wasm 2>/dev/null | head -n1 || true)
    JS=$(ls -t "$SITE_PKG"/enclave*.js 2>/dev/null | head -n1 || true)
  fi
  if [ -n "$WASM" ] && [ -n "$JS" ]; then
    echo
    echo "Release WASM bundle: $(wc -c <"$WASM") bytes, $(gzip -9 -c "$WASM" | wc -c) gzipped, $( [ -f "$WASM.br" ] && wc -c <"$WASM.br" || echo '?') as served (brotli) (JS glue $(gzip -9 -c "$JS" | wc -c) gzipped)."
  fi
} | tee "$OUT"
exit $FAILED
