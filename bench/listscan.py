"""A list scan without DNS (-sL -n) of a large range, leadline beside nmap; prints the ratio.

A list scan sends nothing, so this runs anywhere, no lab needed.  Both
tools write to /dev/null; the wall time and peak RSS of each run come from
wait4().  Before timing, both list a /20 and the lists are compared, so
the work timed is the same work.  A third figure times leadline's list
path with batched events (targets expanded, then NormalOutput.listed per
4096 addresses) in a child process: what the CLI costs once the pipeline
hands a list scan's addresses to the sinks in batches instead of one
HostResult each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Run", "main"]

LEADLINE = str(Path(sys.executable).parent / "leadline")
BATCHED = """
import itertools, sys
from leadline.core.targets import iter_targets
from leadline.output.normal import NormalOutput
out = NormalOutput(open('/dev/null', 'w'))
stream = (t.address for t in iter_targets([sys.argv[1]], resolve=lambda n, f: [], warn=print))
while chunk := list(itertools.islice(stream, 4096)):
    out.listed(chunk)
"""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    peak_kb: int  # peak resident set, kB
    code: int


def timed(argv: list[str], budget: float) -> Run:
    """Run ``argv`` with output to /dev/null; wall time and peak RSS from wait4()."""
    with open(os.devnull, "w") as sink:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
        deadline = start + budget
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.monotonic() - start
                proc.returncode = os.waitstatus_to_exitcode(status)
                return Run(wall, int(usage.ru_maxrss), proc.returncode)
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                return Run(budget, int(usage.ru_maxrss), -9)
            time.sleep(0.02)


def listing(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return [line.split()[-1] for line in done.stdout.splitlines() if " scan report for " in line]


def spread(runs: list[Run]) -> str:
    walls = [r.wall for r in runs]
    if len(walls) == 1:
        return f"{walls[0]:.2f} s"
    return f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=int, default=8, help="list 10.0.0.0/PREFIX (default 8: 16.7 million)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool, alternating (median shown)")
    parser.add_argument("--budget", type=float, default=900, help="seconds before a run is stopped")
    options = parser.parse_args()
    target = f"10.0.0.0/{options.prefix}"
    check = "10.0.0.0/20"
    ours_list, theirs_list = listing([LEADLINE, "-sL", "-n", check]), listing(["nmap", "-sL", "-n", check])
    if ours_list != theirs_list:
        print(f"the lists differ for {check}: {len(ours_list)} vs {len(theirs_list)} addresses")
        return 1
    print(f"{check}: both list the same {len(ours_list)} addresses in the same order")
    ours: list[Run] = []
    theirs: list[Run] = []
    batched: list[Run] = []
    for _ in range(options.repeat):
        ours.append(timed([LEADLINE, "-sL", "-n", target], options.budget))
        theirs.append(timed(["nmap", "-sL", "-n", target], options.budget))
        batched.append(timed([sys.executable, "-c", BATCHED, target], options.budget))
        print(f"  leadline {ours[-1].wall:.2f} s, nmap {theirs[-1].wall:.2f} s, batched path {batched[-1].wall:.2f} s",
              flush=True)
    if any(r.code != 0 for r in ours + theirs + batched):
        print("a run failed or ran out of budget (exit codes: "
              f"{[r.code for r in ours]}, {[r.code for r in theirs]}, {[r.code for r in batched]})")
    ratio = statistics.median(r.wall for r in ours) / statistics.median(r.wall for r in theirs)
    batched_ratio = statistics.median(r.wall for r in batched) / statistics.median(r.wall for r in theirs)
    print(f"\n== -sL -n {target}, output to /dev/null")
    print(f"leadline      {spread(ours)}, peak {max(r.peak_kb for r in ours) / 1024:.1f} MB")
    print(f"nmap          {spread(theirs)}, peak {max(r.peak_kb for r in theirs) / 1024:.1f} MB")
    print(f"batched path  {spread(batched)}, peak {max(r.peak_kb for r in batched) / 1024:.1f} MB")
    print(f"ratio leadline/nmap {ratio:.2f} (goal <= 1.0); batched path/nmap {batched_ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
