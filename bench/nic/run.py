#!/usr/bin/env python3
"""bench/nic.sh's driver: multistackd on a veth between two test namespaces, against a
raw AF_XDP program with no switch, in the same run; the cost to a legacy kernel server
(nginx and wrk) with the switch attached; and the idle cost. Writes one JSON file and a
PNG plot. Run as root; it makes and removes its own namespaces (scripts/netns.sh)."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (SERVER_CORE, Daemon, Hosts, core_busy_seconds, cpu_seconds, driver_arguments,  # noqa: E402
                      run_json, sh, write_nginx_conf)


def measure_rx(hosts, build, tmp, peer, seconds):
    """The client blasts UDP at SERVER:9000 with raw AF_XDP; the server receives with
    `peer` (raw AF_XDP, or ms-pktgen through multistackd). Server pinned to core 1."""
    daemon = Daemon(hosts, build, tmp) if peer == "multistack" else None
    if daemon:
        rx_cmd = hosts.server("taskset", "-c", "1", f"{build}/tools/ms-pktgen", "--socket", daemon.sock, "--mode", "rx",
                              "--local", hosts.SERVER_IP, "--local-port", "9000", "--seconds", str(seconds + 1.5), "--json")
    else:
        rx_cmd = hosts.server("taskset", "-c", "1", f"{build}/bench/ms-xdp-raw", "--iface", hosts.SERVER_IF, "--mode", "rx",
                              "--local", hosts.SERVER_IP, "--port", "9000", "--seconds", str(seconds + 1.5))
    rx = subprocess.Popen(rx_cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(0.7)
    hosts.pin_napi()  # the receiver attached its XDP program
    cpu0 = cpu_seconds(rx.pid) + (cpu_seconds(daemon.proc.pid) if daemon else 0)
    core0 = core_busy_seconds(SERVER_CORE)
    gen = run_json(hosts.client("taskset", "-c", "0", f"{build}/bench/ms-xdp-raw", "--iface", hosts.CLIENT_IF, "--mode", "tx",
                                "--local", hosts.CLIENT_IP, "--port", "9001", "--peer", hosts.SERVER_IP, "--peer-port",
                                "9000", "--peer-mac", hosts.SERVER_MAC, "--seconds", str(seconds)))
    cpu1 = cpu_seconds(rx.pid) + (cpu_seconds(daemon.proc.pid) if daemon else 0)
    core1 = core_busy_seconds(SERVER_CORE)
    got = json.loads(rx.communicate(timeout=30)[0].strip().splitlines()[-1])
    if daemon:
        daemon.close()
    frames = got["frames"]
    return {"direction": "rx", "peer": peer, "offered": gen["frames"], "received": frames,
            "delivered_fraction": frames / max(gen["frames"], 1),
            "mpps": frames / gen["seconds"] / 1e6, "cpu_us_per_frame": (cpu1 - cpu0) * 1e6 / max(frames, 1),
            "server_core_us_per_frame": (core1 - core0) * 1e6 / max(frames, 1)}


def measure_tx(hosts, build, tmp, peer, seconds):
    """The server sends UDP to the client as fast as it can with `peer`; the client's
    veth counts what arrives."""
    daemon = Daemon(hosts, build, tmp) if peer == "multistack" else None
    if daemon:
        cmd = hosts.server("taskset", "-c", "1", f"{build}/tools/ms-pktgen", "--socket", daemon.sock, "--mode", "tx",
                           "--local", hosts.SERVER_IP, "--local-port", "9000", "--peer", hosts.CLIENT_IP,
                           "--peer-port", "9", "--peer-mac", hosts.CLIENT_MAC, "--seconds", str(seconds), "--json")
    else:
        cmd = hosts.server("taskset", "-c", "1", f"{build}/bench/ms-xdp-raw", "--iface", hosts.SERVER_IF, "--mode", "tx",
                           "--local", hosts.SERVER_IP, "--port", "9000", "--peer", hosts.CLIENT_IP, "--peer-port", "9",
                           "--peer-mac", hosts.CLIENT_MAC, "--seconds", str(seconds))
    before = hosts.client_rx_packets()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    hosts.pin_napi()  # the sender attached its XDP program
    cpu0 = cpu_seconds(proc.pid) + (cpu_seconds(daemon.proc.pid) if daemon else 0)
    core0 = core_busy_seconds(SERVER_CORE)
    time.sleep(seconds - 0.4)
    cpu1 = cpu_seconds(proc.pid) + (cpu_seconds(daemon.proc.pid) if daemon else 0)
    core1 = core_busy_seconds(SERVER_CORE)
    out = json.loads(proc.communicate(timeout=30)[0].strip().splitlines()[-1])
    time.sleep(0.3)
    arrived = hosts.client_rx_packets() - before
    if daemon:
        daemon.close()
    return {"direction": "tx", "peer": peer, "offered": out["frames"], "received": arrived,
            "delivered_fraction": arrived / max(out["frames"], 1),
            "mpps": arrived / out["seconds"] / 1e6,
            "cpu_us_per_frame": (cpu1 - cpu0) * 1e6 / max(arrived * (seconds - 0.4) / seconds, 1),
            "server_core_us_per_frame": (core1 - core0) * 1e6 / max(arrived * (seconds - 0.4) / seconds, 1)}


def nginx_conf(tmp, ip):
    os.makedirs(f"{tmp}/www", exist_ok=True)
    with open(f"{tmp}/www/1k", "wb") as f:
        f.write(b"x" * 1024)
    return write_nginx_conf(tmp, ip, 8080, f"{tmp}/www")


def wrk(hosts, close, seconds):
    args = ["taskset", "-c", "0", "wrk", "-t1", "-c32", f"-d{int(seconds)}s"]
    if close:
        args += ["-H", "Connection: close"]
    out = sh(*hosts.client(*args, f"http://{hosts.SERVER_IP}:8080/1k"))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if "Non-2xx" in out:
        raise RuntimeError(f"nginx answered with errors: {out}")
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, errors.group(1) if errors else ""


def measure_legacy(hosts, build, tmp, seconds):
    """nginx on the kernel stack, without and with the switch attached (and an
    application claiming another port), at the same address."""
    conf = nginx_conf(tmp, hosts.SERVER_IP)
    nginx = subprocess.Popen(hosts.server("taskset", "-c", "1", "nginx", "-c", conf, "-g", "daemon off;"))
    time.sleep(0.5)
    results = []
    try:
        for attached in (False, True):
            daemon = echo = None
            if attached:
                daemon = Daemon(hosts, build, tmp)
                echo = subprocess.Popen(hosts.server(f"{build}/tools/ms-udp-echo", "--socket", daemon.sock, "--listen",
                                                     f"{hosts.SERVER_IP}:7"), stdout=subprocess.DEVNULL)
                time.sleep(0.3)
            for close in (False, True):
                rps, errors = wrk(hosts, close, seconds)
                results.append({"switch_attached": attached, "connection_close": close, "requests_per_s": rps,
                                "socket_errors": errors})
            if echo:
                echo.terminate()
                echo.wait()
            if daemon:
                daemon.close()
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    return results


def measure_idle(hosts, build, tmp, seconds):
    daemon = Daemon(hosts, build, tmp)
    echo = subprocess.Popen(hosts.server(f"{build}/tools/ms-udp-echo", "--socket", daemon.sock, "--listen",
                                         f"{hosts.SERVER_IP}:7"), stdout=subprocess.DEVNULL)
    time.sleep(1)
    pids = [daemon.proc.pid, echo.pid]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    cpu1 = sum(cpu_seconds(p) for p in pids)
    echo.terminate()
    echo.wait()
    daemon.close()
    return {"seconds": seconds, "cpu_seconds": cpu1 - cpu0, "percent_of_a_core": (cpu1 - cpu0) / seconds * 100}


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels, values, colors = [], [], []
    for p in result["throughput"]:
        labels.append(f"{p['direction']}\n{p['peer']}")
        values.append(p["mpps"])
        colors.append("tab:blue" if p["peer"] == "multistack" else "tab:gray")
    axes[0].bar(labels, values, color=colors)
    axes[0].set_ylabel("Mpps (60-byte UDP frames)")
    axes[0].set_title("multistackd against raw AF_XDP on a veth")
    labels = [f"{'attached' if r['switch_attached'] else 'detached'}\n{'close' if r['connection_close'] else 'keep-alive'}"
              for r in result["legacy"]]
    axes[1].bar(labels, [r["requests_per_s"] for r in result["legacy"]],
                color=["tab:blue" if r["switch_attached"] else "tab:gray" for r in result["legacy"]])
    axes[1].set_ylabel("requests/s")
    axes[1].set_title("nginx on the kernel stack, 1 KB, with and without the switch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    hosts = Hosts(f"bn{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    try:
        throughput = []
        for direction in ("rx", "tx"):
            for peer in ("raw_af_xdp", "multistack"):
                fn = measure_rx if direction == "rx" else measure_tx
                throughput.append(fn(hosts, args.build, tmp, peer, args.seconds))
                print(json.dumps(throughput[-1]), flush=True)
        legacy = measure_legacy(hosts, args.build, tmp, args.seconds)
        for r in legacy:
            print(json.dumps(r), flush=True)
        idle = measure_idle(hosts, args.build, tmp, 10)
        print(json.dumps({"idle": idle}), flush=True)
    finally:
        hosts.close()
    def pick(d, peer):
        return next(p for p in throughput if p["direction"] == d and p["peer"] == peer)
    def legacy_rps(attached, close):
        return next(r["requests_per_s"] for r in legacy if r["switch_attached"] == attached and r["connection_close"] == close)
    summary = {}
    for d in ("rx", "tx"):
        ratio = pick(d, "multistack")["mpps"] / pick(d, "raw_af_xdp")["mpps"]
        summary[f"{d}_vs_raw_af_xdp"] = ratio
        summary[f"{d}_meets_0.9x"] = ratio >= 0.9
        # The client's generator limits rx, so the delivered fraction and the CPU per
        # frame say more about the switch there than the rate does.
        summary[f"{d}_delivered_fraction"] = pick(d, "multistack")["delivered_fraction"]
        cost = "server_core_us_per_frame" if args.testbed == "nic" else "cpu_us_per_frame"
        summary[f"{d}_cpu_per_frame_vs_raw"] = pick(d, "multistack")[cost] / pick(d, "raw_af_xdp")[cost]
    for close in (False, True):
        ratio = legacy_rps(True, close) / legacy_rps(False, close)
        key = "legacy_close" if close else "legacy_keepalive"
        summary[f"{key}_attached_vs_detached"] = ratio
        summary[f"{key}_meets_0.9x"] = ratio >= 0.9
    summary["idle_percent_of_a_core"] = idle["percent_of_a_core"]
    summary["idle_meets_1_percent"] = idle["percent_of_a_core"] < 1.0
    result = {"benchmark": "nic", "testbed": hosts.describe(), "seconds_per_point": args.seconds, "throughput": throughput, "legacy": legacy,
              "idle": idle, "summary": summary}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    plot(result, args.out.rsplit(".", 1)[0] + ".png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
