"""leadline -sT against nmap -sT on a host that drops every port but five.

The practice lab's Windows-like host (198.18.1.30) accepts five ports and
silently drops the rest, as a host firewall does.  A connect scan there is
paid for in waiting: every dropped port costs a timeout.  Goals: top 1000
and all 65535 ports in at most 0.6x nmap's wall time with the same states
and reasons; and with --max-rate set, leadline's CPU time stays under 20% of
its wall time (it waits for the rate limiter, it does not spin).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import common

from leadline.lab import Lab

WINDOWS = "198.18.1.30"
SCANS = {
    "top1000": ["-sT", "-n", "-Pn"],
    "all": ["-sT", "-n", "-Pn", "-p-"],
}
GOAL = 0.6
CPU_GOAL = 0.2
CAPPED = ["-sT", "-n", "-Pn", "-p", "1-10000", "--max-rate", "3000"]


def cpu_share(lab: Lab, argv: list[str], budget: float) -> tuple[float, float, int]:
    """Run argv in the scanner namespace; (wall s, CPU s of the tool and its children, exit code)."""
    with tempfile.TemporaryDirectory(prefix="lli-bench-") as scratch:
        started = time.perf_counter()
        child = lab.popen(lab.scanner, [*argv, "-oX", str(Path(scratch) / "out.xml")],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pidfd = os.pidfd_open(child.pid)
        try:
            if not select.select([pidfd], [], [], budget)[0]:
                os.kill(child.pid, signal.SIGINT)
                if not select.select([pidfd], [], [], common.KILL_GRACE)[0]:
                    os.kill(child.pid, signal.SIGKILL)
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            os.close(pidfd)
        child.returncode = os.waitstatus_to_exitcode(status)
        return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, child.returncode


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=400, repeat=1)
    agree = True
    with common.bench_lab("llif") as lab:
        results = {}
        for name, flags in SCANS.items():
            results[name] = common.side_by_side(lab, {
                "leadline": [common.LEADLINE, *flags, WINDOWS],
                "nmap": ["nmap", *flags, WINDOWS],
            }, options.repeat, options.budget)
        capped = [cpu_share(lab, [common.LEADLINE, *CAPPED, WINDOWS], options.budget) for _ in range(options.repeat)]
    for name, flags in SCANS.items():
        runs = results[name]
        reference = common.states(runs["nmap"][0], WINDOWS)
        rows = [(run, common.compare(run, reference, WINDOWS)) for tool in runs for run in runs[tool]]
        common.print_runs(f"{' '.join(flags)} {WINDOWS}, {options.repeat} run(s) each", rows)
        same = all(comparison.same for run, comparison in rows if not run.capped)
        agree = agree and same
        common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, same)
    print(f"\n== leadline {' '.join(CAPPED)} {WINDOWS}")
    for wall, cpu, code in capped:
        share = cpu / wall if wall > 0 else 0.0
        verdict = "met" if share < CPU_GOAL else "NOT met"
        print(f"wall {wall:.2f} s, CPU {cpu:.2f} s: {share:.1%} of a core (goal < {CPU_GOAL:.0%}: {verdict}), exit {code}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
