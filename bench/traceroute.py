"""leadline --traceroute against nmap --traceroute: the lab's subnets, and a route through a silent router.

    sudo .venv/bin/python bench/traceroute.py [--repeat 5]

Two networks, each in a lab of its own: the practice lab's three subnets
(``-sS -p 22,80 --traceroute -n`` over 198.18.1.0/24, 198.18.2.0/24 and
198.18.3.0/24: discovery, the scan and the traces of every answering host)
and the router chain of ``leadline.lab.chain`` (two targets four hops
away behind a router that sends no time-exceeded).  Both tools run
alternately; every run's port states and routes must equal nmap's first
run's.  Goal: leadline's median wall time at most half nmap's (ratio <= 0.5).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import common
from leadline.lab.chain import CHAIN_TARGET, CHAIN_TARGET2, chain_topology

GOAL = 0.5
SUBNETS = ["198.18.1.0/24", "198.18.2.0/24", "198.18.3.0/24"]
FLAGS = ["-sS", "-p", "22,80", "--traceroute", "-n"]


def routes(xml_text: str) -> dict[str, list[tuple[int, str]]]:
    """address -> answering hops (ttl, address) of its <trace>; {} for an unreadable file."""
    found: dict[str, list[tuple[int, str]]] = {}
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return found
    for host in root.iter("host"):
        address, trace = host.find("address"), host.find("trace")
        if address is not None and trace is not None:
            found[address.get("addr", "")] = [(int(h.get("ttl", "0")), h.get("ipaddr", "")) for h in trace.iter("hop")]
    return found


def scenario(prefix: str, title: str, targets: list[str], options: object, topology: object = None) -> bool:
    """Run both tools over ``targets`` in a lab of their own; print the runs and the ratio; True if all agree."""
    commands = {"leadline": [common.LEADLINE, *FLAGS, *targets], "nmap": ["nmap", *FLAGS, *targets]}
    with common.bench_lab(prefix, topology) as lab:  # type: ignore[arg-type]
        runs = common.side_by_side(lab, commands, options.repeat, options.budget)  # type: ignore[attr-defined]
    reference_run = runs["nmap"][0]
    reference = routes(reference_run.xml)
    rows = []
    agree = bool(reference)
    for tool in runs:
        for run in runs[tool]:
            comparisons = [common.compare(run, common.states(reference_run, a), a) for a in reference]
            ports = sum(c.ports for c in comparisons)
            differences = [d for c in comparisons for d in c.differences]
            got = routes(run.xml)
            differences += [f"route to {a}: {got.get(a)} vs {want}" for a, want in reference.items() if got.get(a) != want]
            comparison = common.Comparison(ports, differences)
            agree = agree and comparison.same
            rows.append((run, comparison))
    common.print_runs(f"{title}: {' '.join(FLAGS)} {' '.join(targets)}, {len(reference)} routes, "
                      f"{options.repeat} run(s) each", rows)  # type: ignore[attr-defined]
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, agree)
    return agree


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=120, repeat=3)
    agree = scenario("llit", "the practice lab's subnets", SUBNETS, options)
    agree = scenario("llitc", "the router chain (silent hop 2)", [CHAIN_TARGET, CHAIN_TARGET2], options,
                     chain_topology()) and agree
    print(f"\nall runs: {'same port states and routes as nmap' if agree else 'DIFFERENT results (see above)'}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
