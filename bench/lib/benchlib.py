"""Shared by the benchmark drivers: test hosts (scripts/netns.sh) in a NIC-faithful or a
plain veth test bed, multistackd, and CPU accounting from /proc. Benchmarks run as root
and make their own namespaces.

The test beds (`--testbed`):
  nic   (default) as a NIC works: GRO and threaded NAPI on both veth ends, each end's NAPI
        thread pinned to the core of the host that receives (as IRQ affinity pins a NIC
        queue), and RPS steering what a veth passes outside NAPI (its sender's TSO
        packets) to that core too, so that a host's receive work runs on its own core,
        not inside the other host's transmit. The server's cost is its core's busy time (/proc/stat: user,
        system, irq, softirq), which then holds exactly the server's work.
  veth  the plain veth pair: the receiver's per-packet work runs in the sender's transmit,
        on the sender's core (the server core pays for the client's TCP receive).
The server side runs on SERVER_CORE, the client on CLIENT_CORE."""
import argparse
import json
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_CORE, CLIENT_CORE = 1, 0
TESTBEDS = ("nic", "veth")


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def napi_threads():
    """{pid: name} of the kernel's NAPI threads ("napi/DEVICE-ID", cut to 15 characters)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = open(f"/proc/{entry}/comm").read().strip()
            except OSError:
                continue
            if comm.startswith("napi/"):
                found[int(entry)] = comm
    return found


class Hosts:
    def __init__(self, name, testbed="nic"):
        # A NAPI thread's name keeps 10 characters of its device's: the veths ("ms" NAME
        # "-s" / "-c") must fit, so that each end's threads can be told apart.
        if len(name) > 6:
            raise ValueError(f"host name {name!r}: at most 6 characters")
        self.name = name
        self.testbed = testbed
        out = sh("bash", f"{ROOT}/scripts/netns.sh", "up", name)
        self.__dict__.update(dict(line.split("=", 1) for line in out.split()))
        self.napi = {}
        if testbed == "nic":
            try:
                for side, ifname, core in ((self.server, self.SERVER_IF, SERVER_CORE),
                                           (self.client, self.CLIENT_IF, CLIENT_CORE)):
                    sh(*side("ethtool", "-K", ifname, "gro", "on"))
                    sh(*side("sh", "-c", f"echo 1 > /sys/class/net/{ifname}/threaded"))
                    # What a veth does not hand to NAPI (its sender's TSO packets) goes
                    # through the backlog: RPS steers that to the receiving host's core.
                    sh(*side("sh", "-c", f"echo {1 << core:x} > /sys/class/net/{ifname}/queues/rx-0/rps_cpus"))
                self.pin_napi()
            except Exception:
                self.close()
                raise

    def pin_napi(self):
        """Pins each veth end's NAPI threads to the core of the host that receives on it.
        NAPI instances come and go with GRO and XDP, so callers pin again after changing
        either; returns {device: [core, threads]} for the results."""
        if self.testbed != "nic":
            return {}
        threads = napi_threads()
        for ifname, core in ((self.SERVER_IF, SERVER_CORE), (self.CLIENT_IF, CLIENT_CORE)):
            # "napi/" + device + "-" + NAPI id, cut to 15 characters.
            mine = [pid for pid, comm in threads.items() if comm[len("napi/"):].startswith((ifname + "-")[:10])]
            if not mine:
                raise RuntimeError(f"no NAPI thread for {ifname} (threaded NAPI needs GRO or XDP on a veth)")
            for pid in mine:
                os.sched_setaffinity(pid, {core})
            self.napi[ifname] = [core, len(mine)]
        return self.napi

    def describe(self):
        """What the results record of the test bed."""
        return {"mode": self.testbed, "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                "napi_threads": self.napi}

    def close(self):
        subprocess.run(["bash", f"{ROOT}/scripts/netns.sh", "down", self.name])

    def server(self, *args):
        return ["ip", "netns", "exec", self.SERVER_NS, *args]

    def client(self, *args):
        return ["ip", "netns", "exec", self.CLIENT_NS, *args]

    def client_rx_packets(self):
        return int(sh(*self.client("cat", f"/sys/class/net/{self.CLIENT_IF}/statistics/rx_packets")))


def rss_kib(pid):
    """A process's resident memory (VmRSS), in KiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no RSS for {pid}")


def cpu_seconds(pid):
    """utime + stime of a process and its threads, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    def __init__(self, hosts, build, tmp, extra_args=()):
        self.sock = f"{tmp}/ms.sock"
        self.log = open(f"{tmp}/daemon.log", "w")
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", str(SERVER_CORE), f"{build}/src/multistackd", "--iface",
                                                  hosts.SERVER_IF, "--socket", self.sock, *extra_args), stderr=self.log)
        for _ in range(100):
            if os.path.exists(self.sock):
                hosts.pin_napi()  # attaching XDP may have made the server end's NAPI anew
                return
            time.sleep(0.05)
        raise RuntimeError("multistackd did not start")

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def run_json(cmd):
    return json.loads(sh(*cmd).strip().splitlines()[-1])


def core_busy_seconds(core):
    """CPU time core `core` spent busy (user, nice, system, irq, softirq, steal), from /proc/stat:
    in the NIC-faithful test bed, the server's whole cost, its receive processing included."""
    for line in open("/proc/stat"):
        if line.startswith(f"cpu{core} "):
            f = [int(x) for x in line.split()[1:]]
            return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no cpu{core} in /proc/stat")


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
    """The arguments every benchmark driver takes: the build tree, the JSON to write, and
    the test bed."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the CMake build tree")
    ap.add_argument("--out", required=True, help="the JSON file to write (plots go next to it)")
    ap.add_argument("--testbed", choices=TESTBEDS, default="nic",
                    help="nic: NIC-faithful veths (threaded NAPI, pinned); veth: plain veths")
    return ap
