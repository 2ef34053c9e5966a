"""--cluster local:2 against one process: a -sn sweep of 32,768 answering addresses.

The range is a routed /17 (``routed_range_topology``: a router, and a
target answering for every address of 198.19.0.0/17 on its loopback).
Each run is timed from spawn to exit, cluster start-up and shut-down
included, alternating one process and the cluster, ``--repeat`` times.
Every run's set of hosts up must equal the first single-process run's
(32,768 hosts), and no host may be reported twice.  The figure asked of
the cluster: median wall time at most 1.2x the single process's.

Each line also shows the run's CPU time (user + system, the cluster's
worker processes included: the coordinator reaps them before it exits)
and the load average as the run began.  The machine is shared, and with
the kernel's autogroup scheduling (``kernel.sched_autogroup_enabled``) the
CPU is shared between sessions before it is shared between the processes
of one; the coordinator and its workers are one session, so on a busy
machine the cluster's wall time follows its CPU time.

    sudo .venv/bin/python bench/cluster.py [--repeat 5] [--prefix llcl]
"""

from __future__ import annotations

import os
import statistics
import xml.etree.ElementTree as ET
from collections import Counter

import common

from leadline.lab.topology import routed_range_topology

SWEPT = "198.19.0.0/17"
SWEPT_SIZE = 32768
GOAL = 1.2


def hosts_up(xml: str) -> tuple[set[str], int, Counter[str]]:
    """Addresses up, how many host elements there were, and the workers named."""
    root = ET.fromstring(xml)
    up, count, workers = set(), 0, Counter()
    for host in root.iter("host"):
        count += 1
        status = host.find("status")
        address = host.find("address")
        if status is not None and address is not None and status.get("state") == "up":
            up.add(address.get("addr", ""))
        comment = host.get("comment", "")
        if comment.startswith("scanned by "):
            workers[comment[len("scanned by "):]] += 1
    return up, count, workers


def main() -> None:
    options = common.arguments(__doc__.splitlines()[0], budget=120.0, repeat=5,
                               extra=lambda p: p.add_argument("--prefix", default="llcl"))
    commands = {
        "one process": [common.LEADLINE, "-sn", "-n", SWEPT],
        "local:2": [common.LEADLINE, "-sn", "-n", "--cluster", "local:2", SWEPT],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    reference: set[str] | None = None
    with common.bench_lab(options.prefix, routed_range_topology(SWEPT)) as lab:
        for attempt in range(options.repeat):
            for name, argv in commands.items():
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                run = common.timed_run(lab, name, argv, options.budget)
                up, count, workers = hosts_up(run.xml) if run.xml and not run.capped else (set(), 0, Counter())
                if reference is None:
                    reference = up
                same = up == reference and len(up) == SWEPT_SIZE and count == SWEPT_SIZE
                if same:
                    walls[name].append(run.wall)  # a failed run is shown, never counted
                    cpus[name].append(run.cpu)
                shown = ", ".join(f"{w}: {n}" for w, n in sorted(workers.items())) or "-"
                print(f"run {attempt + 1} {name:12} wall {run.shown_wall:>7} s  cpu {run.cpu:5.2f} s  load {load}  "
                      f"up {len(up):6}  host elements {count:6}  same as first: {'yes' if same else 'NO'}  "
                      f"workers: {shown}", flush=True)
    if not walls["one process"] or not walls["local:2"]:
        raise SystemExit("no run gave the full answer: nothing to compare")
    single, cluster = statistics.median(walls["one process"]), statistics.median(walls["local:2"])
    for name, median in (("one process", single), ("local:2", cluster)):
        print(f"{name + ':':12} median {median:.2f} s (runs {', '.join(f'{w:.2f}' for w in walls[name])}); "
              f"CPU median {statistics.median(cpus[name]):.2f} s (runs {', '.join(f'{c:.2f}' for c in cpus[name])})")
    print(f"ratio local:2 / one process: {cluster / single:.2f} (goal <= {GOAL}); "
          f"overhead {100 * (cluster - single) / single:+.0f}%")


if __name__ == "__main__":
    main()
