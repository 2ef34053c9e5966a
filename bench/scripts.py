"""leadline -sC against nmap -sC over the service host (nginx, TLS, OpenSSH, vsftpd, dnsmasq, Redis, memcached).

Both tools scan the same seven open ports of the same daemons in the same
run, alternately, with the port scan fixed (-Pn -n -p ...) so that the
difference is the script phase.  Prints each wall time, the medians and
the ratio leadline/nmap.  This measures -sC alone; -sC -sV together (goal
<= 0.5x nmap) is measured by bench/version.py over the service lab's host.
nmap's default set has scripts leadline has not (ftp-syst, ssl-date,
tls-alpn): its count of script results is printed beside its time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.scriptlab import SERVER, ServiceLab, leadline_scripts, nmap_scripts, service_lab  # noqa: E402

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = "21,22,53,80,443,6379,11211"
FLAGS = ["-sC", "-n", "-Pn", "-p", PORTS]
GOAL = 0.5


# The same set on both sides: leadline's default scripts, named (a fair comparison of the engines).
SAME_SET = "http-title,http-robots.txt,http-methods,ssh-hostkey,ssl-cert,ftp-anon,smtp-commands,dns-nsid"


def timed(lab: ServiceLab, argv: list[str], budget: float, flags: list[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    done = lab.run([*argv, *flags, SERVER], timeout=budget)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-300:]}")
    return time.monotonic() - t0, done.stdout


def compare(lab: ServiceLab, flags: list[str], repeat: int, budget: float) -> float:
    """Alternate runs of both tools with ``flags``; print the walls and return the ratio of medians."""
    times: dict[str, list[float]] = {"leadline": [], "nmap": []}
    for _ in range(repeat):
        for tool, argv in (("leadline", [LEADLINE]), ("nmap", ["nmap"])):
            wall, _out = timed(lab, argv, budget, flags)
            times[tool].append(wall)
    # Counted once more, untimed: leadline's from the API's report (its normal output does not show
    # script results yet), nmap's from its XML.
    ours, theirs = leadline_scripts(lab, flags), nmap_scripts(lab, flags)
    results = {"leadline": sum(len(v) for v in ours.values()), "nmap": sum(len(v) for v in theirs.values())}
    same = sum(1 for port, found in ours.items() for sid, text in found.items() if theirs.get(port, {}).get(sid) == text)
    print(f"{' '.join(flags)} {SERVER}, {repeat} run(s) each (seconds)")
    for tool, walls in times.items():
        shown = " ".join(f"{w:.2f}" for w in walls)
        print(f"  {tool:9} median {statistics.median(walls):6.2f}  min {min(walls):6.2f}  max {max(walls):6.2f}"
              f"   runs: {shown}   script results: {results[tool]}")
    ratio = statistics.median(times["leadline"]) / statistics.median(times["nmap"])
    print(f"  ratio leadline/nmap (medians): {ratio:.3f}; leadline results identical to nmap's: {same} of {results['leadline']}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds each run may take")
    options = parser.parse_args()
    with service_lab("b") as lab:
        compare(lab, FLAGS, options.repeat, options.budget)
        same = ["--script", SAME_SET, *FLAGS[1:]]
        compare(lab, same, options.repeat, options.budget)
    print(f"goal for -sC -sV together: <= {GOAL}, measured by bench/version.py (this is -sC alone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
