"""What the check scripts that run many checks in one process share: each check prints
one line (ok or FAIL) and the run goes on; finish() prints the count of failures and
exits 1 if there was one."""
import sys

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures += 1


def finish():
    print(f"failures: {failures}", flush=True)
    sys.exit(1 if failures else 0)
