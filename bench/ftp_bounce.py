"""leadline -b against nmap -b: 100 ports of the course server through the lab's vsftpd.

Goal: leadline exact (every port as the lab built it: 2 open, 8 dropped,
90 closed) in at most a quarter of nmap's time (ratio <= 0.25).  nmap's
own answers are compared with the same truth and reported, not required.
"""

from __future__ import annotations

import common

from leadline.lab import practice
from leadline.lab.ftpd import FTP

FIRST, LAST = 49911, 50010
FLAGS = ["-b", FTP, "-p", f"{FIRST}-{LAST}", "-n", "-Pn"]
GOAL = 0.25


def _truth(port: int) -> str:
    if port in (practice.COURSE_ECHO_PORT, practice.COURSE_HTTP_PORT):
        return "open"
    return "filtered" if port in practice.COURSE_DROPPED_PORTS else "closed"


def _wrong(run: common.Run) -> list[str]:
    found = common.states(run, common.COURSE)
    if found is None:
        return ["no result"]
    got = {port: verdict[0] for (_proto, port), verdict in found.ports.items()}
    return [f"{p}: {got.get(p)} (lab: {_truth(p)})" for p in range(FIRST, LAST + 1) if got.get(p) != _truth(p)]


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=600, repeat=1)
    with common.bench_lab("li1f") as lab:
        runs = common.side_by_side(lab, {
            "leadline": [common.LEADLINE, *FLAGS, common.COURSE],
            "nmap": ["nmap", *FLAGS, common.COURSE],
        }, options.repeat, options.budget)
    print(f"\n== -b {FTP} -p {FIRST}-{LAST} -n -Pn {common.COURSE}, {options.repeat} run(s) each, against the lab's truth")
    exact = True
    for tool in runs:
        for run in runs[tool]:
            wrong = _wrong(run)
            exact = exact and (tool != "leadline" or not wrong)
            print(f"{tool:<10} {run.shown_wall:>9} s  exit {run.returncode}  "
                  + ("exact (100 ports)" if not wrong else f"{len(wrong)} wrong: " + "; ".join(wrong[:4])))
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, exact)
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
