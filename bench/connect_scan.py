"""leadline -sT against nmap -sT: every TCP port of the course server.

Goal: leadline takes no longer than nmap (ratio <= 1.0), with the same
state and reason for all 65535 ports.
"""

from __future__ import annotations

import common

FLAGS = ["-sT", "-p-", "-n", "-Pn"]
GOAL = 1.0


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=120, repeat=3,
                               extra=lambda p: p.add_argument("--prefix", default="llic"))
    with common.bench_lab(options.prefix) as lab:
        runs = common.side_by_side(lab, {
            **common.leadline_commands(options, [*FLAGS, common.COURSE]),
            "nmap": ["nmap", *FLAGS, common.COURSE],
        }, options.repeat, options.budget)
    reference = common.states(runs["nmap"][0], common.COURSE)
    rows = [(run, common.compare(run, reference, common.COURSE)) for tool in runs for run in runs[tool]]
    common.print_runs(f"-sT -p- -n -Pn {common.COURSE}, {options.repeat} run(s) each", rows)
    agree = all(comparison.same for _, comparison in rows)
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, agree)
    common.print_old_summary(runs, "nmap")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
