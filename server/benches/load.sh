#!/usr/bin/env bash
# Enclave's load benchmark: `make bench` runs it on a release build,
# `make bench-smoke` (part of `make test`) runs a tiny version of it.
#
# In one run, on this machine and its PostgreSQL:
#   1. pgbench -S (select-only) at the same concurrency: the reference;
#   2. for each N in PG_NS, N companies on PostgreSQL, and for each N in
#      SQLITE_NS, N companies on SQLite: wrk sends GET /api/health (one
#      query on the company's own database) with the Host picked uniformly
#      at random among the N, while pg_stat_activity (PostgreSQL) or
#      /metrics (SQLite) is sampled for the connections open to tenant
#      databases;
#   3. provisioning on PostgreSQL, one company at a time, copied from the
#      tenant template and (ENCLAVE_TENANT_TEMPLATE=false) migrated from
#      empty.
# and prints one Markdown table. It exits non-zero if any request failed or
# the tenant connections ever exceeded the budget.
#
# Companies are created through the platform API and kept in $WORK between
# runs (BENCH_FRESH=1 starts over); only the missing ones are created.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:?set BIN to the server binary}
PG_NS=${PG_NS-10 100 1000}
SQLITE_NS=${SQLITE_NS-10 10000}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
CONCURRENCY=${CONCURRENCY:-32}
THREADS=${THREADS:-2}
BUDGET=${BUDGET:-64}
POOL=${POOL:-1}
PROVISION_COUNT=${PROVISION_COUNT:-20}
SETUP_PARALLEL=${SETUP_PARALLEL:-4}
PORT=${PORT:-3200}
WORK=${WORK:-$HOME/.cache/enclave/bench}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REGISTRY_DB=${REGISTRY_DB:-enclave_bench}
PGBENCH_DB=${PGBENCH_DB:-enclave_pgbench}
SITE_PKG=${SITE_PKG:-}
OUT=${OUT:-$WORK/results.md}

# Fixed so that the registry's encrypted URLs stay readable between runs.
# A benchmark key for a benchmark database: never use it for real data.
KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ORIGIN="http://127.0.0.1:$PORT"
SERVER_PID=
SAMPLER_PID=

pg() { psql "$PG/${1}?sslmode=disable" -v ON_ERROR_STOP=1 -Atq "${@:2}"; }
die() { echo "load.sh: $*" >&2; exit 1; }
for tool in wrk pgbench psql curl; do command -v $tool >/dev/null || die "$tool is missing (make setup-system)"; done
[ -x "$BIN" ] || die "no server binary at $BIN"

cleanup() {
  [ -n "$SAMPLER_PID" ] && { pkill -P "$SAMPLER_PID"; kill "$SAMPLER_PID"; } 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT

# Drops the companies a previous run left: their databases and roles (names
# read from the registry and checked to be tenant_<hex>), then the registry.
fresh() {
  if [ -n "$(pg postgres -c "select 1 from pg_database where datname = '$REGISTRY_DB'")" ]; then
    for db in $(pg "$REGISTRY_DB" -c "select db_name from tenants" 2>/dev/null || true); do
      [[ $db =~ ^tenant_[0-9a-f]{32}$ ]] || continue
      pg postgres -c "drop database if exists \"$db\" with (force)" -c "drop role if exists \"$db\""
    done
    pg postgres -c "drop database $REGISTRY_DB with (force)"
  fi
  rm -rf "$WORK/sqlite" "$WORK"/token-* "$WORK"/companies-*
}

mkdir -p "$WORK"
[ "${BENCH_FRESH:-0}" = 1 ] && fresh
[ -n "$(pg postgres -c "select 1 from pg_database where datname = '$REGISTRY_DB'")" ] \
  || pg postgres -c "create database $REGISTRY_DB"

# start_server sqlite|postgres [extra env...]
start_server() {
  local backend=$1; shift
  local env=(ENCLAVE_LISTEN=127.0.0.1:$PORT ENCLAVE_BASE_DOMAIN=localhost
    ENCLAVE_DATA_DIR="$WORK/sqlite" ENCLAVE_SECRET_KEY=$KEY
    ENCLAVE_CONNECTION_BUDGET=$BUDGET ENCLAVE_TENANT_POOL_SIZE=$POOL
    ENCLAVE_LOG_FORMAT=human RUST_LOG=${RUST_LOG:-info})
  if [ "$backend" = postgres ]; then
    env+=(ENCLAVE_REGISTRY_URL="$PG/$REGISTRY_DB?sslmode=disable"
      ENCLAVE_TENANT_DB_URL="$PG/postgres?sslmode=disable")
  fi
  env "${env[@]}" "$@" "$BIN" serve >>"$WORK/server-$backend.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null -H "Host: localhost:$PORT" "$ORIGIN/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited; see $WORK/server-$backend.log"
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
  local env=(ENCLAVE_DATA_DIR="$WORK/sqlite" ENCLAVE_SECRET_KEY=$KEY RUST_LOG=warn)
  [ "$backend" = postgres ] && env+=(ENCLAVE_REGISTRY_URL="$PG/$REGISTRY_DB?sslmode=disable"
    ENCLAVE_TENANT_DB_URL="$PG/postgres?sslmode=disable")
  env "${env[@]}" "$BIN" "$@"
}

# A platform API token for this backend's registry (made once, kept).
token() {
  local backend=$1 file="$WORK/token-$1"
  if [ ! -s "$file" ]; then
    run_cli "$backend" superadmin token create --label bench 2>/dev/null >"$file"
  fi
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
  local backend=$1 n=$2 have=0 file="$WORK/companies-$1"
  [ -s "$file" ] && have=$(cat "$file")
  [ "$have" -ge "$n" ] && return 0
  local tok started
  tok=$(token "$backend")
  started=$(date +%s)
  echo "creating companies $((have + 1))…$n on $backend ($SETUP_PARALLEL at a time)" >&2
  seq "$((have + 1))" "$n" | xargs -P "$SETUP_PARALLEL" -I{} bash -c '
    out=$(create_company "$0" "$(printf "t%05d" {})")
    case ${out%% *} in 201|409) ;; *) echo "creating t{} answered $out" >&2; exit 1 ;; esac' "$tok" \
    || die "creating companies failed"
  echo "$n" >"$file"
  echo "  took $(( $(date +%s) - started )) s" >&2
}

# Samples the connections open to tenant databases into $WORK/samples.
start_sampler() {
  local backend=$1
  : >"$WORK/samples"
  if [ "$backend" = postgres ]; then
    # One psql session, fed a query every 50 ms.
    ( (while sleep 0.05; do
      echo "select count(*) from pg_stat_activity where datname like 'tenant\\_%';"
    done) | pg postgres >"$WORK/samples" ) 2>/dev/null &
  else
    (while sleep 0.05; do
      curl -fs -H "Host: localhost:$PORT" "$ORIGIN/metrics" \
        | awk '/^enclave_tenant_connections_open /{print $2}'
    done >"$WORK/samples") 2>/dev/null &
  fi
  SAMPLER_PID=$!
}

# Stops the sampler (and what it started); prints the peak sample.
stop_sampler() {
  pkill -P "$SAMPLER_PID" 2>/dev/null || true
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
  sort -n "$WORK/samples" | tail -n1
}

ROWS=()
FAILED=0

# load backend N: one table row.
load() {
  local backend=$1 n=$2
  BENCH_N=$n BENCH_DOMAIN="localhost:$PORT" wrk -t"$THREADS" -c"$CONCURRENCY" -d"${WARMUP}s" \
    -s "$HERE/rotate.lua" "$ORIGIN" >/dev/null
  start_sampler "$backend"
  local out
  out=$(BENCH_N=$n BENCH_DOMAIN="localhost:$PORT" wrk -t"$THREADS" -c"$CONCURRENCY" \
    -d"${DURATION}s" --timeout 10s -s "$HERE/rotate.lua" "$ORIGIN" | grep '^RESULT')
  local peak
  peak=$(stop_sampler)
  local requests duration_us non2xx socket p50_us p99_us
  eval "$(echo "${out#RESULT }" | tr ' ' '\n')"
  local rps errors ratio
  rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  errors=$((non2xx + socket))
  ratio=$(awk -v a="$rps" -v b="$PGBENCH_TPS" 'BEGIN{printf "%.2f", (b > 0) ? a / b : 0}')
  ROWS+=("| $backend | $n | $rps | $(ms "$p50_us") | $(ms "$p99_us") | $errors | ${peak:-0} / $BUDGET | $ratio |")
  echo "${ROWS[-1]}" >&2
  [ "$errors" -eq 0 ] || { echo "  $errors requests failed" >&2; FAILED=1; }
  [ "${peak:-0}" -le "$BUDGET" ] || { echo "  tenant connections exceeded the budget" >&2; FAILED=1; }
}

ms() { awk -v us="$1" 'BEGIN{printf "%.2f", us / 1000}'; }

# provision label count [env...]: median and p90 creation time, one at a time.
PROVISION_ROWS=()
provision() {
  local label=$1 count=$2; shift 2
  start_server postgres "$@"
  local tok times=() stamp
  tok=$(token postgres)
  stamp=$(date +%s%N | tail -c 7)
  # One creation first, not counted: one-time work such as building the
  # template after a change of migrations.
  for i in $(seq 0 "$count"); do
    local sub out
    sub=$(printf "p%s%03d" "$stamp" "$i")
    out=$(create_company "$tok" "$sub")
    [ "${out%% *}" = 201 ] || die "provisioning $sub answered $out"
    [ "$i" -gt 0 ] && times+=("${out#* }")
    curl -fs -o /dev/null -X DELETE -H "Host: localhost:$PORT" \
      -H "Authorization: Bearer $tok" "$ORIGIN/api/admin/tenants/$sub"
  done
  stop_server
  PROVISION_ROWS+=("| $label | $count | $(printf '%s\n' "${times[@]}" | sort -n | awk '
    {t[NR] = $1 * 1000} END {printf "%.0f | %.0f | %.0f", t[int((NR + 1) / 2)], t[int(NR * 0.9 + 0.5)], t[1]}') |")
  echo "${PROVISION_ROWS[-1]}" >&2
}

# 1. The reference: pgbench select-only on the same server.
if [ -z "$(pg postgres -c "select 1 from pg_database where datname = '$PGBENCH_DB'")" ]; then
  pg postgres -c "create database $PGBENCH_DB"
  pgbench -i -q -s 10 "$PG/$PGBENCH_DB?sslmode=disable" >/dev/null 2>&1
fi
PGBENCH_TPS=$(pgbench -S -n -c "$CONCURRENCY" -j "$THREADS" -T "$DURATION" \
  "$PG/$PGBENCH_DB?sslmode=disable" 2>/dev/null | awk '/^tps = /{printf "%.0f", $3}')
echo "pgbench -S -c $CONCURRENCY: $PGBENCH_TPS tps" >&2

# 2. Load, PostgreSQL then SQLite.
for backend in postgres sqlite; do
  ns=$PG_NS; [ "$backend" = sqlite ] && ns=$SQLITE_NS
  [ -n "$ns" ] || continue
  start_server "$backend"
  for n in $ns; do
    ensure_companies "$backend" "$n"
    load "$backend" "$n"
  done
  stop_server
done

# 3. Provisioning on PostgreSQL, with and without the template.
if [ "$PROVISION_COUNT" -gt 0 ]; then
  provision "template copy" "$PROVISION_COUNT"
  provision "migrated from empty" "$PROVISION_COUNT" ENCLAVE_TENANT_TEMPLATE=false
fi

{
  echo "Enclave load benchmark, $(date -u +%Y-%m-%d), $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), PostgreSQL $(pg postgres -c 'show server_version' | cut -d' ' -f1) (max_connections $(pg postgres -c 'show max_connections'))."
  echo "Load: wrk -t$THREADS -c$CONCURRENCY, ${DURATION} s after ${WARMUP} s of warm-up, GET /api/health with the Host uniform over N companies; budget $BUDGET tenant connections, $POOL per company pool."
  echo "Reference: pgbench -S -c $CONCURRENCY -j $THREADS on the same server: $PGBENCH_TPS tps."
  echo
  echo "| backend | N | req/s | p50 ms | p99 ms | errors | peak tenant connections / budget | ratio to pgbench |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  if [ "${#PROVISION_ROWS[@]}" -gt 0 ]; then
    echo
    echo "| provisioning on PostgreSQL (through the API, one at a time) | companies | median ms | p90 ms | min ms |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${PROVISION_ROWS[@]}"
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
