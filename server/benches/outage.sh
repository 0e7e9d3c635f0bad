#!/usr/bin/env bash
# The registry stopped under load: `make bench-outage`.
#
# The registry on a PostgreSQL cluster of the benchmark's own ($DIR, port
# $REGISTRY_PORT), N companies on the machine's PostgreSQL, each company's
# admin signed in. After a warm-up, the registry's cluster is stopped (as a
# crash would: immediate) and wrk asks for the signed-in dashboards of the N
# companies for OUTAGE_SECS; every answer must be 200. Then the cluster
# starts again, one company is paused through the registry (as another
# instance would), and the time until this instance stops serving it is
# measured: it must be within PROBE + the directory's cache time.
#
# Prints one Markdown table; exits non-zero if a request failed or the
# pause took longer than allowed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=server/benches/sign_in.sh
. "$HERE/sign_in.sh"
BIN=${BIN:?set BIN to the server binary}
N=${N:-10}
OUTAGE_SECS=${OUTAGE_SECS:-600}
WARMUP=${WARMUP:-5}
CONCURRENCY=${CONCURRENCY:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-3230}
REGISTRY_PORT=${REGISTRY_PORT:-5496}
CACHE_SECS=${CACHE_SECS:-5}
DIR=${DIR:-/var/tmp/enclave-bench-outage}
WORK=${WORK:-$HOME/.cache/enclave/bench-outage}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
STOCK=${PG:-postgres://postgres@127.0.0.1:5432}
REGISTRY=postgres://postgres@127.0.0.1:$REGISTRY_PORT/enclave_outage?sslmode=disable
# A benchmark key for a benchmark database: never use it for real data.
KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ORIGIN="http://127.0.0.1:$PORT"
SERVER_PID=

die() { echo "outage.sh: $*" >&2; exit 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl() { as_postgres "$PG_BIN/pg_ctl" -D "$DIR" "$@" >/dev/null; }
for tool in wrk psql curl; do command -v $tool >/dev/null || die "$tool is missing (make setup-system)"; done

ENV=(ENCLAVE_DATA_DIR="$WORK/data" ENCLAVE_SECRET_KEY=$KEY ENCLAVE_REGISTRY_URL="$REGISTRY"
  ENCLAVE_TENANT_DB_URL="$STOCK/postgres?sslmode=disable" ENCLAVE_TENANT_CACHE_SECS=$CACHE_SECS
  ENCLAVE_LISTEN=127.0.0.1:$PORT ENCLAVE_BASE_DOMAIN=localhost RUST_LOG=${RUST_LOG:-info})

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # The companies go with the run: their databases are on the machine's
    # server, which outlives it.
    pg_ctl -o "-p $REGISTRY_PORT -k /tmp -c listen_addresses=127.0.0.1" -l "$DIR/server.log" -w start 2>/dev/null || true
    for i in $(seq 1 "$N"); do
      curl -s -o /dev/null -X DELETE -H "Host: localhost:$PORT" -H "Authorization: Bearer ${TOKEN:-}" \
        "$ORIGIN/api/admin/tenants/$(printf 't%05d' "$i")" || true
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  pg_ctl -m fast -w stop 2>/dev/null || true
}
trap cleanup EXIT

# A fresh registry cluster and data directory each run.
rm -rf "$DIR" "$WORK"
mkdir -p "$DIR" "$WORK"
if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
as_postgres "$PG_BIN/initdb" -D "$DIR" -U postgres --auth-local=trust --auth-host=trust >/dev/null
pg_ctl -o "-p $REGISTRY_PORT -k /tmp -c listen_addresses=127.0.0.1" -l "$DIR/server.log" -w start
psql "postgres://postgres@127.0.0.1:$REGISTRY_PORT/postgres" -qc "create database enclave_outage"

env "${ENV[@]}" "$BIN" serve >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -fs -o /dev/null -H "Host: localhost:$PORT" "$ORIGIN/healthz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited; see $WORK/server.log"
  sleep 0.2
done
TOKEN=$(env "${ENV[@]}" RUST_LOG=warn "$BIN" superadmin token create --label outage 2>/dev/null)

# N companies (t00001 …, the hosts rotate.lua asks for), each admin signed
# in; line k of the cookie file is company k's session.
cookies="$WORK/cookies"
for i in $(seq 1 "$N"); do
  sub=$(printf 't%05d' "$i")
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Host: localhost:$PORT" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Outage $i\",\"subdomain\":\"$sub\",\"admin_email\":\"admin@$sub.example\",\"admin_password\":\"bench-password\"}" \
    "$ORIGIN/api/admin/tenants")
  [ "$code" = 201 ] || die "creating $sub answered $code"
done
sign_in_admins "$N" "$cookies" || die "signing in failed"

dashboards() { # seconds
  BENCH_N=$N BENCH_PATH=/ BENCH_COOKIES=$cookies BENCH_DOMAIN="localhost:$PORT" \
    wrk -t"$THREADS" -c"$CONCURRENCY" -d"${1}s" --timeout 10s -s "$HERE/rotate.lua" "$ORIGIN" | grep '^RESULT'
}

dashboards "$WARMUP" >/dev/null
before=$(dashboards "$WARMUP")
pg_ctl -m immediate -w stop
during=$(dashboards "$OUTAGE_SECS")
health=$(curl -s -H "Host: localhost:$PORT" "$ORIGIN/healthz")
stale=$(curl -s -H "Host: localhost:$PORT" "$ORIGIN/metrics" | awk '$1 == "enclave_directory_stale_answers_total" {print $2}')

pg_ctl -o "-p $REGISTRY_PORT -k /tmp -c listen_addresses=127.0.0.1" -l "$DIR/server.log" -w start
back=$(date +%s%N)
psql "$REGISTRY" -qc "update tenants set status = 'paused' where subdomain = 't00001'"
paused_after=""
for _ in $(seq 1 400); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: t00001.localhost:$PORT" "$ORIGIN/api/health")
  if [ "$code" = 503 ]; then
    paused_after=$(awk -v a="$back" -v b="$(date +%s%N)" 'BEGIN{printf "%.2f", (b - a) / 1e9}')
    break
  fi
  sleep 0.05
done
psql "$REGISTRY" -qc "update tenants set status = 'active' where subdomain = 't00001'"

row() { # label RESULT-line
  local requests duration_us non2xx socket p50_us p99_us
  eval "$(echo "${2#RESULT }" | tr ' ' '\n')"
  echo "| $1 | $requests | $(awk -v r="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", r / (d / 1e6)}') | $((non2xx + socket)) | $(awk -v u="$p99_us" 'BEGIN{printf "%.2f", u / 1000}') |"
}
failed_during=$(echo "${during#RESULT }" | tr ' ' '\n' | awk -F= '$1 == "non2xx" || $1 == "socket" {s += $2} END {print s + 0}')
allowed=$((2 + CACHE_SECS))
{
  echo "Registry outage, $(date -u +%Y-%m-%d), $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'): $N companies' signed-in dashboards (GET /, each its admin's session), wrk -t$THREADS -c$CONCURRENCY; the registry on a cluster of its own, stopped (immediate) for ${OUTAGE_SECS} s."
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM."
  echo
  echo "| dashboards | requests | req/s | not 200 | p99 ms |"
  echo "|---|---:|---:|---:|---:|"
  row "registry up (${WARMUP} s)" "$before"
  row "registry stopped (${OUTAGE_SECS} s)" "$during"
  echo
  echo "Answers from memory while it was down: ${stale:-?}. /healthz while down: $health"
  echo "Registry back: a company paused through it stopped being served after ${paused_after:-more than 20} s (allowed: 2 s + the cache time, $allowed s)."
} | tee "$WORK/results.md"
[ "$failed_during" -eq 0 ] || die "$failed_during requests were not answered 200 while the registry was down"
[ -n "$paused_after" ] && awk -v p="$paused_after" -v a="$allowed" 'BEGIN{exit !(p <= a)}' \
  || die "the pause took longer than $allowed s to reach this instance"
