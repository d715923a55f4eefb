#!/usr/bin/env python3
"""bench/http.sh's driver: the paper's Figure 6. wrk (client namespace, core 0) fetches
files of 1 to 32 KB from, in the same run:
  ms-httpd over UTCP through multistackd; ms-httpd over kernel sockets; nginx (one
  worker, access_log off, sendfile) with TSO on and with TSO off on the server veth;
with Connection: close (the paper's set-up) and with keep-alive. The server side
(server, plus multistackd for UTCP) runs on core 1. It reports requests/s, Gbit/s and
the server's cost per request: its core's busy time (in the NIC-faithful test bed, the
default, all of the server's work, its receive processing included, and none of the
client's; benchlib.py), which the summary compares, and its processes' CPU time
(multistackd included). Then it repeats 1 KB and 32 KB with the server side capped to
half a core by the cgroup cpu controller. Writes JSON and two PNG plots."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (SERVER_CORE, Daemon, Hosts, core_busy_seconds, cpu_seconds, driver_arguments, sh,  # noqa: E402
                      write_nginx_conf)

SIZES_KB = [1, 2, 4, 8, 16, 32]
CONFIGS = ["ms-httpd-utcp", "ms-httpd-kernel", "nginx-tso", "nginx-no-tso"]


class CpuCap:
    """A cgroup (v2, or v1's cpu controller) that holds the server side to `share` of a core."""

    def __init__(self, share):
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(v2):
            self.path = f"/sys/fs/cgroup/msbench{os.getpid()}"
            os.makedirs(self.path, exist_ok=True)
            open(f"{self.path}/cpu.max", "w").write(f"{int(share * 100000)} 100000")
        else:
            self.path = f"/sys/fs/cgroup/cpu/msbench{os.getpid()}"
            os.makedirs(self.path, exist_ok=True)
            open(f"{self.path}/cpu.cfs_period_us", "w").write("100000")
            open(f"{self.path}/cpu.cfs_quota_us", "w").write(str(int(share * 100000)))

    def add(self, pid):
        open(f"{self.path}/cgroup.procs", "w").write(str(pid))

    def close(self):
        os.rmdir(self.path)


class ServerSide:
    """One configuration's server processes on core 1; cpu() sums their CPU time."""

    def __init__(self, hosts, build, tmp, config, www):
        self.procs, self.daemon = [], None
        ip = hosts.SERVER_IP
        if config == "ms-httpd-utcp":
            self.daemon = Daemon(hosts, build, tmp)  # multistackd's defaults, as users run it
            self.url_port = 80
            cmd = [f"{build}/tools/ms-httpd", "--transport", "utcp", "--socket", self.daemon.sock,
                   "--listen", f"{ip}:80", "--root", www]
        elif config == "ms-httpd-kernel":
            self.url_port = 8081
            cmd = [f"{build}/tools/ms-httpd", "--transport", "kernel", "--listen", f"{ip}:8081", "--root", www]
        elif config == "nginx-preload-utcp":
            # The unmodified nginx on UTCP through libmultistack-preload.so (bench/preload.sh);
            # its worker runs as nobody, so the daemon's socket is the nogroup group's.
            self.daemon = Daemon(hosts, build, tmp, ("--group", "nogroup"))
            self.url_port = 8084
            cmd = ["env", f"LD_PRELOAD={os.path.abspath(build)}/src/libmultistack-preload.so",
                   f"MULTISTACK_SOCKET={self.daemon.sock}", "nginx", "-c",
                   write_nginx_conf(tmp, ip, self.url_port, www), "-g", "daemon off;"]
        else:
            # A port per nginx configuration: the previous one's TIME_WAIT sockets stay.
            self.url_port = 8082 if config == "nginx-tso" else 8083
            tso = "on" if config == "nginx-tso" else "off"
            subprocess.run(hosts.server("ethtool", "-K", hosts.SERVER_IF, "tso", tso, "gso", tso), check=True,
                           capture_output=True)
            cmd = ["nginx", "-c", write_nginx_conf(tmp, ip, self.url_port, www), "-g", "daemon off;"]
        proc = subprocess.Popen(hosts.server("taskset", "-c", "1", *cmd), stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        time.sleep(0.8)
        self.config, self.hosts = config, hosts

    def pids(self):
        pids = [p.pid for p in self.procs] + ([self.daemon.proc.pid] if self.daemon else [])
        if self.config.startswith("nginx"):  # the worker is a child of the master
            out = subprocess.run(["pgrep", "-P", str(self.procs[0].pid)], capture_output=True, text=True).stdout
            pids += [int(p) for p in out.split()]
        return pids

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids())

    def close(self):
        for p in self.procs:
            p.send_signal(signal.SIGQUIT if self.config.startswith("nginx") else signal.SIGTERM)
            p.wait(timeout=10)
        if self.daemon:
            self.daemon.close()
        if self.config == "nginx-no-tso":
            subprocess.run(self.hosts.server("ethtool", "-K", self.hosts.SERVER_IF, "tso", "on", "gso", "on"),
                           capture_output=True)


def make_www(tmp):
    """A document root under `tmp` with one file of random bytes per size in SIZES_KB."""
    www = f"{tmp}/www"
    os.makedirs(www)
    for kb in SIZES_KB:
        with open(f"{www}/{kb}k.bin", "wb") as f:
            f.write(os.urandom(kb * 1024))
    return www


def wrk(hosts, port, size_kb, close, seconds, connections):
    args = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if close:
        args += ["-H", "Connection: close"]
    out = sh(*hosts.client(*args, f"http://{hosts.SERVER_IP}:{port}/{size_kb}k.bin"))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": requests, "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "socket_errors": errors.group(1) if errors else "", "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def measure(side, hosts, size_kb, close, args):
    cpu0, core0 = side.cpu(), core_busy_seconds(SERVER_CORE)
    r = wrk(hosts, side.url_port, size_kb, close, args.seconds, args.connections)
    cpu, core = side.cpu() - cpu0, core_busy_seconds(SERVER_CORE) - core0
    requests = max(r["requests"], 1)
    r.update({"config": side.config, "size_kb": size_kb, "connection_close": close,
              "gbit_per_s": r["requests_per_s"] * size_kb * 1024 * 8 / 1e9,
              "server_cpu_us_per_request": cpu * 1e6 / requests,
              "server_core_us_per_request": core * 1e6 / requests})
    print(json.dumps({k: r[k] for k in ("config", "size_kb", "connection_close", "requests_per_s",
                                        "server_core_us_per_request", "server_cpu_us_per_request",
                                        "socket_errors")}), flush=True)
    return r


def run_config(hosts, build, tmp, www, config, args, cap=None, sizes=SIZES_KB):
    side = ServerSide(hosts, build, tmp, config, www)
    results = []
    try:
        if cap:
            for pid in side.pids():
                cap.add(pid)
        for close in (True, False):
            for size in sizes:
                results.append(measure(side, hosts, size, close, args))
    finally:
        side.close()
    return results


def pick(results, config, size, close):
    return next(r for r in results if r["config"] == config and r["size_kb"] == size and r["connection_close"] == close)


def plot(result, path_prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cost = result["summary"]["cost"]
    for metric, ylabel, suffix in (("gbit_per_s", "Gbit/s", ""), (cost, cost.replace("_", " "), "_cpu")):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
        for ax, close in zip(axes, (True, False)):
            for config in CONFIGS:
                ys = [pick(result["uncapped"], config, s, close)[metric] for s in SIZES_KB]
                ax.plot(SIZES_KB, ys, marker="o", label=config)
            ax.set_xscale("log", base=2)
            ax.set_xticks(SIZES_KB, [f"{s} KB" for s in SIZES_KB])
            ax.set_title("Connection: close (one request per connection)" if close else "keep-alive")
            ax.set_xlabel("fetch size")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=8)
        fig.suptitle("Figure 6: HTTP server on UTCP against nginx on the kernel (server side on one core)")
        fig.tight_layout()
        fig.savefig(f"{path_prefix}{suffix}.png", dpi=110)


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="for exploring: a subset, no summary")
    args = ap.parse_args()
    hosts = Hosts(f"bh{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    www = make_www(tmp)
    try:
        configs = args.configs.split(",")
        uncapped = [r for c in configs for r in run_config(hosts, args.build, tmp, www, c, args)]
        if configs != CONFIGS:
            return
        cap = CpuCap(0.5)
        try:
            capped = [r for c in CONFIGS for r in run_config(hosts, args.build, tmp, www, c, args, cap, [1, 32])]
        finally:
            cap.close()
    finally:
        hosts.close()
    summary = {}
    # The server's cost: its core's busy time in the NIC-faithful test bed, its processes'
    # CPU time on plain veths (where its core also runs the client's receive).
    cost = "server_core_us_per_request" if args.testbed == "nic" else "server_cpu_us_per_request"
    summary["cost"] = cost
    for size, close, target in ((1, True, 2.0), (32, True, 1.3), (1, False, 1.5)):
        mode = "close" if close else "keepalive"
        ours = pick(uncapped, "ms-httpd-utcp", size, close)
        nginx = pick(uncapped, "nginx-tso", size, close)
        ratio = nginx[cost] / ours[cost]
        summary[f"cpu_per_request_better_than_nginx_{size}k_{mode}"] = ratio
        summary[f"meets_{target}x_{size}k_{mode}"] = ratio >= target
    for size in (1, 32):
        for close in (True, False):
            mode = "close" if close else "keepalive"
            summary[f"capped_rps_vs_nginx_{size}k_{mode}"] = (pick(capped, "ms-httpd-utcp", size, close)["requests_per_s"] /
                                                              pick(capped, "nginx-tso", size, close)["requests_per_s"])
    summary["socket_errors_anywhere"] = any(r["socket_errors"] or r["non_2xx"] for r in uncapped + capped)
    result = {"testbed": hosts.describe(), "seconds": args.seconds, "connections": args.connections,
              "uncapped": uncapped, "capped_half_core": capped, "summary": summary}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.splitext(args.out)[0])
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
