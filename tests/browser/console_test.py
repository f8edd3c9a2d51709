"""The dispatcher console in headless Chromium, against the real binary.

    python3 tests/browser/console_test.py --bin target/debug/hexdash --artifacts DIR
    python3 tests/browser/console_test.py --bench --couriers 10000 --url http://127.0.0.1:8088 ...

Test (default): starts hexdash on free ports with a temporary SQLite
database and the shipped Gothenburg road graph, signs up couriers that
ping over HTTP batches (`POST /v1/drivers/{id}/locations`) as they drive
in circles, places an order the restaurant accepts, then in the browser:
logs in at /console/, sees the couriers move (their positions in the
page's state and the pixels of the courier layer differ between two
screenshots), opens the order, reassigns it to a chosen courier and sees
the courier in the orders panel (and over REST). Screenshots go to the
artifacts directory.

Bench (--bench): opens the console against a running hexdash that some
load generator keeps busy (`loadtest ingest …`) and reports the page's own
measurements (frames per second, ms to apply a courier frame and to draw
the couriers, ping-to-screen) as JSON.

Only the standard library and Playwright for Python (driving Debian's
/usr/bin/chromium; no browser is downloaded).
"""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_EMAIL = "dispatch@example.com"
ADMIN_PASSWORD = "dispatch-password"
# Central Gothenburg: couriers circle around points near it.
CENTRE = (57.7072, 11.9668)
COURIERS = 12
PING_EVERY_S = 0.5
# Every wait is for an event; this only bounds how long a broken build
# can hang the test.
WAIT_MS = 30_000


class Http:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, token=None, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text else None)

    def ok(self, method, path, token=None, body=None, status=(200, 201)):
        code, answer = self.call(method, path, token, body)
        if code not in status:
            raise AssertionError(f"{method} {path}: {code} {answer}")
        return answer

    def user(self, name, role):
        email = f"{name}@example.com"
        password = f"password-{name}"
        user = self.ok("POST", "/v1/auth/signup", body={"email": email, "password": password, "name": name, "role": role})
        token = self.ok("POST", "/v1/auth/login", body={"email": email, "password": password})["access_token"]
        return user["user_id"], token


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_server(binary, work):
    http_port, mqtt_port = free_ports(2)
    env = dict(os.environ)
    env.update(
        {
            "HEXDASH_ADMIN_EMAIL": ADMIN_EMAIL,
            "HEXDASH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HEXDASH_JWT_SECRET": "console-test",
            "HEXDASH_DATABASE_URL": f"sqlite://{work}/hexdash.db",
            "HEXDASH_API__PASSWORD_MEMORY_KIB": "64",
            "HEXDASH_API__PASSWORD_PASSES": "1",
            "HEXDASH_API__LOGIN_ATTEMPTS_PER_ADDRESS": "0",
            "HEXDASH_API__SIGNUP_ATTEMPTS_PER_ADDRESS": "0",
            "HEXDASH_MATCHER__ROADS": os.path.join(REPO, "data", "gothenburg_roads_2016.hxroads"),
            "HEXDASH_LOG": "warn",
        }
    )
    log = open(os.path.join(work, "hexdash.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--http-addr", f"127.0.0.1:{http_port}", "--mqtt-addr", f"127.0.0.1:{mqtt_port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hexdash exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.1)
    raise AssertionError("hexdash did not become ready within 60 s")


class Couriers(threading.Thread):
    """Couriers driving circles of 300–900 m at 8 m/s, pinging in HTTP batches."""

    def __init__(self, http, couriers):
        super().__init__(daemon=True)
        self.http = http
        self.couriers = couriers
        self.stop = threading.Event()
        self.errors = []

    def position(self, k, t):
        lat0 = CENTRE[0] + 0.004 * math.cos(k)
        lng0 = CENTRE[1] + 0.008 * math.sin(k)
        radius_m = 300 + 50 * k
        angle = (8.0 / radius_m) * t + k
        lat = lat0 + (radius_m / 111_320) * math.sin(angle)
        lng = lng0 + (radius_m / (111_320 * math.cos(math.radians(lat0)))) * math.cos(angle)
        return lat, lng

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            for k, (driver_id, token) in enumerate(self.couriers):
                lat, lng = self.position(k, time.monotonic() - t0)
                ts = int(time.time() * 1000)
                code, body = self.http.call(
                    "POST",
                    f"/v1/drivers/{driver_id}/locations",
                    token,
                    [{"lat": lat, "lng": lng, "ts": ts, "speed": 8.0}],
                )
                if code != 200:
                    self.errors.append((code, body))
            self.stop.wait(PING_EVERY_S)


def launch(p):
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    return p.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900},
        # The console's policy forbids eval, which Playwright's
        # wait_for_function uses for its predicates.
        bypass_csp=True,
    )


def log_in(page, base, email, password):
    page.goto(base + "/console/")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_function("window.hexdash && window.hexdash.ready", timeout=WAIT_MS)


def run_test(args):
    work = tempfile.mkdtemp(prefix="console-test-")
    os.makedirs(args.artifacts, exist_ok=True)
    proc, base = start_server(args.bin, work)
    http = Http(base)
    couriers = None
    try:
        couriers_ids = []
        for k in range(COURIERS):
            driver_id, token = http.user(f"courier{k}", "driver")
            http.ok("PUT", f"/v1/drivers/{driver_id}/availability", token, {"status": "available"})
            couriers_ids.append((driver_id, token))
        couriers = Couriers(http, couriers_ids)
        couriers.start()
        _, owner = http.user("kitchen", "restaurant")
        restaurant = http.ok(
            "POST",
            "/v1/restaurants",
            owner,
            {
                "name": "Kitchen Göta",
                "location": {"lat": CENTRE[0], "lng": CENTRE[1]},
                "address": "Drottningtorget 5",
                "cuisines": ["pizza"],
                "delivery_radius_m": 10_000,
            },
        )["restaurant_id"]
        item = http.ok(
            "POST",
            f"/v1/restaurants/{restaurant}/menu",
            owner,
            {"items": [{"name": "Margherita", "price_cents": 11_000}]},
        )["items"][0]["menu_item_id"]
        _, customer = http.user("customer", "customer")
        order = http.ok(
            "POST",
            "/v1/orders",
            customer,
            {
                "restaurant_id": restaurant,
                "items": [{"menu_item_id": item, "quantity": 1}],
                "delivery": {"lat": CENTRE[0] - 0.01, "lng": CENTRE[1] + 0.01, "address": "Avenyn 10"},
                "payment": {"method": "card", "token": "tok_ok"},
            },
        )["order_id"]
        http.ok("POST", f"/v1/orders/{order}/status", owner, {"status": "accepted"})
        # The courier the dispatcher picks: whoever the matcher did not offer it to.
        offered = http.ok("GET", f"/v1/orders/{order}", customer).get("dispatch") or {}
        chosen = couriers_ids[-1][0]

        with sync_playwright() as p:
            browser = launch(p)
            page = browser.pages[0] if browser.pages else browser.new_page()
            console_errors = []
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            log_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            page.wait_for_function(f"window.hexdash.layers.fleet.size >= {COURIERS}", timeout=WAIT_MS)
            first = page.evaluate("window.hexdash.layers.fleet.snapshot()")
            first_pixels = page.evaluate("document.getElementById('fleet').toDataURL()")
            page.screenshot(path=os.path.join(args.artifacts, "1-couriers.png"))
            # Wait until every courier has moved in the page's state.
            page.wait_for_function(
                """(first) => {
                    const now = window.hexdash.layers.fleet.snapshot();
                    return Object.keys(first).every((id) => now[id] && (now[id][0] !== first[id][0] || now[id][1] !== first[id][1]));
                }""",
                arg=first,
                timeout=WAIT_MS,
            )
            # And the next draw has happened.
            page.wait_for_function(
                "(before) => document.getElementById('fleet').toDataURL() !== before",
                arg=first_pixels,
                timeout=WAIT_MS,
            )
            second = page.evaluate("window.hexdash.layers.fleet.snapshot()")
            page.screenshot(path=os.path.join(args.artifacts, "2-couriers-moved.png"))
            moved = sum(1 for k in first if first[k][:2] != second[k][:2])
            assert moved == len(first), f"{moved} of {len(first)} couriers moved"

            row = f"#orders tbody tr[data-order-id='{order}']"
            page.wait_for_selector(row, timeout=WAIT_MS)
            page.click(row)
            page.wait_for_selector(f"#reassign-to option[value='{chosen}']", state="attached", timeout=WAIT_MS)
            page.select_option("#reassign-to", chosen)
            page.click("#reassign")
            page.wait_for_selector("#detail-result.ok", timeout=WAIT_MS)
            page.wait_for_selector(f"{row}[data-driver-id='{chosen}']", timeout=WAIT_MS)
            cell = page.text_content(f"{row} td.courier")
            assert cell == chosen[-6:], f"the panel shows courier {cell}, not {chosen[-6:]}"
            page.screenshot(path=os.path.join(args.artifacts, "3-reassigned.png"))

            # Set another courier offline from its panel: the courier list
            # shows it offline once the socket tells the page.
            other = couriers_ids[0][0]
            courier_row = f"#couriers tbody tr[data-driver-id='{other}']"
            page.click(courier_row)
            page.click("#set-offline")
            page.wait_for_selector("#detail-result.ok", timeout=WAIT_MS)
            page.wait_for_selector(f"{courier_row} td.st-offline", timeout=WAIT_MS)
            page.screenshot(path=os.path.join(args.artifacts, "4-courier-offline.png"))
            assert not console_errors, f"errors in the page: {console_errors}"
            perf = page.evaluate("window.hexdash.perf.report()")
            browser.close()

        admin = http.ok("POST", "/v1/auth/login", body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})["access_token"]
        after = http.ok("GET", f"/v1/orders/{order}", admin)
        assert after["driver_id"] == chosen, f"order's driver over REST: {after['driver_id']}"
        assert not couriers.errors, f"pings refused: {couriers.errors[:3]}"
        print(
            json.dumps(
                {
                    "test": "console",
                    "couriers": COURIERS,
                    "moved": moved,
                    "offered_first": offered.get("state"),
                    "reassigned_to": chosen,
                    "perf": perf,
                    "artifacts": args.artifacts,
                }
            )
        )
    finally:
        if couriers:
            couriers.stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_bench(args):
    """The page's measurements while a load generator moves the couriers."""
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.pages[0] if browser.pages else browser.new_page()
        log_in(page, args.url, args.email, args.password)
        page.wait_for_function(f"window.hexdash.layers.fleet.size >= {args.couriers}", timeout=300_000)
        results = {}
        # (name, zoom or None for the whole road map, cells replace dots above this many)
        modes = [
            ("dots_city", None, "Infinity"),
            ("hexagons_city", None, "2000"),
            ("dots_street", 15.0, "2000"),
        ]
        for mode, zoom, limit in modes:
            page.evaluate(
                """([zoom, limit]) => {
                    const h = window.hexdash;
                    const v = h.view;
                    h.scene.dotsLimit = Number(limit);
                    if (h.layers.roads.bbox) v.fit(h.layers.roads.bbox);
                    if (zoom !== null) v.zoomAt(zoom - v.zoom, v.width / 2, v.height / 2);
                    v.version++;
                }""",
                [zoom, limit],
            )
            # Let the view settle (a new area subscription, the road cache,
            # the cells), then take a whole window of the page's figures.
            page.wait_for_timeout(3000)
            page.wait_for_timeout(args.window_s * 1000)
            report = page.evaluate("window.hexdash.perf.report()")
            report["fleet_size"] = page.evaluate("window.hexdash.layers.fleet.size")
            report["visible"] = page.evaluate("window.hexdash.layers.fleet.visible(window.hexdash.view)")
            report["hex_mode"] = page.evaluate("window.hexdash.scene.hexMode")
            report["zoom"] = page.evaluate("window.hexdash.view.zoom")
            report["road_redraws"] = page.evaluate("window.hexdash.layers.roads.redraws")
            results[mode] = report
            page.screenshot(path=os.path.join(args.artifacts, f"bench-{mode}.png"))
        browser.close()
    print(json.dumps({"bench": "console", "couriers": args.couriers, "results": results}, indent=2))


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(REPO, "target", "debug", "hexdash"))
    parser.add_argument("--artifacts", default=os.path.join(REPO, "target", "console-artifacts"))
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--email", default="admin@example.com")
    parser.add_argument("--password", default="adminpassword1")
    parser.add_argument("--couriers", type=int, default=10_000)
    parser.add_argument("--window-s", type=int, default=10)
    args = parser.parse_args()
    if args.bench:
        os.makedirs(args.artifacts, exist_ok=True)
        run_bench(args)
    else:
        run_test(args)


if __name__ == "__main__":
    sys.exit(main())
