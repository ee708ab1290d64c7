#!/usr/bin/env bash
# Soak: the real promo-server binary under mixed valid and hostile traffic
# (loopback only) for a bounded time. Prints requests, valid requests that
# failed, non-finite numbers returned (both must be 0), p99, and the
# server's goroutines and RSS at start and end; exits non-zero on a defect.
# Usage: deploy/local/soak.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
work=$(mktemp -d)
grpc=127.0.0.1:${SOAK_GRPC_PORT:-19290}
http=127.0.0.1:${SOAK_HTTP_PORT:-18280}
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/bin/" ./trainer/cmd/promo-trainer ./server/cmd/promo-server ./server/cmd/promo-load
echo "training a small shop (3,000 users, 400 items)..."
"$work/bin/promo-trainer" -store.dir "$work/reg" -generate small -once >/dev/null 2>"$work/train.log"
token=soak-admin-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
(umask 077; echo "$token admin soak" > "$work/tokens")
"$work/bin/promo-server" -store.dir "$work/reg" -grpc.addr "$grpc" -http.addr "$http" -auth.tokens-file "$work/tokens" \
  -auth.public serving,read -log.format text 2>"$work/server.log" &
srv=$!
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://$http/readyz" >/dev/null || { echo "server not ready"; cat "$work/server.log"; exit 1; }
"$work/bin/promo-load" -grpc "$grpc" -http "$http" -c 16 -users 3000 -items 400 -soak "${secs}s"
