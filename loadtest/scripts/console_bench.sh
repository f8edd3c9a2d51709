#!/bin/bash
# The dispatcher console's benchmark (docs/BENCHMARKS.md): hexdash's CPU
# with 10,000 couriers pinging over MQTT, first with nobody watching, then
# with one console (headless Chromium, .ci/console --bench) following the
# whole city over the `area` subscription; and the console's own figures
# (frames per second, ms to apply a courier frame and to draw, ping to
# screen) in three views: every courier as a dot, the city as H3 cells,
# one street.
#
#   loadtest/scripts/console_bench.sh OUT_DIR
#
# Needs the release build (cargo build --release -p hexdash -p loadtest).
# hexdash is restarted before each run (same database and accounts), so
# the second run's console sees only that run's moving couriers.
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)"
out=${1:-/tmp/lt/console}
mkdir -p "$out"
export LT_DIR=${LT_DIR:-/tmp/lt-console}
export HEXDASH_MATCHER__ROADS=data/gothenburg_roads_2016.hxroads
DRIVERS=${DRIVERS:-10000}
HZ=${HZ:-1}
DURATION_S=${DURATION_S:-60}
HTTP=http://127.0.0.1:8088
LT=target/release/loadtest
run_unwatched() {
  loadtest/scripts/hexdash.sh restart
  local pid; pid=$(cat "$LT_DIR/hexdash.pid")
  "$LT" ingest --drivers "$DRIVERS" --ping-hz "$HZ" --duration-s "$DURATION_S" \
    --http-url "$HTTP" --mqtt-addr 127.0.0.1:1884 --accounts-file "$LT_DIR/accounts.json" \
    --server-pid "$pid" --json --quiet
}
loadtest/scripts/hexdash.sh restart
"$LT" accounts --drivers "$DRIVERS" --http-url "$HTTP" --accounts-file "$LT_DIR/accounts.json" --quiet
echo "console_bench: $DRIVERS couriers at $HZ Hz, nobody watching" >&2
run_unwatched > "$out/ingest_no_console.json"
echo "console_bench: the same with one console watching" >&2
loadtest/scripts/hexdash.sh restart
# The console waits for 95% of the couriers (some start outside the box
# of the road map's extent), then measures while the load runs.
.ci/console --bench --url "$HTTP" --couriers $((DRIVERS * 95 / 100)) > "$out/console_page.json" 2> "$out/console_page.log" &
bench=$!
pid=$(cat "$LT_DIR/hexdash.pid")
"$LT" ingest --drivers "$DRIVERS" --ping-hz "$HZ" --duration-s "$DURATION_S" \
  --http-url "$HTTP" --mqtt-addr 127.0.0.1:1884 --accounts-file "$LT_DIR/accounts.json" \
  --server-pid "$pid" --json --quiet > "$out/ingest_console.json"
wait "$bench"
loadtest/scripts/hexdash.sh stop
echo "console_bench: reports in $out" >&2
