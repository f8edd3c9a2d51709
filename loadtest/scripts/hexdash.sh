#!/bin/bash
# Starts, restarts or stops a hexdash configured for load tests, keeping its
# pid in $LT_DIR/hexdash.pid (only that process is ever stopped).
#
#   loadtest/scripts/hexdash.sh start|restart|stop
#
# Load-test settings: a cheap argon2 hash (signing up 10,000+ drivers at
# the default cost takes minutes), no per-address login, signup or
# connection limit (every account and watcher comes from 127.0.0.1),
# day-long tokens, a long presence timeout
# (preloaded drivers stay available), logs at warn, and the open-file
# limit raised as far as allowed.
LT_DIR=${LT_DIR:-/tmp/lt}
HEXDASH_BIN=${HEXDASH_BIN:-target/release/hexdash}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8088}
MQTT_ADDR=${MQTT_ADDR:-127.0.0.1:1884}
mkdir -p "$LT_DIR"
pidfile="$LT_DIR/hexdash.pid"

stop() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}

start() {
  ulimit -n "$(ulimit -Hn)"
  HEXDASH_ADMIN_EMAIL=${HEXDASH_ADMIN_EMAIL:-admin@example.com} \
  HEXDASH_ADMIN_PASSWORD=${HEXDASH_ADMIN_PASSWORD:-adminpassword1} \
  HEXDASH_JWT_SECRET=${HEXDASH_JWT_SECRET:-loadtest} \
  HEXDASH_API__PASSWORD_MEMORY_KIB=64 HEXDASH_API__PASSWORD_PASSES=1 \
  HEXDASH_API__MAX_CONCURRENT_HASHES=8 HEXDASH_API__LOGIN_ATTEMPTS_PER_ADDRESS=0 \
  HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS=0 HEXDASH_HTTP__MAX_CONNECTIONS_PER_ADDRESS=0 \
  HEXDASH_API__REQUESTS_PER_ACCOUNT_PER_S=0 HEXDASH_ENGINE__MAX_PINGS_PER_S=0 \
  HEXDASH_ACCESS_TOKEN_TTL_S=86400 HEXDASH_ENGINE__PRESENCE_TIMEOUT_S=600 HEXDASH_LOG=${HEXDASH_LOG:-warn} \
  HEXDASH_DATABASE_URL=${HEXDASH_DATABASE_URL:-sqlite://$LT_DIR/hexdash.db} \
    setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" \
      "$HEXDASH_BIN" serve --http-addr "$HTTP_ADDR" --mqtt-addr "$MQTT_ADDR" \
    > "$LT_DIR/hexdash.log" 2>&1 &
  # The pid is hexdash's own (the shell above execs it): setsid may fork,
  # so $! would be a setsid that has already exited.
  for _ in $(seq 50); do curl -sf "http://$HTTP_ADDR/readyz" > /dev/null && return 0; sleep 0.2; done
  echo "hexdash did not become ready; see $LT_DIR/hexdash.log" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  restart) stop; start ;;
  stop) stop ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
