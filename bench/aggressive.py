"""The -A report on the course server, side by side with nmap: wall time, ratio, and the same findings.

    sudo .venv/bin/python bench/aggressive.py [--repeat 3] [--flags "-A"]

Both tools run with the same flags against 198.18.1.10 (ports 1-1024 and
50000-50010: the course server's echo and web services and its dropped
block) in a practice lab of the benchmark's own.  ``-A`` is nmap's
``-O -sV -sC --traceroute``, the default flags for both tools.  Every run
must give nmap's port states, service names and products, best OS class
and route.  Goal: leadline's median wall time at most half nmap's.
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET

import common

GOAL = 0.5
PORTS = "1-1024,50000-50010"
DEFAULT_FLAGS = "-A"


Service = tuple[str | None, str | None]  # name, product
OsClass = tuple[str | None, str | None, str | None] | None  # vendor, family, generation of the best match


def findings(xml_text: str) -> tuple[dict[int, Service], OsClass, list[tuple[int, str]]]:
    """Service name and product per open port, the best OS class and the route's hops, from one run's XML."""
    services: dict[int, Service] = {}
    route: list[tuple[int, str]] = []
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return services, None, route
    for port in root.iter("port"):
        state, service = port.find("state"), port.find("service")
        if state is not None and state.get("state") == "open":
            services[int(port.get("portid", "0"))] = (None, None) if service is None else (
                service.get("name"), service.get("product"))
    best = root.find(".//osmatch/osclass")
    os_class = None if best is None else (best.get("vendor"), best.get("osfamily"), best.get("osgen"))
    route = [(int(h.get("ttl", "0")), h.get("ipaddr", "")) for h in root.iter("hop")]
    return services, os_class, route


def main() -> int:
    def extra(parser: object) -> None:
        parser.add_argument("--flags", default=DEFAULT_FLAGS,  # type: ignore[attr-defined]
                            help=f"the flags both tools get (default {DEFAULT_FLAGS!r})")

    options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=3, extra=extra)
    flags = [*shlex.split(options.flags), "-p", PORTS]
    commands = {"leadline": [common.LEADLINE, *flags, common.COURSE], "nmap": ["nmap", *flags, common.COURSE]}
    with common.bench_lab("llia") as lab:
        runs = common.side_by_side(lab, commands, options.repeat, options.budget)
    reference = common.states(runs["nmap"][0], common.COURSE)
    expected = findings(runs["nmap"][0].xml)
    rows = []
    agree = True
    for tool in runs:
        for run in runs[tool]:
            comparison = common.compare(run, reference, common.COURSE, with_reason=False)
            got = findings(run.xml)
            if got != expected:
                comparison.differences.append(f"services/OS class/route {got} vs nmap's {expected}")
            agree = agree and comparison.same
            rows.append((run, comparison))
    common.print_runs(f"{' '.join(flags)} {common.COURSE}, {options.repeat} run(s) each", rows)
    print(f"nmap's findings: services {expected[0]}, best OS class {expected[1]}, route {expected[2]}")
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, agree)
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
