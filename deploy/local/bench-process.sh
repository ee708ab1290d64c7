#!/usr/bin/env bash
# Data-processing benchmark: the same users, then twice the events; prints
# events/s and peak RSS of `promo-trainer features` for both. Memory should
# stay flat (bounded by users x features and items, not by events).
# Usage: deploy/local/bench-process.sh [users] [sessions-per-week]
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-50000}
rate=${2:-2.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bin/" ./trainer/cmd/promo-trainer
double=$(python3 -c "print($rate*2)")
for r in "$rate" "$double"; do
  "$work/bin/promo-trainer" generate -store.dir "$work/reg-$r" -size medium -users "$users" -items 5000 -sessions-per-week "$r" 2>/dev/null
  echo "== $users users, $r sessions per user per week"
  "$work/bin/promo-trainer" features -store.dir "$work/reg-$r"
done
