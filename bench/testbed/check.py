#!/usr/bin/env python3
"""bench/testbed.sh: shows that the NIC-faithful test bed does what it claims.
In each test bed a kernel server (ms-tcp-bench, core 1) sends one bulk TCP flow to a
kernel client (core 0) while perf samples the server's core with call graphs. The share
of those samples under the kernel's TCP data receive (tcp_data_queue: queueing received
data on a socket, which only the client does in this flow) is the client's work that the
server's core pays for: large on plain veths, where the client's receive runs inside the
server's transmit; none in the NIC-faithful test bed, where the client's NAPI thread runs
on the client's core. Writes bench/results/testbed.json."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import CLIENT_CORE, SERVER_CORE, TESTBEDS, Hosts, sh  # noqa: E402

CLIENT_RECEIVE = "tcp_data_queue"  # the client's: in this flow the server receives only ACKs
SERVER_SEND = "tcp_sendmsg"        # the server's own work, for scale


def children_share(report, symbol):
    """The percentage of samples with `symbol` on their stack, from perf report --children."""
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[k.]\]\s+(\S+)", line)
        if m and m.group(3) == symbol:
            return float(m.group(1))
    return 0.0


def profile(testbed, build, seconds):
    hosts = Hosts(f"bc{os.getpid() % 10000}", testbed)
    tmp = tempfile.mkdtemp()
    try:
        server = subprocess.Popen(hosts.server("taskset", "-c", str(SERVER_CORE), f"{build}/bench/ms-tcp-bench", "serve",
                                               "--stack", "kernel", "--listen", f"{hosts.SERVER_IP}:5001", "--mode",
                                               "source", "--bytes", str(40 << 30)), stdout=subprocess.PIPE, text=True)
        if server.stdout.readline().strip() != "serving":
            raise RuntimeError("ms-tcp-bench serve did not start")
        client = subprocess.Popen(hosts.client("taskset", "-c", str(CLIENT_CORE), f"{build}/bench/ms-tcp-bench",
                                               "receive", "--connect", f"{hosts.SERVER_IP}:5001", "--bytes",
                                               str(40 << 30)), stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        data = f"{tmp}/perf.data"
        sh("perf", "record", "-q", "-C", str(SERVER_CORE), "-g", "-F", "1999", "-o", data, "--", "sleep", str(seconds))
        report = sh("perf", "report", "-i", data, "--children", "--stdio", "--sort", "symbol", "-g", "none")
        client.kill()  # a 40 GB flow: stopped, not finished
        server.kill()
        client.wait(timeout=10)
        server.wait(timeout=10)
        return {"testbed": hosts.describe(),
                f"server_core_samples_under_{CLIENT_RECEIVE}_percent": children_share(report, CLIENT_RECEIVE),
                f"server_core_samples_under_{SERVER_SEND}_percent": children_share(report, SERVER_SEND)}
    finally:
        hosts.close()


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=3)
    args = ap.parse_args()
    results = {t: profile(t, args.build, args.seconds) for t in TESTBEDS}
    key = f"server_core_samples_under_{CLIENT_RECEIVE}_percent"
    summary = {f"{t}_{key}": results[t][key] for t in TESTBEDS}
    # "none": below one sample in a thousand.
    summary["nic_testbed_keeps_client_receive_off_the_server_core"] = results["nic"][key] < 0.1
    with open(args.out, "w") as f:
        json.dump({"results": results, "summary": summary}, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
