#!/usr/bin/env bash
# Serving benchmark: trains a shop, starts the real promo-server binary, and
# measures it with promo-load (a Go client using the generated gRPC stubs):
# QPS and p50/p99 per RPC as ratios to the same server's Health/Check, then
# 20 promotions/rollbacks under load, then a 20% canary and a shadow of the
# same candidate (share answered, stickiness, Score's p99 without and with the
# shadow, and no failed call while the canary is promoted and the shadow cleared).
# Usage: deploy/local/bench-load.sh [seconds-per-rpc] [items]
# Without items: an ml-100k-size shop (943 users, 1,682 items). With items:
# the medium shop (50,000 users) with that many items, trained without the
# uplift model (generating and training 100,000 items takes minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
items=${2:-}
work=$(mktemp -d)
grpc=127.0.0.1:${BENCH_GRPC_PORT:-19190}
http=127.0.0.1:${BENCH_HTTP_PORT:-18180}
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/bin/" ./trainer/cmd/promo-trainer ./server/cmd/promo-server ./server/cmd/promo-load ./registry/cmd/promoctl
if [ -z "$items" ]; then
  users=943 items=1682
  echo "training an ml-100k-size shop ($users users, $items items)..."
  "$work/bin/promo-trainer" -store.dir "$work/reg" -generate ml100k -once >/dev/null 2>"$work/train.log"
else
  users=50000
  echo "generating and training a shop with $users users and $items items..."
  "$work/bin/promo-trainer" generate -store.dir "$work/reg" -size medium -items "$items" 2>"$work/train.log"
  "$work/bin/promo-trainer" -store.dir "$work/reg" -once -models propensity,recommender,profiles >/dev/null 2>>"$work/train.log"
fi
# A second propensity version to promote and roll back under load.
"$work/bin/promo-trainer" -store.dir "$work/reg" -once -models propensity -tolerance 1 >/dev/null 2>>"$work/train.log"
token=bench-admin-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
echo "$token admin bench" > "$work/tokens"
"$work/bin/promo-server" -store.dir "$work/reg" -grpc.addr "$grpc" -http.addr "$http" -auth.tokens-file "$work/tokens" \
  -auth.public serving,read -models.check-interval 1s -log.format text ${BENCH_SERVER_FLAGS:-} 2>"$work/server.log" &
srv=$!
for _ in $(seq 300); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://$http/readyz" >/dev/null || { echo "server not ready"; cat "$work/server.log"; exit 1; }
grep 'model swapped' "$work/server.log" | sed -E 's/.*model=([a-z]+).* bytes=([0-9]+) load_seconds=([0-9.]+).*/model \1: \2 bytes, loaded in \3 s/'
echo "server RSS: $(awk '/VmRSS/{print $2, $3}' /proc/$srv/status)"
"$work/bin/promo-load" -grpc "$grpc" -http "$http" -c 16 -d "${secs}s" -users "$users" -items "$items"
prod=$("$work/bin/promoctl" -store.dir "$work/reg" -json versions propensity | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["aliases"]["production"])')
cand=$("$work/bin/promoctl" -store.dir "$work/reg" -json versions propensity | python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["aliases"]["production"]; print([v["version"] for v in d["versions"] if v["version"]!=p][0])')
"$work/bin/promo-load" -grpc "$grpc" -token "$token" -users "$users" -swap.model propensity -swap.candidate "$cand" -swap.changes 20 -swap.timeout 2s
# Canary and shadow under load: the candidate as a 20% canary and, in
# alternating rounds, as a shadow of the same model; then promoted and the
# shadow cleared while Score runs.
"$work/bin/promo-load" -grpc "$grpc" -token "$token" -c 16 -users "$users" -swap.model propensity -swap.candidate "$cand" -trials
