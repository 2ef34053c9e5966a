"""leadline -sS against nmap -sS while the course server sends at most 50 resets a second.

Many stacks cap their RSTs; a scanner that outruns the cap sees closed
ports as silent.  Goal: no slower than nmap (ratio <= 1), with every port
in the same state as a clean scan.
"""

from __future__ import annotations

import common

FLAGS = ["-sS", "-p", "1-2000", "-n", "-Pn"]
GOAL = 1.0
RESETS_PER_SECOND = 50


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=1)
    _, agree = common.impaired_benchmark(
        "llir", f"-sS -p 1-2000 -n -Pn {common.COURSE}, resets capped at {RESETS_PER_SECOND}/s",
        FLAGS, lambda lab: lab.limit_rst("course", RESETS_PER_SECOND), options, GOAL)
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
