"""-sV and -sC -sV side by side with nmap over the service lab's host: wall time, ratio, the same identifications.

    sudo .venv/bin/python bench/version.py [--rounds 3] [--db nmap|leadline] [--only "-sV"|"-sC -sV"]

Builds ``leadline.lab.servicelab`` (prefix ``lab_prefix("b")``: "lsb", or LEADLINE_TEST_LAB plus "b"), runs leadline and nmap alternately in its scanner
namespace against the ten real daemons, checks that both name every open port the same (service,
product, version; service and product only with ``--db leadline``, as asked of leadline's own file),
prints every run's wall time, each tool's median and the ratio, first for -sV, then
for -sC -sV (the script phase after version detection, as nmap -A runs them), and removes the lab.
Every run is capped (timeout), so the benchmark always ends.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from leadline.lab.servicelab import SERVICE_PORTS, SERVICES, ServiceLab, lab_prefix, service_lab  # noqa: E402

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = ",".join(map(str, SERVICE_PORTS))
BUDGET = 180.0  # seconds per run
GOALS = {"-sV": 0.3, "-sC -sV": 0.5}  # the ratio leadline/nmap each scan should stay under


def identities(xml_text: str) -> dict[int, tuple[str, str | None, str | None]]:
    found = {}
    for port in ET.fromstring(xml_text).iter("port"):
        svc = port.find("service")
        if svc is not None:
            name = ("ssl/" if svc.get("tunnel") == "ssl" else "") + (svc.get("name") or "")
            found[int(port.get("portid", "0"))] = (name, svc.get("product"), svc.get("version"))
    return found


def timed(lab: ServiceLab, argv: list[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    done = lab.run_in_scanner(argv, timeout=BUDGET)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-300:]}")
    return wall, done.stdout


def same(ours: dict[int, tuple[str, str | None, str | None]], theirs: dict[int, tuple[str, str | None, str | None]],
         fields: int = 3) -> list[str]:
    """Ports where the first ``fields`` of (service, product, version) differ."""
    diffs = []
    for port, want in sorted(theirs.items()):
        got = ours.get(port)
        if got is None or got[:fields] != want[:fields]:
            diffs.append(f"{port}: {got} vs {want}")
    return diffs


def spread(values: list[float]) -> str:
    runs = " ".join(f"{v:.2f}" for v in values)
    return (f"median {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f}, "
            f"n={len(values)})  runs: {runs}")


def compare(lab: ServiceLab, flags: list[str], db: str, rounds: int) -> bool:
    """Alternate leadline and nmap with ``flags``; print every run, the medians, the ratio; True if identical."""
    ours_t: list[float] = []
    theirs_t: list[float] = []
    mismatches: list[str] = []
    for _ in range(rounds):
        wall, out = timed(lab, [LEADLINE, *flags, "--versiondb", db, "-Pn", "-n", "-p", PORTS, "-oX", "-", SERVICES])
        ours_t.append(wall)
        ours = identities(out)
        wall, out = timed(lab, ["nmap", *flags, "-Pn", "-n", "-p", PORTS, "-oX", "-", SERVICES])
        theirs_t.append(wall)
        mismatches += same(ours, identities(out), 3 if db == "nmap" else 2)
    goal = GOALS[" ".join(flags)]
    ratio = statistics.median(ours_t) / statistics.median(theirs_t)
    print(f"{' '.join(flags)} over {len(SERVICE_PORTS)} services ({db} database)")
    print(f"  leadline  {spread(ours_t)}")
    print(f"  nmap      {spread(theirs_t)}")
    print(f"  ratio     {ratio:.3f} (median/median; goal <= {goal})")
    compared = "service, product and version" if db == "nmap" else "service and product (leadline's own probe file)"
    print(f"  identifications ({compared}): "
          + ("the same on every port" if not mismatches else "DIFFER: " + "; ".join(sorted(set(mismatches)))))
    return not mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="nmap", choices=["nmap", "leadline"])
    parser.add_argument("--only", choices=list(GOALS), help="measure one of the two scans")
    args = parser.parse_args()
    ok = True
    with service_lab(lab_prefix("b")) as lab:
        for flags in GOALS:
            if args.only in (None, flags):
                ok = compare(lab, flags.split(), args.db, args.rounds) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
