#!/bin/bash
# Starts or stops N hexdash nodes configured for load tests (the settings
# of loadtest/scripts/hexdash.sh) over one PostgreSQL and one Redis, for
# the multi-node benchmark (docs/BENCHMARKS.md, docs/SCALING.md). Pids go
# to $LT_DIR/node<i>.pid; only those processes are ever stopped.
#
#   NODES=3 loadtest/scripts/cluster.sh start|stop
#
# Node i (1-based) serves HTTP on 127.0.0.1:$((BASE_HTTP_PORT + i - 1))
# and MQTT on 127.0.0.1:$((BASE_MQTT_PORT + i - 1)), logs to
# $LT_DIR/node<i>.log and runs the roles in ROLES_<i> (default: every
# role). `start` recreates the database (DATABASE_URL's last path
# segment, dropped and created) and deletes the Redis keys under
# KEY_PREFIX, so every run starts empty. The nodes share Redis unless
# REDIS_URL="" (no Redis: NODES=1 is then the one-node baseline).
LT_DIR=${LT_DIR:-/tmp/lt-cluster}
HEXDASH_BIN=${HEXDASH_BIN:-target/release/hexdash}
NODES=${NODES:-3}
BASE_HTTP_PORT=${BASE_HTTP_PORT:-8110}
BASE_MQTT_PORT=${BASE_MQTT_PORT:-1910}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loadtest_cluster}
REDIS_URL=${REDIS_URL-redis://127.0.0.1:6379}
KEY_PREFIX=${KEY_PREFIX:-loadtest-cluster:}
mkdir -p "$LT_DIR"

stop() {
  local f pid
  for f in "$LT_DIR"/node*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
}

fresh_state() {
  local db=${DATABASE_URL##*/}
  db=${db%%\?*}
  local base=${DATABASE_URL%/*}/postgres
  psql -q "$base" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\"" || return 1
  if [ -n "$REDIS_URL" ]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${KEY_PREFIX}*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL > /dev/null
  fi
}

start_node() {
  local i=$1
  local roles_var="ROLES_$i"
  local roles=${!roles_var:-api,ingest,gateway,matcher,relay}
  local http=127.0.0.1:$((BASE_HTTP_PORT + i - 1))
  local mqtt=127.0.0.1:$((BASE_MQTT_PORT + i - 1))
  HEXDASH_ADMIN_EMAIL=${HEXDASH_ADMIN_EMAIL:-admin@example.com} \
  HEXDASH_ADMIN_PASSWORD=${HEXDASH_ADMIN_PASSWORD:-adminpassword1} \
  HEXDASH_JWT_SECRET=${HEXDASH_JWT_SECRET:-loadtest} \
  HEXDASH_API__PASSWORD_MEMORY_KIB=64 HEXDASH_API__PASSWORD_PASSES=1 \
  HEXDASH_API__MAX_CONCURRENT_HASHES=8 HEXDASH_API__LOGIN_ATTEMPTS_PER_ADDRESS=0 \
  HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS=0 HEXDASH_HTTP__MAX_CONNECTIONS_PER_ADDRESS=0 \
  HEXDASH_API__REQUESTS_PER_ACCOUNT_PER_S=0 HEXDASH_ENGINE__MAX_PINGS_PER_S=0 \
  HEXDASH_ACCESS_TOKEN_TTL_S=86400 HEXDASH_ENGINE__PRESENCE_TIMEOUT_S=600 HEXDASH_LOG=warn \
  HEXDASH_DATABASE_URL=$DATABASE_URL \
  HEXDASH_CLUSTER__KEY_PREFIX=$KEY_PREFIX HEXDASH_CLUSTER__NODE_ID=node$i \
    env ${REDIS_URL:+HEXDASH_REDIS_URL=$REDIS_URL} setsid sh -c 'echo $$ > "$0"; exec "$@"' "$LT_DIR/node$i.pid" \
      "$HEXDASH_BIN" serve --roles "$roles" --http-addr "$http" --mqtt-addr "$mqtt" \
    > "$LT_DIR/node$i.log" 2>&1 &
  for _ in $(seq 100); do curl -sf "http://$http/readyz" > /dev/null && return 0; sleep 0.2; done
  echo "node $i did not become ready; see $LT_DIR/node$i.log" >&2
  return 1
}

start() {
  ulimit -n "$(ulimit -Hn)"
  stop
  fresh_state || return 1
  # Node 1 first: it runs the migrations and creates the admin.
  for i in $(seq 1 "$NODES"); do start_node "$i" || return 1; done
  for i in $(seq 1 "$NODES"); do
    echo "node$i pid $(cat "$LT_DIR/node$i.pid") http 127.0.0.1:$((BASE_HTTP_PORT + i - 1)) mqtt 127.0.0.1:$((BASE_MQTT_PORT + i - 1))"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: NODES=n $0 start|stop" >&2; exit 2 ;;
esac
