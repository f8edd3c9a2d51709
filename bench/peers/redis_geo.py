#!/usr/bin/env python3
"""Redis GEO peer for the engine benchmarks, measured in the same session.

Loads N drivers uniformly into a 30 x 30 km square around Gothenburg (the
same city as bench::City::gothenburg_30km), then runs GEOSEARCH (nearest 10
within 3 km, ASC) from random centres and GEOADD moves, and prints Redis's
own server-side time per call from INFO commandstats: the index cost without
the network, comparable to the in-process criterion figures.

Usage: bench/peers/redis_geo.py [--port 6379] [--drivers 100000] [--queries 2000]
Uses a scratch key and deletes it afterwards. Needs redis-cli.
"""
import argparse
import math
import random
import subprocess

KEY = "hexdash:bench:drivers"
CENTRE = (57.7089, 11.9746)
SIZE_M = 30_000.0


def point(rng):
    h = SIZE_M / 2
    north, east = rng.uniform(-h, h), rng.uniform(-h, h)
    lat = CENTRE[0] + north / 111_195.0
    lng = CENTRE[1] + east / (111_195.0 * math.cos(math.radians(CENTRE[0])))
    return lat, lng


def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        a = str(a)
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)


def pipe(port, commands):
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(commands).encode(),
                   check=True, stdout=subprocess.DEVNULL)


def commandstats(port):
    text = subprocess.run(["redis-cli", "-p", str(port), "INFO", "commandstats"],
                          check=True, capture_output=True).stdout.decode()
    stats = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line.split(":", 1)
            stats[name[len("cmdstat_"):]] = dict(kv.split("=") for kv in fields.split(","))
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--drivers", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=20261121)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    subprocess.run(["redis-cli", "-p", str(args.port), "DEL", KEY], check=True, stdout=subprocess.DEVNULL)
    load = []
    for i in range(args.drivers):
        lat, lng = point(rng)
        load.append(resp("GEOADD", KEY, f"{lng:.7f}", f"{lat:.7f}", f"d{i}"))
    pipe(args.port, load)
    subprocess.run(["redis-cli", "-p", str(args.port), "CONFIG", "RESETSTAT"], check=True, stdout=subprocess.DEVNULL)

    queries = []
    for _ in range(args.queries):
        lat, lng = point(rng)
        queries.append(resp("GEOSEARCH", KEY, "FROMLONLAT", f"{lng:.7f}", f"{lat:.7f}",
                            "BYRADIUS", "3", "km", "ASC", "COUNT", "10"))
    moves = []
    for _ in range(args.queries * 10):
        lat, lng = point(rng)
        moves.append(resp("GEOADD", KEY, f"{lng:.7f}", f"{lat:.7f}", f"d{rng.randrange(args.drivers)}"))
    pipe(args.port, queries)
    pipe(args.port, moves)
    stats = commandstats(args.port)
    subprocess.run(["redis-cli", "-p", str(args.port), "DEL", KEY], check=True, stdout=subprocess.DEVNULL)

    search = float(stats["geosearch"]["usec_per_call"])
    add = float(stats["geoadd"]["usec_per_call"])
    print(f"redis GEOSEARCH 3km ASC COUNT 10, {args.drivers} drivers: {search:.2f} us/call server-side "
          f"({1e6 / search:,.0f} calls/s per core)")
    print(f"redis GEOADD move, {args.drivers} drivers: {add:.3f} us/call server-side "
          f"({1e6 / add:,.0f} calls/s per core)")


if __name__ == "__main__":
    main()
