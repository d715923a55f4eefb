#!/usr/bin/env python3
"""Compares two builds of ms-switch-bench point by point, in one run: the rounds
alternate between the builds (and the memcpy peer), so that the machine's noise falls on
both alike, and the median of each build gives the ratio new/base. Used to show that a
change to the switch costs nothing measurable. Writes one JSON file.

Usage: bench/switch/ab.py --base OLD/ms-switch-bench --new NEW/ms-switch-bench --out FILE
"""
import argparse
import json
import statistics
import subprocess

POINTS = [("tx", 1, 60, 1), ("rx", 1, 60, 1), ("tx", 254, 60, 1), ("rx", 254, 60, 1), ("tx", 1, 1514, 1),
          ("tx", 254, 60, 2), ("rx", 254, 60, 2)]


def mpps(binary, mode, ports, size, workers, seconds):
    out = subprocess.run([binary, "--mode", mode, "--ports", str(ports), "--size", str(size), "--workers",
                          str(workers), "--seconds", str(seconds), "--json"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return json.loads(out)["mpps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="ms-switch-bench of the base build")
    ap.add_argument("--new", required=True, help="ms-switch-bench of the changed build")
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    results = []
    for mode, ports, size, workers in POINTS:
        runs = {"base": [], "new": [], "memcpy": []}
        for _ in range(args.rounds):
            for name, binary in (("base", args.base), ("new", args.new)):
                runs[name].append(mpps(binary, mode, ports, size, workers, args.seconds))
        runs["memcpy"].append(mpps(args.new, "memcpy", ports, size, 1, args.seconds))
        med = {k: statistics.median(v) for k, v in runs.items()}
        point = {"mode": mode, "ports": ports, "size": size, "workers": workers, "runs_mpps": runs,
                 "median_mpps": med, "new_over_base": med["new"] / med["base"]}
        results.append(point)
        print(f"{mode:3} ports={ports:<4} size={size:<5} workers={workers}: base {med['base']:6.2f}  "
              f"new {med['new']:6.2f} Mpps  new/base {point['new_over_base']:.3f}  (memcpy {med['memcpy']:6.2f})",
              flush=True)
    ratios = [p["new_over_base"] for p in results]
    summary = {"median_new_over_base": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    with open(args.out, "w") as f:
        json.dump({"benchmark": "switch_ab", "rounds": args.rounds, "seconds_per_run": args.seconds,
                   "points": results, "summary": summary}, f, indent=1)
    print(f"new/base: median {summary['median_new_over_base']:.3f} (from {summary['min']:.3f} to {summary['max']:.3f})")


if __name__ == "__main__":
    main()
