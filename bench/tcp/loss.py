#!/usr/bin/env python3
"""bench/tcp.sh loss: the loss table. A kernel client sends --bytes through an
echo server while ms-drop (a tc program on the client's veth) drops a random fraction of
the TCP packets the server sends; the server is utcp-echo on UTCP (through multistackd)
or a kernel echo server, in the same run, on the same veth, offloads off on both veths.
Both servers run the same congestion control, for each of --cc (CUBIC and BBR; the
kernel's BBR is version 1, UTCP's version 3), named on the kernel's sockets: a host's
default need not be CUBIC. For each algorithm and loss rate: the median transfer time of
--repeat runs of each, their ratio, and UTCP's retransmissions and RTOs per 1000
segments. Target: UTCP within 1.2x of the kernel at 1, 3 and 5 % loss, and at most 2
RTOs per 1000 segments at 1 %."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import ROOT, Daemon, Hosts, driver_arguments, run_json, sh  # noqa: E402

PEER = f"{ROOT}/tests/netns/tcp_peer.py"


def wait_line(proc, text, what):
    for line in proc.stdout:
        if text in line:
            return
    raise RuntimeError(f"{what} did not start")


class Echo:
    """An echo server in the server namespace: utcp-echo, or tcp_peer.py on the kernel."""

    def __init__(self, hosts, build, daemon, stack, port, cc):
        if stack == "utcp":
            cmd = [f"{build}/tools/utcp-echo", "--socket", daemon.sock, "--listen", f"{hosts.SERVER_IP}:{port}",
                   "--cc", cc]
            ready = "echoing"
        else:
            cmd = ["/usr/bin/python3", "-u", PEER, "server", hosts.SERVER_IP, str(port), "--cc", cc]
            ready = "listening"
        self.proc = subprocess.Popen(hosts.server("taskset", "-c", "1", *cmd), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        wait_line(self.proc, ready, f"{stack} echo")

    def close(self):
        """Stops the server; returns utcp-echo's final JSON (None for the kernel's)."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None


class Drop:
    """ms-drop on the client's veth: LOSS percent of what the client receives."""

    def __init__(self, hosts, build, loss, seed):
        self.proc = subprocess.Popen(hosts.client(f"{build}/tests/ms-drop", "--dev", hosts.CLIENT_IF, "--loss",
                                                  str(loss), "--seed", str(seed)),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            if "dropping" in line:
                return
        raise RuntimeError("ms-drop did not attach")

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        return json.loads(out.strip().splitlines()[-1])


def transfer(hosts, port, nbytes):
    out = run_json(hosts.client("taskset", "-c", "0", "/usr/bin/python3", PEER, "client", hosts.SERVER_IP, str(port),
                                "--bytes", str(nbytes)))
    if not out["ok"]:
        raise RuntimeError(f"transfer through port {port} failed: {out}")
    return out["seconds"]


def measure(hosts, build, daemon, loss, cc, args):
    runs = {"utcp": [], "kernel": []}
    tcp = {}
    dropped = 0
    for r in range(args.repeat):
        for stack, port in (("utcp", 7000), ("kernel", 7100)):
            echo = Echo(hosts, build, daemon, stack, port + r, cc)
            drop = Drop(hosts, build, loss, seed=int(1000 * loss) + r)
            try:
                runs[stack].append(transfer(hosts, port + r, args.bytes))
            finally:
                dropped += drop.close()["dropped"]
                final = echo.close()
            if final:
                for k, v in final["tcp"].items():
                    tcp[k] = tcp.get(k, 0) + v
    utcp_s, kernel_s = statistics.median(runs["utcp"]), statistics.median(runs["kernel"])
    segments = max(tcp.get("segments_out", 0), 1)
    return {"cc": cc, "loss_percent": loss, "utcp_seconds": utcp_s, "kernel_seconds": kernel_s,
            "utcp_vs_kernel_time": utcp_s / kernel_s, "packets_dropped": dropped,
            "utcp_rtos_per_1000_segments": 1000 * tcp.get("timeouts", 0) / segments,
            "utcp_retransmits_per_1000_segments": 1000 * tcp.get("retransmits", 0) / segments,
            "utcp_sender": tcp, "runs": runs}


def main():
    ap = driver_arguments(__doc__)
    ap.add_argument("--bytes", type=int, default=20 << 20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loss", default="1,3,5", help="loss rates in percent")
    ap.add_argument("--cc", default="cubic,bbr", help="congestion controls, each on both stacks")
    args = ap.parse_args()
    hosts = Hosts(f"bl{os.getpid() % 10000}", args.testbed)
    tmp = tempfile.mkdtemp()
    results = []
    try:
        # Offloads off on both sides, as in the table; in the NIC-faithful test bed
        # GRO stays on (it carries threaded NAPI, as a NIC's receive path).
        gro = ["gro", "off"] if hosts.testbed == "veth" else []
        for side, ifname in ((hosts.server, hosts.SERVER_IF), (hosts.client, hosts.CLIENT_IF)):
            sh(*side("ethtool", "-K", ifname, "tso", "off", "gso", "off", *gro))
        hosts.pin_napi()
        daemon = Daemon(hosts, args.build, tmp)
        try:
            for cc in args.cc.split(","):
                for loss in (float(x) for x in args.loss.split(",")):
                    results.append(measure(hosts, args.build, daemon, loss, cc, args))
                    print(json.dumps({k: results[-1][k] for k in ("cc", "loss_percent", "utcp_vs_kernel_time",
                                                                  "utcp_rtos_per_1000_segments")}), flush=True)
        finally:
            daemon.close()
    finally:
        hosts.close()
    summary = {f"utcp_vs_kernel_time_{r['cc']}_at_{r['loss_percent']:g}pct": r["utcp_vs_kernel_time"]
               for r in results}
    summary["meets_1.2x"] = all(r["utcp_vs_kernel_time"] <= 1.2 for r in results)
    for r in (r for r in results if r["loss_percent"] == 1):
        summary[f"rtos_per_1000_{r['cc']}_at_1pct"] = r["utcp_rtos_per_1000_segments"]
        summary[f"meets_2_rtos_per_1000_{r['cc']}_at_1pct"] = r["utcp_rtos_per_1000_segments"] <= 2
    with open(args.out, "w") as f:
        json.dump({"bytes": args.bytes, "repeat": args.repeat, "testbed": hosts.describe(), "offloads": "tso, gso off",
                   "results": results, "summary": summary}, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
