# Sourced by the benchmark scripts (load.sh, outage.sh).
#
# sign_in_admins N FILE: signs in the admin of companies t00001 … tN
# (admin@<sub>.example, bench-password) at $ORIGIN, port $PORT, and writes
# their session cookies to FILE, company k's on line k (what rotate.lua's
# BENCH_COOKIES reads). Fails unless every one signed in.
sign_in_admins() {
  local n=$1 file=$2 i sub
  : >"$file"
  for i in $(seq 1 "$n"); do
    sub=$(printf 't%05d' "$i")
    curl -s -o /dev/null -D - -H "Host: $sub.localhost:$PORT" -H 'Accept: application/json' \
      --data-urlencode "email=admin@$sub.example" --data-urlencode "password=bench-password" \
      "$ORIGIN/api/login" | tr -d '\r' \
      | awk 'tolower($1) == "set-cookie:" && $2 ~ /^enclave_session=/ {sub(/;.*/, "", $2); print $2}' >>"$file"
  done
  [ "$(wc -l <"$file")" -eq "$n" ] || { echo "signing in to $n companies gave $(wc -l <"$file") sessions" >&2; return 1; }
}
