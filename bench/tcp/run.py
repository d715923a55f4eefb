#!/usr/bin/env python3
"""bench/tcp.sh's driver: one bulk TCP flow in each direction, and connection set-up and
teardown rates, with the server end on UTCP (through multistackd) and on the kernel, in
the same run, on the same veth. The client end is always the kernel's (ms-tcp-bench).
The server side (server, plus multistackd for UTCP) is pinned to core 1, the client to
core 0. The server's cost per byte is its core's busy time (in the NIC-faithful test bed,
the default, that is all of the server's work and nothing of the client's; benchlib.py),
beside its processes' CPU time. Each figure is the median of --repeat runs. Writes JSON
and a PNG plot."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (SERVER_CORE, Daemon, Hosts, core_busy_seconds, cpu_seconds, driver_arguments,  # noqa: E402
                      run_json, system_busy_seconds)


class Server:
    """ms-tcp-bench serve on the server side, pinned to core 1."""

    def __init__(self, hosts, build, stack, port, mode, daemon=None, bytes_=0):
        cmd = [f"{build}/bench/ms-tcp-bench", "serve", "--stack", stack, "--listen", f"{hosts.SERVER_IP}:{port}",
               "--mode", mode, "--bytes", str(bytes_)]
        if daemon:
            cmd += ["--socket", daemon.sock]
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", "1", *cmd), stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "serving":
            raise RuntimeError(f"ms-tcp-bench serve --stack {stack} did not start")
        self.pids = [self.proc.pid] + ([daemon.proc.pid] if daemon else [])

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def timed(server, client_cmd):
    """Runs the client; returns its JSON plus the server side's and the system's CPU."""
    server_cpu0, core0, system0 = server.cpu(), core_busy_seconds(SERVER_CORE), system_busy_seconds()
    out = run_json(client_cmd)
    out["server_cpu_s"] = server.cpu() - server_cpu0
    out["server_core_s"] = core_busy_seconds(SERVER_CORE) - core0
    out["system_cpu_s"] = system_busy_seconds() - system0
    return out


def median_run(runs, key):
    return statistics.median(r[key] for r in runs)


# name: (server stack, port base, segmentation offloads on the server veth). Separate
# ports per configuration: the kernel's TIME_WAIT sockets keep its ports bound.
CONFIGS = {
    "kernel": ("kernel", 5000, True),
    "kernel_no_offload": ("kernel", 5100, False),
    "utcp": ("utcp", 6000, True),
}


def set_offloads(hosts, on):
    """TSO, GSO and GRO on the server veth: the kernel's 64 KB super-packets, which
    AF_XDP does not have; off, the kernel moves MTU-sized packets as UTCP does. In the
    NIC-faithful test bed GRO stays on (a NIC's receive path; it carries threaded NAPI)."""
    state = "on" if on else "off"
    features = ["tso", state, "gso", state] + (["gro", state] if hosts.testbed == "veth" else [])
    subprocess.run(hosts.server("ethtool", "-K", hosts.SERVER_IF, *features), check=True, capture_output=True)
    hosts.pin_napi()


def measure_stack(hosts, build, tmp, name, args):
    stack, base, offloads = CONFIGS[name]
    daemon = Daemon(hosts, build, tmp) if stack == "utcp" else None  # multistackd's defaults, as users run it
    set_offloads(hosts, offloads)
    result = {"stack": name}
    try:
        client = [f"{build}/bench/ms-tcp-bench"]
        for direction, mode, verb, port in (("to_server", "sink", "send", base + 1), ("from_server", "source", "receive", base + 2)):
            server = Server(hosts, build, stack, port, mode, daemon, args.bytes)
            cmd = hosts.client("taskset", "-c", "0", *client, verb, "--connect", f"{hosts.SERVER_IP}:{port}",
                               "--bytes", str(args.bytes))
            runs = [timed(server, cmd) for _ in range(args.repeat)]
            server.close()
            result[direction] = {
                "gbit_per_s": median_run(runs, "gbit_per_s"),
                "server_cpu_ns_per_byte": statistics.median(r["server_cpu_s"] / r["bytes"] * 1e9 for r in runs),
                "server_core_ns_per_byte": statistics.median(r["server_core_s"] / r["bytes"] * 1e9 for r in runs),
                "system_cpu_ns_per_byte": statistics.median(r["system_cpu_s"] / r["bytes"] * 1e9 for r in runs),
                "runs": runs,
            }
            print(json.dumps({name: {direction: result[direction]["gbit_per_s"]}}), flush=True)
        server = Server(hosts, build, stack, base + 3, "accept", daemon)
        for parallel, count in ((1, args.connections // 4), (100, args.connections)):
            cmd = hosts.client("taskset", "-c", "0", *client, "connect", "--connect", f"{hosts.SERVER_IP}:{base + 3}",
                               "--count", str(count), "--parallel", str(parallel))
            runs = [timed(server, cmd) for _ in range(args.repeat)]
            result[f"connections_parallel_{parallel}"] = {
                "per_second": median_run(runs, "per_second"),
                "server_cpu_us_per_connection": statistics.median(r["server_cpu_s"] / r["connections"] * 1e6
                                                                  for r in runs),
                "server_core_us_per_connection": statistics.median(r["server_core_s"] / r["connections"] * 1e6
                                                                   for r in runs),
                "runs": runs,
            }
            print(json.dumps({name: {f"cps_{parallel}": result[f"connections_parallel_{parallel}"]["per_second"]}}),
                  flush=True)
        server.close()
    finally:
        set_offloads(hosts, True)
        if daemon:
            daemon.close()
    return result


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stacks = [r["stack"] for r in result["stacks"]]
    colors = ["tab:blue" if s == "utcp" else "tab:gray" for s in stacks]
    panels = [("to_server", "gbit_per_s", "goodput to the server, Gbit/s"),
              ("from_server", "gbit_per_s", "goodput from the server, Gbit/s"),
              ("connections_parallel_1", "per_second", "connections/s, one at a time"),
              ("connections_parallel_100", "per_second", "connections/s, 100 in parallel")]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 4))
    for ax, (key, field, title) in zip(axes, panels):
        ax.bar([s.replace("_", "\n", 1) for s in stacks], [r[key][field] for r in result["stacks"]], color=colors)
        ax.set_title(title, fontsize=10)
    fig.suptitle("server end on UTCP (through multistackd) and on the kernel, same veth, same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--connections", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stacks", default=",".join(CONFIGS))
    args = ap.parse_args()
    hosts = Hosts(f"bt{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    try:
        stacks = [measure_stack(hosts, args.build, tmp, stack, args) for stack in args.stacks.split(",")]
    finally:
        hosts.close()
    by_name = {r["stack"]: r for r in stacks}
    if "utcp" not in by_name or len(by_name) < 2:  # exploring one configuration: nothing to compare
        return
    utcp = by_name["utcp"]
    summary = {}
    for peer in (n for n in by_name if n != "utcp"):
        kernel = by_name[peer]
        for d in ("to_server", "from_server"):
            summary[f"{d}_goodput_vs_{peer}"] = utcp[d]["gbit_per_s"] / kernel[d]["gbit_per_s"]
            summary[f"{d}_system_cpu_per_byte_vs_{peer}"] = (utcp[d]["system_cpu_ns_per_byte"] /
                                                             kernel[d]["system_cpu_ns_per_byte"])
            summary[f"{d}_server_core_per_byte_vs_{peer}"] = (utcp[d]["server_core_ns_per_byte"] /
                                                              kernel[d]["server_core_ns_per_byte"])
        for p in (1, 100):
            k = f"connections_parallel_{p}"
            summary[f"{k}_vs_{peer}"] = utcp[k]["per_second"] / kernel[k]["per_second"]
    if "kernel" in by_name:
        summary["meets_1.0x_goodput"] = all(summary[f"{d}_goodput_vs_kernel"] >= 1.0 for d in ("to_server", "from_server"))
    result = {"testbed": hosts.describe(), "bytes_per_flow": args.bytes, "repeat": args.repeat,
              "stacks": stacks, "summary": summary}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.splitext(args.out)[0] + ".png")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
