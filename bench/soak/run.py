#!/usr/bin/env python3
"""bench/soak.sh's driver: memory over a long mixed load, for the preload and the event
API alike (issue 26 §2b). One multistackd serves, on the server core:
  - nginx (one worker) under libmultistack-preload.so, on port 8084;
  - ms-httpd on UTCP's event API, on port 80;
  - utcp-echo on the event API, on port 7000.
Until --minutes have passed, each round runs from the client core: wrk with keep-alive,
then with Connection: close, against each server (--phase-seconds each), and a kernel
client's 20 MB echo through utcp-echo, checked by SHA-256. After each round the RSS of
every server process is sampled (VmRSS).

Verdict per process: the first third of the run is warm-up; RSS is flat if the highest
sample of the last third exceeds the highest of the warm-up by at most
max(1 MiB, 5 %). Any HTTP error or a wrong echo fails the run. Writes JSON (every sample,
the verdicts) and exits 1 if a process grew or a request failed."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
from benchlib import SERVER_CORE, Daemon, Hosts, driver_arguments, rss_kib, sh, write_nginx_conf  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ECHO_BYTES = 20 * 1024 * 1024


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Servers:
    def __init__(self, hosts, build, tmp, www):
        ip = hosts.SERVER_IP
        self.daemon = Daemon(hosts, build, tmp, ("--group", "nogroup"))
        preload = f"{os.path.abspath(build)}/src/libmultistack-preload.so"
        pin = ("taskset", "-c", str(SERVER_CORE))
        self.nginx = subprocess.Popen(hosts.server(*pin, "env", f"LD_PRELOAD={preload}", f"MULTISTACK_SOCKET={self.daemon.sock}",
                                                   "nginx", "-c", write_nginx_conf(tmp, ip, 8084, www), "-g", "daemon off;"),
                                      stdout=subprocess.DEVNULL)
        self.httpd = subprocess.Popen(hosts.server(*pin, f"{build}/tools/ms-httpd", "--transport", "utcp", "--socket",
                                                   self.daemon.sock, "--listen", f"{ip}:80", "--root", www),
                                      stdout=subprocess.DEVNULL)
        self.echo = subprocess.Popen(hosts.server(*pin, f"{build}/tools/utcp-echo", "--socket", self.daemon.sock, "--listen",
                                                  f"{ip}:7000"), stdout=subprocess.DEVNULL)
        time.sleep(1.0)

    def processes(self):
        """The servers' own processes: the nginx worker, not the master (its RSS is
        nginx's, not the library's), and the programs under ip netns exec and taskset."""
        def leaf(proc):
            pid = proc.pid
            while kids := children(pid):
                pid = kids[0]
            return pid
        return {"nginx_worker_preload": leaf(self.nginx), "ms_httpd_event_api": leaf(self.httpd),
                "utcp_echo_event_api": leaf(self.echo), "multistackd": leaf(self.daemon.proc)}

    def close(self):
        for p in (self.nginx, self.httpd, self.echo):
            p.terminate()
            p.wait(timeout=10)
        self.daemon.close()


def wrk(hosts, port, close, seconds):
    args = ["taskset", "-c", "0", "wrk", "-t1", "-c32", f"-d{seconds}s"]
    if close:
        args += ["-H", "Connection: close"]
    out = sh(*hosts.client(*args, f"http://{hosts.SERVER_IP}:{port}/1k.bin"))
    bad = [line for line in out.splitlines() if "Socket errors" in line or "Non-2xx" in line]
    return bad


def echo(hosts):
    out = subprocess.run(hosts.client("timeout", "120", "/usr/bin/python3", f"{ROOT}/tests/netns/tcp_peer.py", "client",
                                      hosts.SERVER_IP, "7000", "--bytes", str(ECHO_BYTES)),
                         capture_output=True, text=True)
    return [] if out.returncode == 0 else [f"20 MB echo: {out.stdout.strip()} {out.stderr.strip()}"]


def verdicts(samples, names):
    third = max(1, len(samples) // 3)
    result = {}
    for name in names:
        series = [s["rss_kib"][name] for s in samples]
        warm, last = max(series[:third]), max(series[-third:])
        allowed = max(1024, warm * 0.05)
        result[name] = {"first_kib": series[0], "warm_up_max_kib": warm, "last_third_max_kib": last,
                        "growth_after_warm_up_kib": last - warm, "allowed_kib": round(allowed), "flat": last - warm <= allowed}
    return result


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--phase-seconds", type=int, default=10)
    args = ap.parse_args()
    hosts = Hosts(f"sk{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    www = f"{tmp}/www"
    os.makedirs(www)
    with open(f"{www}/1k.bin", "wb") as f:
        f.write(os.urandom(1024))
    samples, errors = [], []
    try:
        servers = Servers(hosts, args.build, tmp, www)
        try:
            start = time.monotonic()
            names = list(servers.processes())
            while time.monotonic() - start < args.minutes * 60:
                for port in (8084, 80):
                    for close in (False, True):
                        errors += wrk(hosts, port, close, args.phase_seconds)
                errors += echo(hosts)
                sample = {"seconds": round(time.monotonic() - start, 1),
                          "rss_kib": {name: rss_kib(pid) for name, pid in servers.processes().items()}}
                samples.append(sample)
                print(json.dumps(sample), flush=True)
        finally:
            servers.close()
    finally:
        hosts.close()
    result = {"testbed": hosts.describe(), "minutes": args.minutes, "rounds": len(samples), "errors": errors,
              "samples": samples, "verdicts": verdicts(samples, names)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"errors": errors, "verdicts": result["verdicts"]}, indent=2))
    sys.exit(0 if not errors and all(v["flat"] for v in result["verdicts"].values()) else 1)


if __name__ == "__main__":
    main()
