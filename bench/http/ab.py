#!/usr/bin/env python3
"""Compares two builds of ms-httpd over UTCP (with each build's own multistackd), in one
run: the rounds alternate between the builds, so that the machine's noise falls on both
alike, and the median of each gives the ratio new/base for requests/s and for the server
core's time per request. With them, nginx on the kernel in the same rounds, so that the
ratio utcp/nginx of each build is measured as bench/http.sh measures it. Used to show that
a change costs nothing measurable. Writes one JSON file. Needs root.

Usage: bench/http/ab.py --base OLD_BUILD --new NEW_BUILD --out FILE [--rounds N] [--seconds S]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import Hosts  # noqa: E402
from run import ServerSide, make_www, measure  # noqa: E402

LOADS = [(1, True), (1, False), (32, True)]  # (KB, Connection: close)


def one_round(hosts, tmp, www, name, build, config, args):
    side = ServerSide(hosts, build, tmp, config, www)
    try:
        return {(kb, close): measure(side, hosts, kb, close, args) | {"build": name} for kb, close in LOADS}
    finally:
        side.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the base build tree")
    ap.add_argument("--new", required=True, help="the changed build tree")
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    hosts = Hosts(f"ba{os.getpid() % 10000}", "nic")
    tmp = tempfile.mkdtemp()
    www = make_www(tmp)
    runs = {name: {load: [] for load in LOADS} for name in ("base", "new", "nginx")}
    try:
        for _ in range(args.rounds):
            for name, build, config in (("base", args.base, "ms-httpd-utcp"), ("new", args.new, "ms-httpd-utcp"),
                                        ("nginx", args.new, "nginx-tso")):
                for load, r in one_round(hosts, tmp, www, name, build, config, args).items():
                    runs[name][load].append(r)
    finally:
        hosts.close()
    points = []
    for kb, close in LOADS:
        med = {name: {k: statistics.median(r[k] for r in runs[name][(kb, close)])
                      for k in ("requests_per_s", "server_core_us_per_request")} for name in runs}
        points.append({
            "size_kb": kb, "connection_close": close, "medians": med,
            "runs_rps": {name: [r["requests_per_s"] for r in runs[name][(kb, close)]] for name in runs},
            "new_vs_base_rps": med["new"]["requests_per_s"] / med["base"]["requests_per_s"],
            "new_vs_base_core_per_request": med["new"]["server_core_us_per_request"] /
            med["base"]["server_core_us_per_request"],
            "base_vs_nginx_core_per_request": med["nginx"]["server_core_us_per_request"] /
            med["base"]["server_core_us_per_request"],
            "new_vs_nginx_core_per_request": med["nginx"]["server_core_us_per_request"] /
            med["new"]["server_core_us_per_request"],
        })
        p = points[-1]
        print(f"{kb} KB {'close' if close else 'keep-alive'}: new/base rps {p['new_vs_base_rps']:.3f}, "
              f"core per request {p['new_vs_base_core_per_request']:.3f}; nginx/utcp cost base "
              f"{p['base_vs_nginx_core_per_request']:.2f} new {p['new_vs_nginx_core_per_request']:.2f}", flush=True)
    with open(args.out, "w") as f:
        json.dump({"base": args.base, "new": args.new, "rounds": args.rounds, "seconds": args.seconds,
                   "points": points}, f, indent=2)


if __name__ == "__main__":
    main()
