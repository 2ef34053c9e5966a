"""leadline -sI against nmap -sI: the course server's top 1000 ports through the lab's legacy device.

Goal: leadline takes at most half nmap's time (ratio <= 0.5), with the same
state and reason for every port.
"""

from __future__ import annotations

import common

from leadline.lab.legacy import LEGACY

FLAGS = ["-sI", LEGACY, "--top-ports", "1000", "-n", "-Pn"]
GOAL = 0.5


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=3)
    with common.bench_lab("li1i") as lab:
        runs = common.side_by_side(lab, {
            "leadline": [common.LEADLINE, *FLAGS, common.COURSE],
            "nmap": ["nmap", *FLAGS, common.COURSE],
        }, options.repeat, options.budget)
    reference = common.states(runs["nmap"][0], common.COURSE)
    rows = [(run, common.compare(run, reference, common.COURSE)) for tool in runs for run in runs[tool]]
    common.print_runs(f"-sI {LEGACY} --top-ports 1000 -n -Pn {common.COURSE}, {options.repeat} run(s) each", rows)
    agree = all(comparison.same for _, comparison in rows)
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, agree)
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
