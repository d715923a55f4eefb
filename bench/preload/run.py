#!/usr/bin/env python3
"""bench/preload.sh's driver: unmodified programs on UTCP through libmultistack-preload.so
against the same programs on the kernel, side by side in one run.
  - Figure 6 with the unmodified nginx binary (one worker, sendfile, access_log off):
    nginx under the preload on UTCP, nginx on the kernel (TSO on), and ms-httpd on UTCP's
    event API (the preload's own cost); wrk fetches 1 KB and 32 KB files with
    Connection: close and 1 KB with keep-alive. Cost: the server core's busy time per
    request (the NIC-faithful test bed, benchlib.py).
  - redis-server under the preload on UTCP against redis-server on the kernel;
    redis-benchmark GET and SET (50 connections) from the client core. Figure: requests
    per second of server-core busy time.
  - the cost of one socket call on a ready socket (bench/micro/socket_calls_bench.cpp):
    epoll_wait, a 64-byte recv and a 64-byte send, on the kernel, on UTCP under the
    preload, and through UTCP's event API.
The server side (server, plus multistackd for UTCP) runs on core 1, clients on core 0.
Targets (issue 26): the preload's own cost (nginx under it / ms-httpd) at most 1.15x with
1 KB keep-alive and 1.1x with 1 KB close; redis at least the kernel's requests per core
second; nginx under the preload at least 1.3x the kernel's requests per core at 1 KB close.
Writes JSON and a PNG plot."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from benchlib import SERVER_CORE, Daemon, Hosts, core_busy_seconds, driver_arguments, run_json, sh  # noqa: E402


def load_http_driver():
    """bench/http/run.py, whose server sides and measurement this driver shares."""
    spec = importlib.util.spec_from_file_location("http_driver", os.path.join(HERE, "..", "http", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


http_driver = load_http_driver()
ServerSide, measure = http_driver.ServerSide, http_driver.measure

HTTP_CONFIGS = ["nginx-preload-utcp", "nginx-tso", "ms-httpd-utcp"]
HTTP_CASES = [(1, True), (32, True), (1, False)]  # (size KB, Connection: close)
REDIS_CONFIGS = ["redis-preload-utcp", "redis-kernel"]
REDIS_TESTS = ["get", "set"]
CALLS_APIS = ["kernel", "preload", "event"]  # ms-socket-calls: the POSIX calls on each stack, and the event API
CALLS_SOURCE_PORT, CALLS_SINK_PORT = 9201, 9202


def http_runs(hosts, build, tmp, www, args):
    results = []
    for config in HTTP_CONFIGS:
        side = ServerSide(hosts, build, tmp, config, www)
        try:
            for size, close in HTTP_CASES:
                r = measure(side, hosts, size, close, args)
                if r["socket_errors"] or r["non_2xx"]:
                    raise RuntimeError(f"{config}: errors {r['socket_errors']} non-2xx {r['non_2xx']}")
                results.append(r)
        finally:
            side.close()
    return results


class RedisSide:
    """redis-server on core 1, on UTCP through the preload or on the kernel."""

    def __init__(self, hosts, build, tmp, config):
        self.daemon, self.port = None, 6380 if config == "redis-kernel" else 6379
        cmd = ["redis-server", "--bind", hosts.SERVER_IP, "--port", str(self.port), "--save", "", "--appendonly", "no",
               "--protected-mode", "no"]
        if config == "redis-preload-utcp":
            self.daemon = Daemon(hosts, build, tmp)
            cmd = ["env", f"LD_PRELOAD={os.path.abspath(build)}/src/libmultistack-preload.so",
                   f"MULTISTACK_SOCKET={self.daemon.sock}", *cmd]
        self.log = open(f"{tmp}/{config}.log", "w")
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", str(SERVER_CORE), *cmd), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        time.sleep(1.0)
        self.config, self.hosts = config, hosts

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.daemon:
            self.daemon.close()


def redis_run(side, test, requests):
    core0 = core_busy_seconds(SERVER_CORE)
    out = sh(*side.hosts.client("taskset", "-c", "0", "redis-benchmark", "-h", side.hosts.SERVER_IP, "-p",
                                str(side.port), "-t", test, "-n", str(requests), "-c", "50", "--csv"))
    core = core_busy_seconds(SERVER_CORE) - core0
    row = next(line for line in out.splitlines() if line.startswith(f'"{test.upper()}"'))
    rps = float(row.split(",")[1].strip('"'))
    r = {"config": side.config, "test": test, "requests": requests, "requests_per_s": rps,
         "server_core_seconds": core, "requests_per_server_core_second": requests / max(core, 1e-9)}
    print(json.dumps(r), flush=True)
    return r


def redis_runs(hosts, build, tmp, args):
    results = []
    for config in REDIS_CONFIGS:
        side = RedisSide(hosts, build, tmp, config)
        try:
            # Unmeasured warm-up, the same for both: the first connections of a fresh server
            # (and of a fresh stack) pay for allocations and page faults.
            sh(*hosts.client("taskset", "-c", "0", "redis-benchmark", "-h", hosts.SERVER_IP, "-p", str(side.port),
                             "-t", "ping", "-n", "20000", "-c", "50", "-q"))
            for test in REDIS_TESTS:
                results.append(redis_run(side, test, args.redis_requests))
        finally:
            side.close()
    return results


def calls_runs(hosts, build, tmp, args):
    """ms-socket-calls per API, against kernel peers in the client namespace that stream
    (ms-tcp-bench source) and discard (sink)."""
    peers = [subprocess.Popen(hosts.client("taskset", "-c", "0", f"{build}/bench/ms-tcp-bench", "serve", "--stack", "kernel",
                                           "--listen", f"{hosts.CLIENT_IP}:{port}", "--mode", mode, "--bytes", str(1 << 40)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for port, mode in ((CALLS_SOURCE_PORT, "source"), (CALLS_SINK_PORT, "sink"))]
    results = []
    try:
        time.sleep(0.5)
        for api in CALLS_APIS:
            daemon = Daemon(hosts, build, tmp) if api != "kernel" else None
            try:
                cmd = [f"{build}/bench/ms-socket-calls", "--api", "event" if api == "event" else "posix",
                       "--source", f"{hosts.CLIENT_IP}:{CALLS_SOURCE_PORT}", "--sink", f"{hosts.CLIENT_IP}:{CALLS_SINK_PORT}",
                       "--calls", str(args.calls)]
                if api == "event":
                    cmd += ["--socket", daemon.sock]
                elif api == "preload":
                    cmd = ["env", f"LD_PRELOAD={os.path.abspath(build)}/src/libmultistack-preload.so",
                           f"MULTISTACK_SOCKET={daemon.sock}", "MULTISTACK_REQUIRE=1", *cmd]
                r = run_json(hosts.server("taskset", "-c", str(SERVER_CORE), *cmd))
                r["config"] = api
                print(json.dumps(r), flush=True)
                results.append(r)
            finally:
                if daemon:
                    daemon.close()
    finally:
        for p in peers:
            p.terminate()
            p.wait(timeout=10)
    return results


def pick(results, **match):
    return next(r for r in results if all(r[k] == v for k, v in match.items()))


def summarize(http, redis, calls):
    cost = "server_core_us_per_request"
    s = {"cost": cost}
    for size, close in HTTP_CASES:
        mode = "close" if close else "keepalive"
        ours = pick(http, config="nginx-preload-utcp", size_kb=size, connection_close=close)
        kernel = pick(http, config="nginx-tso", size_kb=size, connection_close=close)
        event_api = pick(http, config="ms-httpd-utcp", size_kb=size, connection_close=close)
        s[f"nginx_cpu_per_request_better_than_kernel_{size}k_{mode}"] = kernel[cost] / ours[cost]
        s[f"preload_cost_nginx_vs_ms_httpd_{size}k_{mode}"] = ours[cost] / event_api[cost]
    s["meets_1.3x_nginx_1k_close"] = s["nginx_cpu_per_request_better_than_kernel_1k_close"] >= 1.3
    for test in REDIS_TESTS:
        ours = pick(redis, config="redis-preload-utcp", test=test)
        kernel = pick(redis, config="redis-kernel", test=test)
        ratio = ours["requests_per_server_core_second"] / kernel["requests_per_server_core_second"]
        s[f"redis_{test}_requests_per_core_second_vs_kernel"] = ratio
        s[f"meets_1.0x_redis_{test}"] = ratio >= 1.0
    s["meets_1.15x_preload_cost_1k_keepalive"] = s["preload_cost_nginx_vs_ms_httpd_1k_keepalive"] <= 1.15
    s["meets_1.1x_preload_cost_1k_close"] = s["preload_cost_nginx_vs_ms_httpd_1k_close"] <= 1.1
    for call in ("poll_ready", "recv_64", "send_64"):
        for api in ("kernel", "event"):
            s[f"call_{call}_preload_vs_{api}"] = pick(calls, config="preload")[call] / pick(calls, config=api)[call]
    return s


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"{size} KB {'close' if close else 'keep-alive'}" for size, close in HTTP_CASES]
    width = 0.27
    for i, config in enumerate(HTTP_CONFIGS):
        ys = [pick(result["http"], config=config, size_kb=size, connection_close=close)["server_core_us_per_request"]
              for size, close in HTTP_CASES]
        a.bar([x + (i - 1) * width for x in range(len(labels))], ys, width, label=config)
    a.set_xticks(range(len(labels)), labels)
    a.set_ylabel("server core µs per request")
    a.set_title("nginx, unmodified: UTCP (preload) vs kernel")
    a.legend(fontsize=8)
    for i, config in enumerate(REDIS_CONFIGS):
        ys = [pick(result["redis"], config=config, test=t)["requests_per_server_core_second"] for t in REDIS_TESTS]
        b.bar([x + (i - 0.5) * 0.4 for x in range(len(REDIS_TESTS))], ys, 0.4, label=config)
    b.set_xticks(range(len(REDIS_TESTS)), [t.upper() for t in REDIS_TESTS])
    b.set_ylabel("requests per server-core second")
    b.set_title("redis-server, unmodified: UTCP (preload) vs kernel")
    b.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--redis-requests", type=int, default=200000)
    ap.add_argument("--calls", type=int, default=200000, help="socket calls timed of each kind (part calls)")
    ap.add_argument("--parts", default="http,redis,calls", help="for exploring: some parts (results printed, not written)")
    args = ap.parse_args()
    parts = args.parts.split(",")
    hosts = Hosts(f"bp{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    www = f"{tmp}/www"
    os.makedirs(www)
    for kb in {size for size, _ in HTTP_CASES}:
        with open(f"{www}/{kb}k.bin", "wb") as f:
            f.write(os.urandom(kb * 1024))
    try:
        http = http_runs(hosts, args.build, tmp, www, args) if "http" in parts else []
        redis = redis_runs(hosts, args.build, tmp, args) if "redis" in parts else []
        calls = calls_runs(hosts, args.build, tmp, args) if "calls" in parts else []
    finally:
        hosts.close()
    if sorted(parts) != ["calls", "http", "redis"]:
        return
    result = {"testbed": hosts.describe(), "seconds": args.seconds, "connections": args.connections,
              "http": http, "redis": redis, "calls": calls, "summary": summarize(http, redis, calls)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.splitext(args.out)[0] + ".png")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
