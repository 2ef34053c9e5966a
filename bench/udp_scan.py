"""leadline -sU against nmap -sU on the IoT device: ICMP limit off, the kernel's default limit, a source pool.

Three measurements of `-sU --top-ports 100 -n -Pn` against the lab's IoT device
(198.18.1.20), both tools in the same scanner namespace, interleaved:

1. the target's ICMP limit off: leadline against nmap (goal <= 0.3x nmap),
   every port in nmap's state;
2. the kernel's default limit (net.ipv4.icmp_ratelimit=1000: a burst of six
   errors, then one a second): leadline against the floor that limit sets
   for one source address, (closed ports - 6) seconds (goal <= 1.3x the
   floor), every port in the state of the limit-off reference; nmap's run is
   shown beside it with the ports it got wrong;
3. the same limit, leadline with --source-pool of 8 lab addresses: against
   the floor for eight sources, (closed ports - 6 * 8) / 8 seconds (goal <= 1.3x).

With the limit on, each run starts after a pause of 7 s, so the target's
budget for our addresses is whole again, as the floors assume.  Walls include
starting the program (Python) and its ARP ping.

Run as root: `.venv/bin/python bench/udp_scan.py [--repeat N] [--budget S] [--prefix P]`.
"""

from __future__ import annotations

import time

import common
from leadline.lab import Lab

IOT = "198.18.1.20"
FLAGS = ["-sU", "--top-ports", "100", "-n", "-Pn"]
POOL = [f"198.18.1.{n}" for n in range(200, 208)]
BURST, INTERVAL = 6, 1.0  # Linux's defaults per source address
REFILL = BURST * INTERVAL + 1.0  # seconds for a drained budget to be whole again


def rested_runs(lab: Lab, commands: dict[str, list[str]], repeat: int, budget: float) -> dict[str, list[common.Run]]:
    """Like common.side_by_side, but every run starts with the target's ICMP budget whole, as the floor assumes:
    a run right after another would inherit a drained budget and pay for its predecessor."""
    runs: dict[str, list[common.Run]] = {tool: [] for tool in commands}
    for round_number in range(repeat):
        for tool, argv in commands.items():
            time.sleep(REFILL)
            run = common.timed_run(lab, tool, argv, budget)
            print(f"  round {round_number + 1}: {tool} {run.shown_wall} s", flush=True)
            runs[tool].append(run)
    return runs


def closed_ports(reference: common.HostStates | None) -> int:
    return sum(1 for state, _ in (reference.ports.values() if reference else ()) if state == "closed")


def floor_line(title: str, runs: list[common.Run], floor: float, goal: float) -> None:
    walls = ", ".join(r.shown_wall for r in runs)
    median, capped = common.median_wall(runs)
    ratio = median / floor if floor > 0 else float("inf")
    verdict = "met" if ratio <= goal and not capped else "NOT met"
    print(f"{title}: floor {floor:.1f} s; leadline runs {walls} s; median/floor {ratio:.3f}   goal <= {goal:g}: {verdict}")


def limit_off(lab: Lab, options: object) -> common.HostStates | None:
    runs = common.side_by_side(lab, {"leadline": [common.LEADLINE, *FLAGS, IOT], "nmap": ["nmap", *FLAGS, IOT]},
                               options.repeat, options.budget)  # type: ignore[attr-defined]
    reference = common.states(runs["nmap"][0], IOT)
    rows = [(run, common.compare(run, reference, IOT)) for tool in runs for run in runs[tool]]
    common.print_runs("1. ICMP limit off", rows)
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", 0.3, all(c.same for _, c in rows))
    return reference


def limit_on(lab: Lab, options: object, reference: common.HostStates | None, closed: int) -> None:
    lab.set_sysctls("iot", {"net.ipv4.icmp_ratelimit": "1000"})
    runs = rested_runs(lab, {"leadline": [common.LEADLINE, *FLAGS, IOT], "nmap": ["nmap", *FLAGS, IOT]},
                               options.repeat, options.budget)  # type: ignore[attr-defined]
    rows = [(run, common.compare(run, reference, IOT)) for tool in runs for run in runs[tool]]
    common.print_runs("2. default ICMP limit (compared with the limit-off reference)", rows)
    floor_line("one source address", runs["leadline"], max(0, closed - BURST) * INTERVAL, 1.3)
    print(f"results: leadline {'exact' if all(c.same for r, c in rows if r.tool == 'leadline') else 'NOT exact'}")


def pool(lab: Lab, options: object, reference: common.HostStates | None, closed: int) -> None:
    for address in POOL:
        lab.run(lab.scanner, ["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
    argv = [common.LEADLINE, *FLAGS, "--source-pool", ",".join(POOL), IOT]
    runs = rested_runs(lab, {"leadline": argv}, options.repeat, options.budget)  # type: ignore[attr-defined]
    rows = [(run, common.compare(run, reference, IOT)) for run in runs["leadline"]]
    common.print_runs("3. default ICMP limit, --source-pool of 8 addresses", rows)
    floor_line("eight source addresses", runs["leadline"], max(0, closed - BURST * len(POOL)) * INTERVAL / len(POOL), 1.3)
    print(f"results: leadline {'exact' if all(c.same for _, c in rows) else 'NOT exact'}")


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=3,
                               extra=lambda p: p.add_argument("--prefix", default="lu1b",
                                                              help="the lab's name prefix (default lu1b)"))
    with common.bench_lab(options.prefix) as lab:
        reference = limit_off(lab, options)
        closed = closed_ports(reference)
        print(f"\nreference: {closed} closed ports of {len(reference.ports) if reference else 0}")
        limit_on(lab, options, reference, closed)
        pool(lab, options, reference, closed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
