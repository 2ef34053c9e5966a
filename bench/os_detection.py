"""-O side by side with nmap on three lab hosts: wall time of each run, medians, ratio, same results.

    sudo .venv/bin/python bench/os_detection.py [--repeat 3] [--db nmap|leadline]

Builds the practice lab (prefix "llio"), then runs nmap and leadline alternately in its scanner
namespace, each ``-O -n -Pn -p 1,22,23,80,3389,50007`` against the course server, ``desktop`` and
``gear`` (three different stacks).  With ``--db nmap`` (the default) leadline reads nmap's own
database, and every run's best guess per host (vendor, family, generation; ``--osscan-guess`` so
both always name one) and fingerprint lines (but for ISN and timestamp values) must equal nmap's.
Every run is printed, then the medians with min and max, and the ratio.  The lab is removed at the
end, also on an error or Ctrl-C; every run is capped (timeout), so the benchmark always ends.

Where the time goes: nmap repeats the probes up to five times per host while no record matches
exactly (the lab's kernels are newer than nmap 7.93's database); leadline stops a host as soon as a
round repeats the previous one's fingerprint, and sends every host's probes in one loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "src", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from leadline.lab import Lab, practice  # noqa: E402
from leadline.lab.practice import practice_topology  # noqa: E402
from tests.oracle.osxml import fingerprint_tests, read_os  # noqa: E402

LEADLINE = str(Path(sys.executable).parent / "leadline")
HOSTS = [practice.COURSE, practice.DESKTOP, practice.GEAR]
FLAGS = ["-O", "--osscan-guess", "-n", "-Pn", "-p", "1,22,23,80,3389,50007"]
BUDGET = 240.0
RANDOM_SEQ = ("SP", "GCD", "ISR", "TS")


def stable(fingerprint: str | None) -> set[str]:
    out = set()
    for test in fingerprint_tests(fingerprint or ""):
        if test.startswith("SCAN("):
            continue
        if test.startswith("SEQ("):
            test = "SEQ(" + "%".join(v for v in test[4:-1].split("%") if v.split("=")[0] not in RANDOM_SEQ) + ")"
        out.add(test)
    return out


def timed(lab: Lab, argv: list[str], out: str) -> tuple[float, str]:
    t0 = time.monotonic()
    done = lab.run(lab.scanner, [*argv, "-oX", out], timeout=BUDGET)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-300:]}")
    return wall, lab.run(lab.scanner, ["cat", out], timeout=10).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=("nmap", "leadline"), default="nmap")
    args = parser.parse_args()
    lab = Lab("llio")
    lab.up(practice_topology())
    ours_t: list[float] = []
    theirs_t: list[float] = []
    try:
        for run in range(1, args.repeat + 1):
            nmap_wall, nmap_xml = timed(lab, ["nmap", *FLAGS, *HOSTS], "/tmp/llio-nmap.xml")
            our_wall, our_xml = timed(lab, [LEADLINE, "--osdb", args.db, *FLAGS, *HOSTS], "/tmp/llio-ours.xml")
            theirs_t.append(nmap_wall)
            ours_t.append(our_wall)
            note = ""
            if args.db == "nmap":
                nmap, ours = read_os(nmap_xml), read_os(our_xml)
                diffs = []
                for h in HOSTS:
                    if nmap[h].best_class != ours[h].best_class:
                        diffs.append(f"{h} best {ours[h].matches[:2]} vs nmap {nmap[h].matches[:2]}")
                    lines = stable(nmap[h].fingerprint) ^ stable(ours[h].fingerprint)
                    if lines:
                        diffs.append(f"{h} lines {sorted(lines)}")
                note = "same results" if not diffs else "DIFFERENT: " + "; ".join(diffs)
            print(f"run {run}: leadline {our_wall:.2f} s, nmap {nmap_wall:.2f} s, ratio {our_wall / nmap_wall:.2f}"
                  f"  {note}", flush=True)
    finally:
        lab.down()
    med_ours, med_theirs = statistics.median(ours_t), statistics.median(theirs_t)
    print(f"leadline median {med_ours:.2f} s (min {min(ours_t):.2f}, max {max(ours_t):.2f})")
    print(f"nmap     median {med_theirs:.2f} s (min {min(theirs_t):.2f}, max {max(theirs_t):.2f})")
    print(f"ratio {med_ours / med_theirs:.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
