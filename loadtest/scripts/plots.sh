#!/bin/bash
# The charts of docs/BENCHMARKS.md (docs/img/*.png) from the 2026-11-21
# reports: which runs each chart compares, and their legends. Left out: the
# batched 1 M pings/s runs (they would stretch the ingest axis fivefold),
# WebSocket ingest (generator-bound), orders_hexdash_* (measured before the
# generator's open-loop clock was fixed, see BENCHMARKS.md) and the
# connection-scale run (9,000 watchers at 2,000 pings/s: no load sweep).
# Run from the workspace root.
#
# Usage: loadtest/scripts/plots.sh [OUT]
set -eu
OUT=${1:-docs/img}
R=loadtest/results/2026-11-21
cargo run --release -p loadtest --bin plot -- --out "$OUT" \
  --legend 'ingest_hexdash=hexdash before the ingest fix, first runs' \
  --legend 'ingest_hexdash_before=hexdash before the ingest fix, later runs' \
  --legend 'ingest_hexdash_after=hexdash after the ingest fix, later runs' \
  --legend 'ingest_peer=peer (Mosquitto + bridge), first runs' \
  --legend 'ingest_peer_now=peer (Mosquitto + bridge), later runs' \
  --legend 'orders_sqlite=SQLite' \
  --legend 'orders_postgres=PostgreSQL' \
  --legend 'track_hexdash=hexdash before the ingest fix' \
  --legend 'track_hexdash_after=hexdash after the ingest fix' \
  --legend 'track_hexdash_batched_push=hexdash after the ingest fix, batched push' \
  $R/ingest_{hexdash,peer}_10k_{5,7,10,15}hz.json \
  $R/ingest_hexdash_{before,after}_10k_*.json \
  $R/ingest_peer_now_10k_*.json \
  $R/orders_{sqlite,postgres}_*.json \
  $R/track_hexdash_*.json
