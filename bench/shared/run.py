#!/usr/bin/env python3
"""bench/shared.sh's driver: shared claims (several processes serving one TCP port over
UTCP, multistackd steering each new connection to one member by a hash of its 4-tuple),
side by side in one run. wrk fetches a 1 KB file with Connection: close and with
keep-alive from:
  nginx-utcp-2     nginx, 2 workers, under libmultistack-preload.so (the master opens the
                   listener, the workers join its claim)
  nginx-kernel-2   the same nginx configuration, 2 workers, on the kernel's sockets
  nginx-utcp-1     nginx, 1 worker, under the preload (reference)
  nginx-kernel-1   nginx, 1 worker, on the kernel (reference)
  httpd-utcp-2     ms-httpd --workers 2 on UTCP (SO_REUSEPORT: a shared claim)
  httpd-utcp-1     ms-httpd --workers 1 on UTCP
Every point gets a fresh server side (and a fresh multistackd for UTCP) on a port of its
own, so each worker's count covers exactly the measured run. Two placements of the
server side, wrk (one thread) always pinned on core 0 and the NIC-faithful test bed's
NAPI threads where benchlib.py pins them (server end core 1, client end core 0):
  core1   the server side (workers and multistackd) on core 1 only, as every other
          benchmark here: cost is core 1's busy time per request, exactly the server's
          work; 2 workers then share one core, so this shows what sharing costs.
  cores01 the workers may run on cores 0 and 1 (multistackd stays on core 1, as
          benchlib.Daemon pins it): the server side may use the client's core too, which
          is the only way 2 workers can get more CPU than 1 on this 2-core machine. Cost:
          both cores' busy time minus what is the client's (wrk's CPU time from wait4,
          and the client veth end's NAPI threads' CPU time) per request.
Balance: each worker's share of the requests (nginx: an access log of $pid; ms-httpd:
each worker's JSON line at SIGTERM), as the largest share over the mean share (1.0 is
even). Writes JSON."""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (CLIENT_CORE, SERVER_CORE, Daemon, Hosts, core_busy_seconds, cpu_seconds,  # noqa: E402
                      driver_arguments, napi_threads)

CONFIGS = ["nginx-utcp-2", "nginx-kernel-2", "nginx-utcp-1", "nginx-kernel-1", "httpd-utcp-2", "httpd-utcp-1"]
LOADS = [True, False]  # Connection: close, keep-alive
PLACEMENTS = {"core1": str(SERVER_CORE), "cores01": f"{CLIENT_CORE},{SERVER_CORE}"}
SIZE_KB = 1


def write_nginx_conf(tmp, ip, port, root, workers):
    """The same nginx configuration for the preload and the kernel: WORKERS workers, the
    listener opened by the master and inherited by the workers (no `reuseport`: under the
    preload the workers join the master's claim; on the kernel they share one accept
    queue), sendfile, and an access log of the worker's pid, buffered so that it costs
    little. Workers run as root, as in tests/netns/shared_listeners.sh."""
    for d in (tmp, root):
        os.chmod(d, 0o755)
    conf = f"""user root;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  log_format worker '$pid';
  access_log {tmp}/access.log worker buffer=64k flush=1s;
  sendfile on;
  keepalive_requests 1000000;
  server {{ listen {ip}:{port} backlog=4096; root {root}; }}
}}
"""
    path = f"{tmp}/nginx.conf"
    with open(path, "w") as f:
        f.write(conf)
    return path


def wait_until(what, check, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def count_in(path, pattern):
    try:
        return len(re.findall(pattern, open(path).read(), re.M))
    except OSError:
        return 0


class ServerSide:
    """One point's server processes, started on the placement's cores."""

    def __init__(self, hosts, build, tmp, config, www, port, cpus):
        kind, stack, workers = config.split("-")
        self.kind, self.stack, self.workers = kind, stack, int(workers)
        self.config, self.hosts, self.tmp, self.port = config, hosts, tmp, port
        self.daemon = None
        ip = hosts.SERVER_IP
        if stack == "utcp":
            # nginx's workers would run as nobody without `user root`: the socket's group
            # is nogroup's all the same, as bench/preload.sh has it.
            self.daemon = Daemon(hosts, build, tmp, ("--group", "nogroup"))
        hosts.pin_napi()
        self.out = open(f"{tmp}/server.out", "w")
        if kind == "nginx":
            cmd = ["nginx", "-c", write_nginx_conf(tmp, ip, port, www, self.workers), "-g", "daemon off;"]
            if self.daemon:
                cmd = ["env", f"LD_PRELOAD={os.path.abspath(build)}/src/libmultistack-preload.so",
                       f"MULTISTACK_SOCKET={self.daemon.sock}", "MULTISTACK_LOG=2", *cmd]
        else:
            cmd = [f"{build}/tools/ms-httpd", "--transport", "utcp", "--socket", self.daemon.sock, "--listen",
                   f"{ip}:{port}", "--root", www, "--workers", str(self.workers)]
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", cpus, *cmd), stdout=self.out,
                                     stderr=subprocess.STDOUT)
        try:
            self.wait_ready()
        except Exception:
            self.close()
            raise

    def wait_ready(self):
        out, dlog = f"{self.tmp}/server.out", f"{self.tmp}/daemon.log"
        listen = re.escape(f"{self.hosts.SERVER_IP}:{self.port}")
        if self.kind == "nginx":
            wait_until("nginx's workers", lambda: len(self.worker_pids()) == self.workers)
            if self.daemon:
                wait_until("nginx's listener on UTCP", lambda: count_in(out, f"listening on {listen} over UTCP") >= 1)
                # Each worker joins the master's claim when it starts.
                wait_until(f"{self.workers} nginx workers joining the claim",
                           lambda: count_in(dlog, f"joins tcp {listen}$") >= self.workers)
            else:
                time.sleep(0.5)
        else:
            wait_until("ms-httpd's workers", lambda: count_in(out, r"^ms-httpd: serving") >= self.workers)
        time.sleep(0.3)

    def worker_pids(self):
        if self.kind == "httpd" and self.workers == 1:
            return [self.proc.pid]  # ip netns exec and taskset exec: the server is this pid
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def pids(self):
        pids = {self.proc.pid, *self.worker_pids()}
        if self.daemon:
            pids.add(self.daemon.proc.pid)
        return sorted(pids)

    def cpu(self):
        total = 0.0
        for p in self.pids():
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    def daemon_cpu(self):
        return cpu_seconds(self.daemon.proc.pid) if self.daemon else 0.0

    def close(self):
        """Stops the server side; returns each worker's requests {pid: n}."""
        workers = self.worker_pids()
        self.proc.send_signal(signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM)
        self.master_kicked = False
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            if self.kind != "nginx" or self.worker_pids():
                raise
            # Seen under the preload: the workers are gone but the master sleeps on in
            # sigsuspend. The preload's service thread does not block signals, so the
            # workers' SIGCHLD can run nginx's handler on that thread (which reaps them)
            # while the master's own thread is never woken. Any signal wakes it.
            self.master_kicked = True
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(timeout=10)
        self.out.close()
        if self.daemon:
            self.daemon.close()
        counts = {w: 0 for w in workers}
        if self.kind == "nginx":
            for line in open(f"{self.tmp}/access.log"):
                pid = int(line)
                counts[pid] = counts.get(pid, 0) + 1
        else:
            for line in open(f"{self.tmp}/server.out"):
                if line.startswith("{"):
                    st = json.loads(line)
                    counts[st["pid"]] = st["requests"]
        return counts


def napi_cpu(hosts, ifname):
    total = 0.0
    for pid, comm in napi_threads().items():
        if comm[len("napi/"):].startswith((ifname + "-")[:10]):
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
    return total


def wrk(hosts, port, close, seconds, connections, tmp):
    """wrk (one thread) on core 0; returns its parsed output and its CPU time (wait4)."""
    args = ["taskset", "-c", str(CLIENT_CORE), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if close:
        args += ["-H", "Connection: close"]
    with open(f"{tmp}/wrk.out", "w") as out:
        proc = subprocess.Popen(hosts.client(*args, f"http://{hosts.SERVER_IP}:{port}/{SIZE_KB}k.bin"), stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = open(f"{tmp}/wrk.out").read()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk: {text}")
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests": int(re.search(r"(\d+) requests in", text).group(1)),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "socket_errors": errors.group(1) if errors else "", "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "client_cpu_s": usage.ru_utime + usage.ru_stime}


def balance(counts):
    """Largest share over the mean share of the workers' requests (1.0: even)."""
    values = list(counts.values())
    if not values or sum(values) == 0:
        return None
    return max(values) / (sum(values) / len(values))


def point(hosts, build, www, config, placement, close, port, args):
    tmp = tempfile.mkdtemp(prefix="msshared")
    side = ServerSide(hosts, build, tmp, config, www, port, PLACEMENTS[placement])
    try:
        before = (core_busy_seconds(CLIENT_CORE), core_busy_seconds(SERVER_CORE), side.cpu(),
                  napi_cpu(hosts, hosts.CLIENT_IF), napi_cpu(hosts, hosts.SERVER_IF), side.daemon_cpu())
        r = wrk(hosts, port, close, args.seconds, args.connections, tmp)
        after = (core_busy_seconds(CLIENT_CORE), core_busy_seconds(SERVER_CORE), side.cpu(),
                 napi_cpu(hosts, hosts.CLIENT_IF), napi_cpu(hosts, hosts.SERVER_IF), side.daemon_cpu())
    finally:
        counts = side.close()
    core0, core1, procs, client_napi, server_napi, daemon = (a - b for a, b in zip(after, before))
    n = max(r["requests"], 1)
    served = sum(counts.values())
    r.update({
        "config": config, "placement": placement, "size_kb": SIZE_KB, "connection_close": close, "port": port,
        "gbit_per_s": r["requests_per_s"] * SIZE_KB * 1024 * 8 / 1e9,
        # core 1's busy time: all of the server's work when it runs on core 1 only.
        "server_core_us_per_request": core1 * 1e6 / n,
        # both cores' busy time less the client's (wrk, the client end's NAPI threads).
        "server_us_per_request": (core0 + core1 - r["client_cpu_s"] - client_napi) * 1e6 / n,
        # the server's processes (multistackd included) and the server end's NAPI threads.
        "server_procs_us_per_request": (procs + server_napi) * 1e6 / n,
        "machine_busy_us_per_request": (core0 + core1) * 1e6 / n,
        "core0_busy_s": core0, "core1_busy_s": core1, "client_napi_cpu_s": client_napi,
        "server_napi_cpu_s": server_napi, "server_procs_cpu_s": procs,
        # multistackd's share of that: its switch worker polls (yielding) while there is traffic.
        "multistackd_cpu_s": daemon,
        "worker_requests": {str(k): v for k, v in sorted(counts.items())},
        # wrk counts completed responses; the workers count the requests they answered
        # (including those wrk cut off at its end).
        "workers_served": served,
        "balance_max_over_mean": balance(counts) if side.workers > 1 else None,
        "nginx_master_needed_a_second_signal": side.master_kicked,
    })
    if r["connection_close"] is False and side.workers > 1:
        r["note"] = "keep-alive: a worker's share follows the few (--connections) connections steered to it"
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                      if k in ("config", "placement", "connection_close", "requests_per_s",
                               "server_core_us_per_request", "server_us_per_request", "balance_max_over_mean",
                               "worker_requests", "socket_errors")}),
          flush=True)
    return r


def pick(results, **match):
    return [r for r in results if all(r[k] == v for k, v in match.items())]


def ratios(results, rnd):
    """The summary's ratios for one round: per placement, requests/s and cost per request
    (core 1's busy time for core1, the server's share of both cores for cores01)."""
    s = {}
    for placement in PLACEMENTS:
        cost = "server_core_us_per_request" if placement == "core1" else "server_us_per_request"
        ps = {"cost": cost}

        def get(config, close, key):
            return pick(results, round=rnd, placement=placement, config=config, connection_close=close)[0][key]

        for close in LOADS:
            mode = f"{SIZE_KB}k_{'close' if close else 'keepalive'}"
            for name, a, b in (("utcp_vs_kernel_nginx2", "nginx-utcp-2", "nginx-kernel-2"),
                               ("httpd_workers2_vs_1", "httpd-utcp-2", "httpd-utcp-1"),
                               ("nginx_utcp_workers2_vs_1", "nginx-utcp-2", "nginx-utcp-1"),
                               ("nginx_kernel_workers2_vs_1", "nginx-kernel-2", "nginx-kernel-1")):
                ps[f"{name}_rps_{mode}"] = get(a, close, "requests_per_s") / get(b, close, "requests_per_s")
                ps[f"{name}_cpu_per_request_{mode}"] = get(a, close, cost) / get(b, close, cost)
            for name, config in (("nginx2_utcp", "nginx-utcp-2"), ("httpd2_utcp", "httpd-utcp-2"),
                                 ("nginx2_kernel_reference", "nginx-kernel-2")):
                ps[f"balance_{name}_{mode}"] = get(config, close, "balance_max_over_mean")
        s[f"server_on_{placement}"] = ps
    return s


def merge(rounds):
    """The mean over rounds of each ratio, with every round's value beside it."""
    out = {}
    for placement in rounds[0]:
        out[placement] = {}
        for key, value in rounds[0][placement].items():
            if isinstance(value, str):
                out[placement][key] = value
                continue
            values = [r[placement][key] for r in rounds]
            out[placement][key] = statistics.mean(values)
            if len(values) > 1:
                out[placement][key + "_rounds"] = values
    return out


NOTES = (
    "2 cores. wrk (1 thread) is pinned on core 0 in every run; the NIC-faithful test bed pins the server veth "
    "end's NAPI thread on core 1 and the client end's on core 0 (benchlib.py). Placement core1: the whole server "
    "side (nginx master and workers or ms-httpd's processes, and multistackd) on core 1, the model of every other "
    "benchmark here; cost = core 1's busy time per request, exactly the server's work; the client has core 0 to "
    "itself, and 2 workers share one core. Placement cores01: the server's workers may run on cores 0 and 1 "
    "(taskset 0,1; multistackd stays on core 1 where benchlib.Daemon pins it), so they compete with wrk for core 0; "
    "cost = busy time of both cores minus the client's share, the latter being wrk's CPU time (wait4 rusage) plus "
    "the client veth end's NAPI threads' CPU time; softirq work on core 0 outside those threads (RPS backlog) is "
    "not subtracted, so this cost is an upper bound. server_procs_us_per_request (server processes plus the "
    "server end's NAPI threads) is a lower bound for either placement. nginx: the same configuration on both "
    "stacks (user root, listener opened by the master and inherited, no reuseport, sendfile, access_log of $pid "
    "buffered 64k/1s, which all nginx runs pay); balance counts come from that log. ms-httpd: each worker's "
    "JSON line at SIGTERM. multistackd's switch worker polls (yielding the core) while traffic flows "
    "(multistackd_cpu_s): on core 1 it competes with the workers for their core, and in cores01 it keeps core 1 "
    "looking busy, so the workers may run on core 0 beside wrk (compare client_cpu_s across placements). "
    "nginx_master_needed_a_second_signal: how often nginx's master did not exit on SIGQUIT (it once missed its "
    "workers' SIGCHLD, taken by the preload's stack thread, which now blocks every signal: 0 is expected). "
    "Every point has a fresh server side and multistackd on a port of its own. "
    "Ratios: A_vs_B_rps = A's requests/s over B's; A_vs_B_cpu_per_request = A's cost over B's (below 1: A is "
    "cheaper); balance = the largest worker's requests over the mean per worker (1.0 even, 2.0 one of two did all).")


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="the whole set, repeated; the summary gives each round")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="for exploring: a subset, no summary")
    ap.add_argument("--placements", default=",".join(PLACEMENTS), help="for exploring: a subset, no summary")
    args = ap.parse_args()
    configs, placements = args.configs.split(","), args.placements.split(",")
    hosts = Hosts(f"bs{os.getpid() % 10000}", args.testbed)
    www = tempfile.mkdtemp(prefix="msshared-www")
    with open(f"{www}/{SIZE_KB}k.bin", "wb") as f:
        f.write(os.urandom(SIZE_KB * 1024))
    results, port = [], 8100
    try:
        for rnd in range(args.rounds):
            for placement in placements:
                for config in configs:
                    for close in LOADS:
                        r = point(hosts, args.build, www, config, placement, close, port, args)
                        r["round"] = rnd
                        results.append(r)
                        port += 1
    finally:
        hosts.close()
    if configs != CONFIGS or placements != list(PLACEMENTS):
        return
    summary = merge([ratios(results, rnd) for rnd in range(args.rounds)])
    summary["socket_errors_anywhere"] = any(r["socket_errors"] or r["non_2xx"] for r in results)
    summary["nginx_masters_that_needed_a_second_signal"] = sum(r["nginx_master_needed_a_second_signal"]
                                                               for r in results)
    result = {"testbed": hosts.describe(), "seconds": args.seconds, "connections": args.connections,
              "rounds": args.rounds, "size_kb": SIZE_KB, "notes": NOTES, "results": results, "summary": summary}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
