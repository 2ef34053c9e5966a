"""The raw-packet goals side by side with nmap: wall and CPU time, same run, same answers.

Scenarios (``--only`` picks some; all by default):

  syn-veth    ``-sS -p- -n -Pn`` of the course server, scanner on a veth (the practice network)
  syn-bridge  ``-sS -p- -n -Pn`` of one host, the scanner's interface a Linux bridge holding
              the targets' veths (``leadline.lab.bridged``)
  sweep       ``-sn -n`` (nmap's default probes) over 32,768 answering addresses behind a router
  sweep-pe    the same with ``-PE`` alone
  sweep-four  the same with ``-PE -PP -PS443 -PA80`` given explicitly
  syn80       ``-sS -p80 -n -Pn`` over the same range

Each tool runs ``--repeat`` times, interleaved, in the scanner namespace
of a lab built for the scenario (prefixes ``llrv``, ``llrb``, ``llrr``;
``--prefix`` changes the ``llr`` stem) and removed afterwards.  For every run: wall time from spawn to exit,
CPU seconds (user + system, from wait4), and whether its answer matches
nmap's first run (port states and reasons for one host; the set of hosts
up, or of hosts with 80 open, for a range).  Then the medians, the
spread, the ratio leadline/nmap and the goal.

    sudo .venv/bin/python bench/raw_goals.py [--only syn-veth,sweep] [--repeat 5]
"""

from __future__ import annotations

import os
import select
import signal
import statistics
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import common

from leadline.lab import Lab, Topology, practice_topology
from leadline.lab.bridged import bridge_the_scanner, bridged_scanner_topology
from leadline.lab.topology import routed_range_topology

SWEPT = "198.19.0.0/17"
SWEPT_SIZE = 32768
BRIDGED_NETWORK = "198.18.76"
BRIDGED_TARGET = f"{BRIDGED_NETWORK}.10"


@dataclass
class Timed:
    """One run: wall and CPU seconds, and the answer it gave (for comparison)."""

    tool: str
    wall: float
    cpu: float
    capped: bool
    answer: object


@dataclass(frozen=True)
class Scenario:
    """A lab, a command line (without the tool) and how to read the answer out of -oX."""

    name: str
    prefix: str
    flags: tuple[str, ...]
    target: str
    goal_wall: float
    goal_cpu: float | None
    answer: Callable[[str], object]
    build: Callable[[], Topology]
    after_up: Callable[[Lab, Topology], None] | None = None


def port_answer(address: str) -> Callable[[str], object]:
    def read(xml: str) -> object:
        found = common.states(common.Run("", 0, False, 0, 0, xml, "", ""), address)
        return None if found is None else sorted(found.ports.items())
    return read


def hosts_up(xml: str) -> object:
    """Addresses with status up (a sweep), or whose scanned port answered, open or closed (a port scan)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    up: set[str] = set()
    for host in root.iter("host"):
        status = host.find("status")
        address = host.find("address")
        if address is None or status is None or status.get("state") != "up":
            continue
        ports = host.find("ports")
        if ports is not None and not any(s.get("state") in ("open", "closed") for s in ports.iter("state")):
            continue
        up.add(address.get("addr", ""))
    return frozenset(up)


def _bridge(lab: Lab, topology: Topology) -> None:
    bridge_the_scanner(lab, topology, f"{BRIDGED_NETWORK}.2/24")


SCENARIOS = {
    "syn-veth": Scenario("syn-veth", "llrv", ("-sS", "-p-", "-n", "-Pn"), common.COURSE, 0.35, 2.0,
                         port_answer(common.COURSE), practice_topology),
    "syn-bridge": Scenario("syn-bridge", "llrb", ("-sS", "-p-", "-n", "-Pn"), BRIDGED_TARGET, 0.35, 2.0,
                           port_answer(BRIDGED_TARGET), lambda: bridged_scanner_topology(BRIDGED_NETWORK, 1),
                           _bridge),
    "sweep": Scenario("sweep", "llrr", ("-sn", "-n"), SWEPT, 0.3, None, hosts_up, routed_range_topology),
    "sweep-pe": Scenario("sweep-pe", "llrr", ("-sn", "-n", "-PE"), SWEPT, 0.3, None, hosts_up,
                         routed_range_topology),
    "sweep-four": Scenario("sweep-four", "llrr", ("-sn", "-n", "-PE", "-PP", "-PS443", "-PA80"), SWEPT, 0.3,
                           None, hosts_up, routed_range_topology),
    "syn80": Scenario("syn80", "llrr", ("-sS", "-p80", "-n", "-Pn"), SWEPT, 0.3, None, hosts_up,
                      routed_range_topology),
}


def timed(lab: Lab, tool: str, argv: Sequence[str], budget: float, answer: Callable[[str], object]) -> Timed:
    """Run argv with -oX in the scanner namespace; wall time by pidfd, CPU time by wait4."""
    with tempfile.TemporaryDirectory(prefix="llr-bench-") as scratch:
        xml_path = Path(scratch) / "out.xml"
        started = time.perf_counter()
        child = lab.popen(lab.scanner, [*argv, "-oX", str(xml_path)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pidfd = os.pidfd_open(child.pid)
        try:
            capped = not select.select([pidfd], [], [], budget)[0]
            if capped:
                os.kill(child.pid, signal.SIGINT)
                if not select.select([pidfd], [], [], common.KILL_GRACE)[0]:
                    os.kill(child.pid, signal.SIGKILL)
            _, status, usage = os.wait4(child.pid, 0)
            wall = budget if capped else time.perf_counter() - started
        finally:
            os.close(pidfd)
        child.returncode = os.waitstatus_to_exitcode(status)
        xml = xml_path.read_text(errors="replace") if xml_path.exists() else ""
    return Timed(tool, wall, usage.ru_utime + usage.ru_stime, capped, answer(xml))


ENGINE = r"""
import ipaddress, json, os, sys, time
kind, target, probes = sys.argv[1], sys.argv[2], sys.argv[3:]
from leadline.config import TIMING_TEMPLATES, DiscoveryProbe, ScanType
timing = TIMING_TEMPLATES[3]
started, cpu = time.perf_counter(), time.process_time()
if kind == "sweep":
    from leadline.engines.discovery import raw_discover
    chosen = [DiscoveryProbe(p.split(":")[0], tuple(int(x) for x in p.split(":")[1:])) for p in probes]
    addresses = [str(a) for a in ipaddress.ip_network(target)]
    found = sum(1 for result in raw_discover(addresses, chosen, timing, arp=False) if result.up)
else:
    from leadline.core.probes.base import ProbeContext
    from leadline.core.ratecontrol import RateController
    from leadline.core.session import HostDone, ScanSession
    from leadline.engines.raw import run_raw_scan, source_address_for
    from leadline.scantypes import probe_module
    hosts = [str(a) for a in ipaddress.ip_network(target)]
    ports = list(range(1, 65536)) if kind == "syn" else [80]
    ctx = ProbeContext(source_address_for(hosts[0]), os.urandom(16))
    session = ScanSession.for_group(probe_module(ScanType.SYN, None), ctx, hosts, ports, timing,
                                    RateController.from_timing(timing), explain=False)
    done = []
    run_raw_scan(session, on_event=lambda e: done.append(1) if isinstance(e, HostDone) else None)
    found = len(done)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "found": found}))
"""

ENGINE_ARGS = {
    "syn-veth": ["syn", common.COURSE],
    "syn-bridge": ["syn", BRIDGED_TARGET],
    "sweep": ["sweep", SWEPT],  # no probes named: nmap's default set
    "sweep-pe": ["sweep", SWEPT, "echo"],
    "sweep-four": ["sweep", SWEPT, "echo", "timestamp", "syn:443", "ack:80"],
    "syn80": ["syn80", SWEPT],
}


def engine_runs(lab: Lab, scenario: Scenario, repeat: int, budget: float) -> None:
    """The engine alone (no CLI, no pipeline, no output), in one process, after its imports."""
    import json
    import sys
    walls, cpus, found = [], [], set()
    for _ in range(repeat):
        done = lab.run(lab.scanner, [sys.executable, "-c", ENGINE, *ENGINE_ARGS[scenario.name]], timeout=budget)
        if done.returncode != 0:
            print(f"   engine alone failed: {done.stderr.strip().splitlines()[-1:]}")
            return
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        walls.append(figures["wall"])
        cpus.append(figures["cpu"])
        found.add(figures["found"])
    print(f"   engine alone (one process, no CLI): wall {spread(walls)}  cpu {spread(cpus)}  "
          f"hosts done/up {sorted(found)}", flush=True)


def spread(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def run_scenario(lab: Lab, scenario: Scenario, repeat: int, budget: float) -> bool:
    """Interleaved runs of both tools; prints every run and the summary; True when the goals hold."""
    commands = {"leadline": [common.LEADLINE, *scenario.flags, scenario.target],
                "nmap": ["nmap", *scenario.flags, scenario.target]}
    runs: dict[str, list[Timed]] = {tool: [] for tool in commands}
    for round_number in range(repeat):
        for tool, argv in commands.items():
            run = timed(lab, tool, argv, budget, scenario.answer)
            runs[tool].append(run)
            size = len(run.answer) if isinstance(run.answer, (list, frozenset)) else 0
            print(f"  {scenario.name} round {round_number + 1}: {tool:<8} wall {run.wall:6.2f} s  "
                  f"cpu {run.cpu:6.2f} s  {'capped ' if run.capped else ''}answer size {size}", flush=True)
    reference = runs["nmap"][0].answer
    agree = reference is not None and all(r.answer == reference for rs in runs.values() for r in rs)
    if isinstance(reference, frozenset):
        agree = agree and len(reference) == SWEPT_SIZE
    ours, theirs = runs["leadline"], runs["nmap"]
    wall_ratio = statistics.median(r.wall for r in ours) / statistics.median(r.wall for r in theirs)
    cpu_ratio = statistics.median(r.cpu for r in ours) / statistics.median(r.cpu for r in theirs)
    met = agree and wall_ratio <= scenario.goal_wall and not any(r.capped for r in ours)
    if scenario.goal_cpu is not None:
        met = met and cpu_ratio <= scenario.goal_cpu
    print(f"== {scenario.name}: {' '.join(scenario.flags)} {scenario.target}, {repeat} runs each")
    for tool, tool_runs in runs.items():
        print(f"   {tool:<8} wall {spread([r.wall for r in tool_runs])}  cpu {spread([r.cpu for r in tool_runs])}")
    goal_cpu = "" if scenario.goal_cpu is None else f", cpu ratio {cpu_ratio:.2f} (goal <= {scenario.goal_cpu:g})"
    print(f"   wall ratio {wall_ratio:.3f} (goal <= {scenario.goal_wall:g}){goal_cpu}; answers "
          f"{'identical' if agree else 'DIFFER'}; goal {'met' if met else 'NOT met'}", flush=True)
    return met


def main() -> int:
    def extra(parser: object) -> None:
        parser.add_argument("--only", default=",".join(SCENARIOS),  # type: ignore[attr-defined]
                            help="comma-separated scenarios: " + ", ".join(SCENARIOS))
        parser.add_argument("--prefix", default="llr",  # type: ignore[attr-defined]
                            help="lab prefix stem; the labs are <stem>v, <stem>b, <stem>r (default llr)")
    options = common.arguments(__doc__.splitlines()[0], budget=120, repeat=3, extra=extra)
    chosen = [name for name in options.only.split(",") if name]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    print(f"load average before: {os.getloadavg()}", flush=True)
    results: dict[str, bool] = {}
    by_prefix: dict[str, list[Scenario]] = {}
    for name in chosen:
        prefix = options.prefix + SCENARIOS[name].prefix[len("llr"):]
        by_prefix.setdefault(prefix, []).append(SCENARIOS[name])
    for prefix, scenarios in by_prefix.items():
        topology = scenarios[0].build()
        with common.bench_lab(prefix, topology) as lab:
            if scenarios[0].after_up is not None:
                scenarios[0].after_up(lab, topology)
            for scenario in scenarios:
                results[scenario.name] = run_scenario(lab, scenario, options.repeat, options.budget)
                engine_runs(lab, scenario, options.repeat, options.budget)
    print(f"load average after: {os.getloadavg()}")
    print("goals: " + ", ".join(f"{name} {'met' if met else 'NOT met'}" for name, met in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
