"""Shared by the benchmark drivers: test hosts (scripts/netns.sh), multistackd, and
CPU accounting from /proc. Benchmarks run as root and make their own namespaces."""
import argparse
import json
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


class Hosts:
    def __init__(self, name):
        self.name = name
        out = sh("bash", f"{ROOT}/scripts/netns.sh", "up", name)
        self.__dict__.update(dict(line.split("=", 1) for line in out.split()))

    def close(self):
        subprocess.run(["bash", f"{ROOT}/scripts/netns.sh", "down", self.name])

    def server(self, *args):
        return ["ip", "netns", "exec", self.SERVER_NS, *args]

    def client(self, *args):
        return ["ip", "netns", "exec", self.CLIENT_NS, *args]

    def client_rx_packets(self):
        return int(sh(*self.client("cat", f"/sys/class/net/{self.CLIENT_IF}/statistics/rx_packets")))


def cpu_seconds(pid):
    """utime + stime of a process and its threads, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    def __init__(self, hosts, build, tmp, extra_args=()):
        self.sock = f"{tmp}/ms.sock"
        self.log = open(f"{tmp}/daemon.log", "w")
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", "1", f"{build}/src/multistackd", "--iface",
                                                  hosts.SERVER_IF, "--socket", self.sock, *extra_args), stderr=self.log)
        for _ in range(100):
            if os.path.exists(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError("multistackd did not start")

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def run_json(cmd):
    return json.loads(sh(*cmd).strip().splitlines()[-1])


def system_busy_seconds():
    """CPU time spent busy (not idle or iowait) on all cores, from /proc/stat."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def write_nginx_conf(tmp, ip, port, root):
    """nginx as the paper's peer: one worker, no access log, sendfile. Returns the path.
    nginx's worker runs unprivileged: the directories must be readable by others."""
    for d in (tmp, root):
        os.chmod(d, 0o755)
    conf = f"""worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  server {{ listen {ip}:{port} reuseport backlog=4096; root {root}; }}
}}
"""
    path = f"{tmp}/nginx.conf"
    with open(path, "w") as f:
        f.write(conf)
    return path


def driver_arguments(doc):
    """The arguments every benchmark driver takes: the build tree and the JSON to write."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--build", required=True, help="the CMake build tree")
    ap.add_argument("--out", required=True, help="the JSON file to write (plots go next to it)")
    return ap
