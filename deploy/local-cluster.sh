#!/usr/bin/env bash
# Three hexdash nodes on this machine over the local PostgreSQL and Redis
# (a Procfile in a script: images cannot be pulled here). Each node logs
# to its own file under $RUN_DIR; Ctrl-C (or SIGTERM) stops all three.
#
#   deploy/local-cluster.sh                      # target/debug/hexdash
#   HEXDASH_BIN=target/release/hexdash deploy/local-cluster.sh
#
# Settings (environment, with defaults):
#   HEXDASH_BIN        target/debug/hexdash
#   DATABASE_URL       postgres://postgres@127.0.0.1:5432/hexdash_cluster
#                      (created when missing, with createdb if installed)
#   REDIS_URL          redis://127.0.0.1:6379
#   KEY_PREFIX         hexdash-local:   (the nodes' Redis keys)
#   BASE_HTTP_PORT     8181             (nodes on 8181, 8182, 8183)
#   BASE_MQTT_PORT     18831            (nodes' brokers on 18831-18833; 1883 is Mosquitto's)
#   RUN_DIR            ./data/cluster
#
# Three identical nodes with every role, each with its own embedded MQTT
# broker (drivers may connect to any): one node at a time dispatches each
# region and runs the relay (leases in Redis, fencing tokens in
# PostgreSQL); positions travel between them by region through Redis
# (ARCHITECTURE.md, "Scale-out").
set -euo pipefail

BIN=${HEXDASH_BIN:-target/debug/hexdash}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hexdash_cluster}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
KEY_PREFIX=${KEY_PREFIX:-hexdash-local:}
BASE_HTTP_PORT=${BASE_HTTP_PORT:-8181}
BASE_MQTT_PORT=${BASE_MQTT_PORT:-18831}
RUN_DIR=${RUN_DIR:-./data/cluster}

[ -x "$BIN" ] || { echo "no hexdash binary at $BIN (cargo build first, or set HEXDASH_BIN)" >&2; exit 1; }
mkdir -p "$RUN_DIR"

# The database: create it when missing (the nodes run the migrations).
db_name=${DATABASE_URL##*/}
db_name=${db_name%%\?*}
if command -v psql >/dev/null; then
    base=${DATABASE_URL%/*}/postgres
    if ! psql "$base" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1; then
        psql "$base" -qc "CREATE DATABASE \"$db_name\"" && echo "created database $db_name"
    fi
fi
if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS_URL" PING >/dev/null || { echo "Redis at $REDIS_URL does not answer" >&2; exit 1; }
fi

export HEXDASH_DATABASE_URL=$DATABASE_URL
export HEXDASH_REDIS_URL=$REDIS_URL
export HEXDASH_CLUSTER__KEY_PREFIX=$KEY_PREFIX
export HEXDASH_JWT_SECRET=${HEXDASH_JWT_SECRET:-local-cluster-secret}
export HEXDASH_ADMIN_EMAIL=${HEXDASH_ADMIN_EMAIL:-admin@hexdash.local}
export HEXDASH_ADMIN_PASSWORD=${HEXDASH_ADMIN_PASSWORD:-admin-password}

pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

# name, roles, http port, extra flags
start() {
    local name=$1 roles=$2 port=$3
    shift 3
    HEXDASH_CLUSTER__NODE_ID=$name "$BIN" serve --roles "$roles" \
        --http-addr "127.0.0.1:$port" "$@" >"$RUN_DIR/$name.log" 2>&1 &
    pids+=($!)
    echo "node $name ($roles): http://127.0.0.1:$port  log $RUN_DIR/$name.log"
}

ALL=api,ingest,gateway,matcher,relay
start a "$ALL" "$BASE_HTTP_PORT" --mqtt-addr "127.0.0.1:$BASE_MQTT_PORT"
start b "$ALL" "$((BASE_HTTP_PORT + 1))" --mqtt-addr "127.0.0.1:$((BASE_MQTT_PORT + 1))"
start c "$ALL" "$((BASE_HTTP_PORT + 2))" --mqtt-addr "127.0.0.1:$((BASE_MQTT_PORT + 2))"

# Ready when every node says so.
for port in "$BASE_HTTP_PORT" "$((BASE_HTTP_PORT + 1))" "$((BASE_HTTP_PORT + 2))"; do
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.2
    done
    curl -s "http://127.0.0.1:$port/readyz"; echo
done
echo "running; Ctrl-C stops the three nodes"
wait
