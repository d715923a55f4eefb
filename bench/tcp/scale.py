#!/usr/bin/env python3
"""bench/tcp.sh scale: connections at scale. In the same run, on the same veth:
  - memory per idle connection: a kernel client opens --connections idle connections to a
    UTCP server (utcp-echo) and to a kernel server (tests/netns/tcp_many.py server, which
    accepts and holds), from several source addresses. Measured the same way for both:
    the server processes' RSS growth plus the kernel's slab growth on the server's behalf
    (live objects in /proc/slabinfo, which freed-but-cached slab memory does not blur).
    The kernel client's sockets are the same in both runs and UTCP keeps no kernel object
    per connection, so the kernel server's slab share is its run's slab growth less UTCP's
    run's. The machine's used memory (MemTotal - MemAvailable) is recorded too.
  - churn: --churn short connections (16 bytes echoed, then closed), 200 at a time,
    through one utcp-echo, with its RSS sampled every 10 % of them: flat RSS means no
    memory grows with connections that are gone.
Writes bench/results/tcp_scale.json."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import ROOT, Daemon, Hosts, driver_arguments, rss_kib, sh  # noqa: E402

MANY = f"{ROOT}/tests/netns/tcp_many.py"
SOURCES = [f"198.18.0.{i}" for i in range(10, 14)]  # 4 x 64k client ports
PER_PROCESS = 15_000  # sockets per process: the hard descriptor limit here is 20000
CLIENTS = 8           # kernel client processes (100k / 8 per process)


def used_kib():
    info = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    return int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])


def slab_bytes():
    """Bytes of live slab objects (active objects x object size), all caches."""
    total = 0
    with open("/proc/slabinfo") as f:
        for line in f:
            if line.startswith(("slabinfo", "#")):
                continue
            fields = line.split()
            total += int(fields[1]) * int(fields[3])
    return total


def spawn(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start(cmd, ready, proc=None):
    """Starts cmd (unless it runs already as proc) and waits for a line with `ready`."""
    proc = proc or spawn(cmd)
    seen = []
    for line in proc.stdout:
        if ready in line:
            return proc, line
        seen.append(line)
    raise RuntimeError(f"{' '.join(cmd)}: no '{ready}' in: {''.join(seen[-5:])}")


def leaf_pid(proc):
    """The pid of the program at the end of `ip netns exec ... taskset ...` (exec chains keep the pid)."""
    return proc.pid


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def idle(hosts, server_cmd, ready, port, n, servers=1):
    """Used memory and the servers' RSS growth for n idle connections. A process may hold
    at most PER_PROCESS sockets here (the hard descriptor limit), so the kernel client is
    several processes, and so is the kernel server (sharing its port)."""
    procs = [start(hosts.server("taskset", "-c", "1", *server_cmd), ready)[0] for _ in range(servers)]
    try:
        time.sleep(1)
        used0, slab0, rss0 = used_kib(), slab_bytes(), sum(rss_kib(leaf_pid(p)) for p in procs)
        started = time.monotonic()
        parts = [n // CLIENTS + (1 if i < n % CLIENTS else 0) for i in range(CLIENTS)]
        cmds = [hosts.client("taskset", "-c", "0", "/usr/bin/python3", MANY, "hold", hosts.SERVER_IP, str(port),
                             "--connections", str(part), "--sources", ",".join(SOURCES)) for part in parts if part]
        running = [spawn(cmd) for cmd in cmds]  # all at once
        clients = [start(cmd, "established", proc) for cmd, proc in zip(cmds, running)]
        made = sum(json.loads(line)["established"] for _, line in clients)
        seconds = time.monotonic() - started
        time.sleep(3)  # let the memory settle (SYN queues drained, slabs filled)
        used1, slab1, rss1 = used_kib(), slab_bytes(), sum(rss_kib(leaf_pid(p)) for p in procs)
        for client, _ in clients:
            client.stdin.close()
            client.wait(timeout=120)
        if made != n:
            raise RuntimeError(f"only {made} of {n} connections were made")
        return {"connections": n, "used_growth_kib": used1 - used0, "slab_growth_bytes": slab1 - slab0,
                "server_rss_growth_kib": rss1 - rss0,
                "connect_seconds": seconds, "server_processes": servers}
    finally:
        for p in procs:
            stop(p)


def churn(hosts, build, daemon, port, total):
    server, _ = start(hosts.server("taskset", "-c", "1", f"{build}/tools/utcp-echo", "--socket", daemon.sock,
                                   "--listen", f"{hosts.SERVER_IP}:{port}"), "echoing")
    try:
        pid = leaf_pid(server)
        every = max(total // 10, 1)
        client = subprocess.Popen(hosts.client("taskset", "-c", "0", "/usr/bin/python3", MANY, "churn", hosts.SERVER_IP,
                                               str(port), "--connections", str(total), "--every", str(every),
                                               "--sources", ",".join(SOURCES)),
                                  stdout=subprocess.PIPE, text=True)
        samples = [{"done": 0, "rss_kib": rss_kib(pid)}]
        final = None
        for line in client.stdout:
            rec = json.loads(line)
            if "failed" in rec:
                final = rec
            else:
                samples.append({"done": rec["done"], "rss_kib": rss_kib(pid)})
        client.wait()
        return {"connections": total, "samples": samples, "final": final}
    finally:
        stop(server)


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--connections", type=int, default=100_000)
    ap.add_argument("--churn", type=int, default=1_000_000)
    args = ap.parse_args()
    hosts = Hosts(f"bs{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    try:
        for addr in SOURCES:
            sh(*hosts.client("ip", "addr", "add", f"{addr}/24", "dev", hosts.CLIENT_IF))
        sh(*hosts.client("sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"))
        sh(*hosts.server("sysctl", "-qw", "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535"))
        daemon = Daemon(hosts, args.build, tmp)
        try:
            n = args.connections
            utcp = idle(hosts, [f"{args.build}/tools/utcp-echo", "--socket", daemon.sock, "--listen",
                                f"{hosts.SERVER_IP}:7000"], "echoing", 7000, n)
            kernel = idle(hosts, ["/usr/bin/python3", "-u", MANY, "server", hosts.SERVER_IP, "7100"], "listening", 7100, n,
                          servers=-(-n // (PER_PROCESS * 3 // 4)))  # room for an uneven SO_REUSEPORT spread
            churned = churn(hosts, args.build, daemon, 7200, args.churn) if args.churn else None
        finally:
            daemon.close()
    finally:
        hosts.close()
    utcp_bytes = utcp["server_rss_growth_kib"] * 1024 / n
    kernel_bytes = (kernel["server_rss_growth_kib"] * 1024 + kernel["slab_growth_bytes"] - utcp["slab_growth_bytes"]) / n
    summary = {"connections": n, "utcp_bytes_per_idle_connection": round(utcp_bytes),
               "kernel_bytes_per_idle_connection": round(kernel_bytes),
               "utcp_below_kernel": utcp_bytes < kernel_bytes}
    if churned:
        rss = [s["rss_kib"] for s in churned["samples"][1:]]
        summary["churned"] = churned["final"]["done"] if churned["final"] else 0
        summary["churn_failed"] = churned["final"]["failed"] if churned["final"] else None
        summary["churn_rss_kib_first_last"] = [rss[0], rss[-1]] if rss else None
    with open(args.out, "w") as f:
        json.dump({"testbed": hosts.describe(), "clients": "kernel, from 4 source addresses", "idle": {"utcp": utcp, "kernel": kernel},
                   "churn": churned, "summary": summary}, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
