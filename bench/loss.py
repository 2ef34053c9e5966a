"""leadline -sS against nmap -sS with 30% of the course server's incoming packets dropped.

nmap slows down sharply on random loss (about 37 minutes for these 2000
ports), so its run is capped by the budget (300 s by default) and the
ratio is then an upper bound.  Goal: ratio <= 0.01, with every port in
the same state as a clean scan.
"""

from __future__ import annotations

import common

FLAGS = ["-sS", "-p", "1-2000", "-n", "-Pn"]
GOAL = 0.01
LOSS = 0.3


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=1)
    _, agree = common.impaired_benchmark(
        "llil", f"-sS -p 1-2000 -n -Pn {common.COURSE}, {LOSS:.0%} random loss", FLAGS,
        lambda lab: lab.drop_random("course", LOSS), options, GOAL)
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
