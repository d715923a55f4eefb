#!/usr/bin/env python3
"""Sweeps the axes of the paper's Figure 4 with ms-switch-bench and measures the peers
in the same run: the memcpy ring-to-ring upper bound and DPDK's testpmd (io forwarding
between two net_null ports). Writes one JSON file and two PNG plots."""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

SIZES = [60, 124, 252, 508, 1020, 1514]
PORTS = [1, 2, 4, 16, 64, 254, 1024]
WORKERS = [1, 2]


def run_switch(binary, mode, ports, size, workers, seconds, huge_pages=False):
    cmd = [binary, "--mode", mode, "--ports", str(ports), "--size", str(size), "--workers", str(workers),
           "--seconds", str(seconds), "--json"]
    if huge_pages:
        cmd.append("--huge-pages")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    point = json.loads(out)
    print(f"  {mode:6} ports={ports:<5} size={size:<5} workers={workers} huge_pages={'on' if huge_pages else 'off'}: "
          f"{point['mpps']:7.2f} Mpps", flush=True)
    return point


def run_testpmd(size, seconds):
    """Forwarded packets per second, both directions summed, over the last full period."""
    exe = shutil.which("dpdk-testpmd")
    if not exe:
        return None
    cmd = [exe, "--no-huge", "--no-pci", "-m", "1024", "-l", "0,1", "--log-level=lib.eal:error",
           f"--vdev=net_null0,size={size}", f"--vdev=net_null1,size={size}", "--",
           "--forward-mode=io", "--stats-period", "1", "--auto-start"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds + 2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    rates = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", out)]
    if len(rates) < 4:
        print("  testpmd: no statistics", file=sys.stderr)
        return None
    pps = rates[-2] + rates[-1]  # the last period, both ports
    print(f"  testpmd size={size:<5}: {pps / 1e6:7.2f} Mpps", flush=True)
    return {"mode": "testpmd", "size": size, "mpps": pps / 1e6, "gbps": pps * size * 8 / 1e9}


def find(points, **match):
    """The point that matches (points without a huge_pages field had them off), or, when
    several rounds measured it, one point with the median rate."""
    match.setdefault("huge_pages", False)
    hits = [p for p in points if all(p.get(k, False if k == "huge_pages" else None) == v for k, v in match.items())]
    if len(hits) <= 1:
        return hits[0] if hits else None
    return {**hits[0], "mpps": statistics.median(p["mpps"] for p in hits), "rounds": len(hits)}


def ratio(points, num, den):
    a, b = find(points, **num), find(points, **den)
    return a["mpps"] / b["mpps"] if a and b else None


def summarise(points, peers):
    s = {}
    for mode in ("tx", "rx"):
        one = find(points, mode=mode, ports=1, size=60, workers=1)
        s[f"{mode}_64B_1worker_mpps"] = one["mpps"]
        s[f"{mode}_64B_1worker_meets_20mpps"] = one["mpps"] >= 20.0
        # Issue 23 §2: two workers against one, same frame size and ports.
        for n in (1, 254):
            r = ratio(points, dict(mode=mode, ports=n, size=60, workers=2), dict(mode=mode, ports=n, size=60, workers=1))
            if r is not None:
                s[f"{mode}_64B_{n}port{'s' if n > 1 else ''}_2workers_vs_1worker"] = r
                s[f"{mode}_64B_{n}port{'s' if n > 1 else ''}_2workers_meets_1.8x"] = r >= 1.8
        for n in (254, 1024):
            for huge, suffix in ((False, ""), (True, "_huge_pages")):
                r = ratio(points, dict(mode=mode, ports=n, size=60, workers=1, huge_pages=huge),
                          dict(mode=mode, ports=1, size=60, workers=1, huge_pages=huge))
                if r is None:
                    continue
                s[f"{mode}_{n}ports_vs_1port{suffix}"] = r
                if not huge:
                    s[f"{mode}_{n}ports_meets_0.9x"] = r >= 0.9
        pmd = find(peers, mode="testpmd", size=60)
        if pmd:
            s[f"{mode}_64B_vs_testpmd"] = one["mpps"] / pmd["mpps"]
        mc = find(peers, mode="memcpy", size=60)
        if mc:
            s[f"{mode}_64B_vs_memcpy"] = one["mpps"] / mc["mpps"]
    s["shmem_enabled"] = shmem_enabled()
    return s


def shmem_enabled():
    """The kernel's transparent huge page policy for shared memory: the port regions get
    huge pages only under [advise] or [always] (docs/DESIGN.md §12)."""
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read()
        return re.search(r"\[(\w+)\]", text).group(1)
    except (OSError, AttributeError):
        return None


def style_axes(ax, title, xlabel):
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def save(fig, axes, title, path):
    axes[0].set_ylabel("Mpps")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def workers_label(w):
    return f"{w} worker{'s' if w > 1 else ''}"


def plot(result, prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points, peers = result["points"], result["peers"]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, mode, panel in zip(axes, ("tx", "rx"), "ab"):
        for w in WORKERS:
            ys = [find(points, mode=mode, ports=1, size=s, workers=w)["mpps"] for s in SIZES]
            ax.plot(SIZES, ys, marker="o", label=f"MultiStack {mode}, {workers_label(w)}")
        for peer, style in (("memcpy", "--"), ("testpmd", ":")):
            ys = [p["mpps"] if (p := find(peers, mode=peer, size=s)) else None for s in SIZES]
            if any(y is not None for y in ys):
                ax.plot(SIZES, ys, style, marker="x", label=peer)
        # 10 GbE line rate: each frame also costs 4 bytes of CRC and 20 of preamble and gap.
        ax.plot(SIZES, [10e9 / ((s + 24) * 8) / 1e6 for s in SIZES], "k-", lw=0.8, label="10 GbE line rate")
        style_axes(ax, f"({panel}) {mode.upper()}, one port", "frame size (bytes, no CRC)")
    save(fig, axes, "MultiStack switch, in process: throughput against frame size", f"{prefix}_size.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, mode, panel in zip(axes, ("tx", "rx"), "cd"):
        for w in WORKERS:
            ys = [find(points, mode=mode, ports=n, size=60, workers=w)["mpps"] for n in PORTS]
            ax.plot(PORTS, ys, marker="o", label=f"{workers_label(w)}, 60-byte frames")
        style_axes(ax, f"({panel}) {mode.upper()}, many active ports", "active ports")
    save(fig, axes, "MultiStack switch, in process: throughput against active ports", f"{prefix}_ports.png")


def measure_ratios(args):
    """Each round measures every point once, so that the machine's drift falls on all alike."""
    points = []
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}:")
        for mode in ("tx", "rx"):
            for ports, workers, huge in ((1, 1, False), (1, 2, False), (254, 1, False), (254, 2, False), (1, 1, True),
                                         (254, 1, True)):
                points.append(run_switch(args.bench, mode, ports, 60, workers, args.seconds, huge))
    result = {"benchmark": "switch_ratios", "cpus": os.cpu_count(), "rounds": args.rounds,
              "seconds_per_point": args.seconds, "points": points, "peers": []}
    result["summary"] = summarise(points, [])
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["summary"], indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", required=True, help="path to ms-switch-bench")
    ap.add_argument("--out", required=True, help="JSON result file; plots go beside it")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--quick", action="store_true", help="fewer points, for a smoke run")
    ap.add_argument("--ratios", action="store_true",
                    help="only the summary's ratios at 60 bytes: 2 workers / 1 and 254 ports / 1, with and without "
                         "huge pages, rounds alternating (no sizes, peers or plots)")
    ap.add_argument("--rounds", type=int, default=3, help="--ratios: rounds; the summary takes the medians")
    args = ap.parse_args()
    global SIZES, PORTS
    if args.ratios:
        return measure_ratios(args)
    if args.quick:
        SIZES, PORTS = [60, 1514], [1, 254, 1024]

    points, peers = [], []
    print("frame sizes, one port:")
    for w in WORKERS:
        for mode in ("tx", "rx"):
            for s in SIZES:
                points.append(run_switch(args.bench, mode, 1, s, w, args.seconds))
    print("active ports, 60-byte frames:")
    for w in WORKERS:
        for mode in ("tx", "rx"):
            for n in PORTS:
                if n == 1:
                    continue
                points.append(run_switch(args.bench, mode, n, 60, w, args.seconds))
    print("with huge pages on the port regions, 60-byte frames, one worker:")
    for mode in ("tx", "rx"):
        for n in (1, 254):
            points.append(run_switch(args.bench, mode, n, 60, 1, args.seconds, huge_pages=True))
    print("peers:")
    for s in SIZES:
        m = run_switch(args.bench, "memcpy", 1, s, 1, args.seconds)
        peers.append({"mode": "memcpy", "size": s, "mpps": m["mpps"], "gbps": m["gbps"]})
        t = run_testpmd(s, args.seconds)
        if t:
            peers.append(t)

    result = {"benchmark": "switch", "figure": "MultiStack paper, Figure 4 (in process)",
              "seconds_per_point": args.seconds, "points": points, "peers": peers}
    result["summary"] = summarise(points, peers)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    plot(result, args.out.rsplit(".", 1)[0])
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
