#!/bin/bash
# One benchmark session: hexdash and the peer stack under the same load,
# run back to back, each run's JSON report saved under $OUT. The figures in
# docs/BENCHMARKS.md come from this script; summarise with
#   python3 loadtest/scripts/summarize.py $OUT
#
# Needs, already running: hexdash (HTTP on $HTTP, MQTT on $HEXDASH_MQTT,
# started as in README "Load testing"), Mosquitto on $PEER_MQTT, Redis on
# $REDIS, for `postgis` PostgreSQL with PostGIS at $POSTGIS (its database
# created: createdb -h 127.0.0.1 -U postgres loadtest_postgis); the loopback
# ceiling tool built from ../shared/peers/limit in $LIMIT (a writable copy:
# cp -r ../shared/peers/limit /tmp/limit && cd /tmp/limit && cargo build
# --release). Run from the workspace root.
#
# RESTART_HEXDASH, if set, is a command run before every hexdash run (e.g. a
# script that stops the previous hexdash and starts a fresh one), so no run
# inherits the state or backlog of the one before.
#
# Usage: loadtest/scripts/session.sh [OUT] [ONLY...]
#   ONLY: any of limit ingest batched nearby postgis track deliveries conns orders ws
#   (postgis, not in the default list: the nearby pair against the PostGIS peer)
set -u
OUT=${1:-/tmp/lt/session}
shift || true
ONLY=${*:-limit ingest batched nearby track deliveries conns orders ws}
HTTP=${HTTP:-http://127.0.0.1:8088}
HEXDASH_MQTT=${HEXDASH_MQTT:-127.0.0.1:1884}
PEER_MQTT=${PEER_MQTT:-127.0.0.1:1883}
REDIS=${REDIS:-redis://127.0.0.1:6379/}
POSTGIS=${POSTGIS:-postgres://postgres@127.0.0.1:5432/loadtest_postgis}
LIMIT=${LIMIT:-/tmp/limit}
ACCOUNTS=${ACCOUNTS:-/tmp/lt/accounts.json}
DUR=${DUR:-10}
export HEXDASH_ADMIN_PASSWORD=${HEXDASH_ADMIN_PASSWORD:-adminpassword1}
LT=target/release/loadtest
QUIET=../shared/peers/wait_quiet.sh
mkdir -p "$OUT"

want() { [[ " $ONLY " == *" $1 "* ]]; }

# run NAME ARGS...: wait for a quiet machine, run, keep the JSON report.
run() {
  local name=$1; shift
  $QUIET 120 > /dev/null
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  echo "== $name (load before: $load)" >&2
  $LT "$@" --duration-s "$DUR" --json --quiet > "$OUT/$name.json" 2> "$OUT/$name.err"
  echo "   exit $? -> $OUT/$name.json" >&2
}
hex() {
  if [ -n "${RESTART_HEXDASH:-}" ]; then
    $RESTART_HEXDASH > /dev/null 2>&1
    for _ in $(seq 50); do curl -sf "$HTTP/readyz" > /dev/null && break; sleep 0.2; done
  fi
  run "$1" "${@:2}" --target hexdash --http-url "$HTTP" --mqtt-addr "$HEXDASH_MQTT" --accounts-file "$ACCOUNTS"; }
peer() { run "$1" "${@:2}" --target peer-bridge --mqtt-addr "$PEER_MQTT" --redis-url "$REDIS"; }
pgis() { run "$1" "${@:2}" --target peer-postgis --mqtt-addr "$PEER_MQTT" --postgis-url "$POSTGIS"; }

if want limit; then
  # The raw loopback-TCP ceiling: 10,000 connections, one 56-byte ping per write.
  $QUIET 120 > /dev/null
  (cd "$LIMIT" && mkdir -p logs && REPS=1 GATE_WAIT=120 python3 run.py "$OUT/limit.jsonl" \
      '[["free2x2",10000,1,"hand","bufread",1],["free2x2",10000,16,"hand","bufread",0]]') > /dev/null
  echo "== limit -> $OUT/limit.jsonl" >&2
fi

if want ingest; then
  for hz in 5 7 10 15 20; do
    hex  "ingest_hexdash_10k_${hz}hz" ingest --drivers 10000 --ping-hz $hz
    peer "ingest_peer_10k_${hz}hz"    ingest --drivers 10000 --ping-hz $hz
  done
fi

if want batched; then
  hex  ingest_hexdash_10k_100hz_b16 ingest --drivers 10000 --ping-hz 100 --batch 16
  peer ingest_peer_10k_100hz_b16    ingest --drivers 10000 --ping-hz 100 --batch 16
fi

if want nearby; then
  for conns in 1 32; do
    hex  "nearby_hexdash_100k_c$conns" nearby --preload 100000 --drivers 1000 --ping-hz 1 --nearby-conns $conns
    peer "nearby_peer_100k_c$conns"    nearby --preload 100000 --drivers 1000 --ping-hz 1 --nearby-conns $conns
  done
fi

if want postgis; then
  for conns in 1 32; do
    hex  "nearby_hexdash_pgsession_100k_c$conns" nearby --preload 100000 --drivers 1000 --ping-hz 1 --nearby-conns $conns
    pgis "nearby_postgis_100k_c$conns"           nearby --preload 100000 --drivers 1000 --ping-hz 1 --nearby-conns $conns
  done
fi

if want track; then
  hex track_hexdash_10k_10hz_w1000 track --drivers 10000 --ping-hz 10 --watchers 1000 --watch-box-m 1000
fi

if want deliveries; then
  # Customers watching their own courier (the design's ping-to-screen
  # target): 2,000 of the 10,000 drivers carry an order.
  for hz in 2 5 10; do
    hex "track_deliveries_10k_${hz}hz_c2000" track --drivers 10000 --ping-hz $hz --deliveries 2000
  done
fi

if want conns; then
  # Connection scale within this machine's 20,000 open-file hard limit.
  hex conns_hexdash_10k_drivers_9k_watchers track --drivers 10000 --ping-hz 0.2 --watchers 9000 --watch-box-m 500
fi

if want orders; then
  for rate in 100 500; do
    hex "orders_hexdash_${rate}" orders --order-rate $rate --restaurants 50 --customers 500 --order-conns 256
  done
fi

if want ws; then
  hex ingest_hexdash_ws_10k_10hz ingest --transport ws --drivers 10000 --ping-hz 10
fi
