#!/bin/bash
# One node's ingest without Redis and with Redis sharing its positions by
# region (issue 14), back to back in one session, and Redis's CPU per
# 1,000 pings. A Redis of its own on a free port (so its CPU counts this
# node only), hexdash through loadtest/scripts/hexdash.sh (only its own
# pid is stopped).
#
#   LT_DIR=/tmp/ltr loadtest/scripts/redis_positions.sh OUT_DIR [RUNS]
#
# Needs target/release/{hexdash,loadtest}. Each run: 10,000 drivers over
# MQTT, 16 pings per packet at 100 Hz each (1,000,000 pings/s offered),
# DUR seconds (default 15).
set -u
OUT=${1:-/tmp/ltr/out}
RUNS=${2:-2}
LT_DIR=${LT_DIR:-/tmp/ltr}
DUR=${DUR:-15}
REDIS_PORT=${REDIS_PORT:-6391}
export LT_DIR HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8097} MQTT_ADDR=${MQTT_ADDR:-127.0.0.1:1897}
export HEXDASH_ADMIN_PASSWORD=${HEXDASH_ADMIN_PASSWORD:-adminpassword1}
LT=target/release/loadtest
mkdir -p "$OUT" "$LT_DIR"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$LT_DIR/redis.log" 2>&1 &
REDIS_PID=$!
trap 'loadtest/scripts/hexdash.sh stop; kill $REDIS_PID 2>/dev/null' EXIT
sleep 0.5

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

loadtest/scripts/hexdash.sh start || exit 1
[ -f "$LT_DIR/accounts.json" ] || $LT accounts --drivers 10000 --http-url "http://$HTTP_ADDR" \
  --accounts-file "$LT_DIR/accounts.json" > /dev/null

for run in $(seq "$RUNS"); do
  for mode in without with; do
    if [ "$mode" = with ]; then
      export HEXDASH_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    else
      unset HEXDASH_REDIS_URL
    fi
    loadtest/scripts/hexdash.sh restart > /dev/null || exit 1
    pid=$(cat "$LT_DIR/hexdash.pid")
    before=$(cpu_ticks $REDIS_PID)
    $LT ingest --drivers 10000 --ping-hz 100 --batch 16 --duration-s "$DUR" \
      --target hexdash --http-url "http://$HTTP_ADDR" --mqtt-addr "$MQTT_ADDR" \
      --accounts-file "$LT_DIR/accounts.json" --server-pid "$pid" --json --quiet \
      > "$OUT/${mode}_$run.json" 2> "$OUT/${mode}_$run.err"
    after=$(cpu_ticks $REDIS_PID)
    metrics=$(curl -sf "http://$HTTP_ADDR/metrics" | grep -E '^hexdash_(pings_total\{path="mqtt",outcome="applied"|cluster_positions_(published|dropped)|cluster_position_batches)' | tr '\n' ' ')
    echo "$mode run $run: redis_cpu_s=$(( after - before ))/100 $metrics" | tee -a "$OUT/summary.txt"
  done
done
