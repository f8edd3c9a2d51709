#!/usr/bin/env python3
"""Prints the Markdown tables of docs/BENCHMARKS.md from one session's JSON
reports (loadtest/scripts/session.sh). usage: summarize.py DIR"""
import json, os, sys

d = sys.argv[1]

def load(name):
    p = os.path.join(d, name + ".json")
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None

def cpu(r, name):
    for p in r["processes"]:
        if p["name"].startswith(name):
            return p["cpu_pct"]
    return float("nan")

def rss(r, name):
    for p in r["processes"]:
        if p["name"].startswith(name):
            return p["rss_mib_end"]
    return float("nan")

def lat(l):
    return f'{l["p50_ms"]:.1f} / {l["p99_ms"]:.1f} / {l["p999_ms"]:.1f}' if l and l["count"] else "n/a"

limit = {}
try:
    for line in open(os.path.join(d, "limit.jsonl")):
        r = json.loads(line)
        limit[r["batch"]] = r["msgs_s"]
except OSError:
    pass
if limit:
    print(f"Loopback-TCP ceiling (../shared/peers/limit, 10,000 conns): "
          f"{limit.get(1, 0):,} pings/s one per write, {limit.get(16, 0):,} pings/s 16 per write\n")

print("| offered | hexdash received/s | loss | hexdash CPU | peer (Mosquitto → bridge) received/s | loss | Mosquitto CPU | ratio | vs ceiling |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for name in ["10k_5hz", "10k_7hz", "10k_10hz", "10k_15hz", "10k_100hz_b16"]:
    h, p = load(f"ingest_hexdash_{name}"), load(f"ingest_peer_{name}")
    if not h or not p:
        continue
    hi, pi = h["ingest"], p["ingest"]
    ceiling = limit.get(h["batch"])
    vs = f'{100 * hi["received_per_s"] / ceiling:.0f}%' if ceiling else "n/a"
    print(f'| {hi["offered_per_s"]:,.0f}/s ({name}) | {hi["received_per_s"]:,.0f} | {hi["loss_pct"]:.1f}% | {cpu(h, "hexdash"):.0f}% '
          f'| {pi["received_per_s"]:,.0f} | {pi["loss_pct"]:.1f}% | {cpu(p, "mosquitto"):.0f}% '
          f'| {hi["received_per_s"] / max(pi["received_per_s"], 1):.2f}× | {vs} |')
print()

print("| query | hexdash q/s | p50 / p99 / p99.9 ms | hexdash CPU | Redis GEOSEARCH q/s | p50 / p99 / p99.9 ms | Redis CPU | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for c in [1, 32]:
    h, p = load(f"nearby_hexdash_100k_c{c}"), load(f"nearby_peer_100k_c{c}")
    if not h or not p:
        continue
    hn, pn = h["nearby"], p["nearby"]
    print(f'| nearest 10 within 3 km, 100k drivers, {c} conns | {hn["rate_per_s"]:,.0f} | {lat(hn["latency"])} | {cpu(h, "hexdash"):.0f}% '
          f'| {pn["rate_per_s"]:,.0f} | {lat(pn["latency"])} | {cpu(p, "redis"):.0f}% | {hn["rate_per_s"] / max(pn["rate_per_s"], 1e-9):.0f}× |')
print()

for name in sorted(n[:-5] for n in os.listdir(d) if n.startswith(("track_", "conns")) and n.endswith(".json")):
    r = load(name)
    if not r:
        continue
    i, t = r["ingest"], r["track"]
    conns = i["connected"] + t["connected"]
    print(f'{name}: pings received {i["received_per_s"]:,.0f}/s (loss {i["loss_pct"]:.1f}%), '
          f'{t["connected"]} watchers, {t["positions_per_s"]:,.0f} positions/s delivered, '
          f'ping-to-screen p50/p99/p99.9 {lat(t["latency"])} ms, hexdash CPU {cpu(r, "hexdash"):.0f}%, '
          f'RSS {rss(r, "hexdash"):.0f} MiB for {conns} connections; loadtest CPU {cpu(r, "loadtest"):.0f}%, RSS {rss(r, "loadtest"):.0f} MiB')
orders = sorted((n[:-5] for n in os.listdir(d) if n.startswith("orders_") and n.endswith(".json")),
                key=lambda n: int(n.rsplit("_", 1)[1]))
for name in orders + ["ingest_hexdash_ws_10k_10hz"]:
    r = load(name)
    if not r:
        continue
    if r.get("orders"):
        o = r["orders"]
        print(f'{name}: {o["rate_per_s"]:.0f} orders/s of {o["target_rate_per_s"]:.0f} offered, errors {o["errors"]}, '
              f'dropped {o["dropped"]}, p50/p99/p99.9 {lat(o["latency"])} ms, hexdash CPU {cpu(r, "hexdash"):.0f}%')
    elif r.get("ingest"):
        i = r["ingest"]
        print(f'{name}: {i["received_per_s"]:,.0f} pings/s received of {i["offered_per_s"]:,.0f} offered, '
              f'loss {i["loss_pct"]:.1f}%, hexdash CPU {cpu(r, "hexdash"):.0f}%')
