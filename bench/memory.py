"""Peak memory of a SYN scan as the number of targets grows (by default /20, /18, /16).

A target namespace answers for a whole /16 (a `local` route over lo), so
every address is a live host and every probe draws a reply.  leadline's
peak RSS should stay flat as the target count grows sixteenfold: targets
are expanded lazily and finished hosts are written out, not kept.  nmap
runs the same scans for comparison; a run stopped by the budget still
reports its peak so far (shown as ">").
"""

from __future__ import annotations

import argparse

import common
from leadline.lab import Host, Interface, Route, Topology

SCANNER_ADDRESS = "198.18.250.1"
TARGET_ADDRESS = "198.18.250.2"
SWEPT = "198.19.0.0"


def sweep_topology() -> Topology:
    """Two hosts on one segment; the target owns all of 198.19.0.0/16."""
    scanner = Host("scanner", (Interface("bench", f"{SCANNER_ADDRESS}/24"),),
                   routes=(Route(f"{SWEPT}/16", via=TARGET_ADDRESS),), role="scans run here")
    target = Host("target", (Interface("bench", f"{TARGET_ADDRESS}/24"),),
                  routes=(Route(f"{SWEPT}/16", kind="local", device="lo"),),
                  role="answers for a whole /16")
    return Topology("memory-sweep", (scanner, target), scanner="scanner")


def _options(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("--top-ports", type=int, default=0,
                        help="scan the N most common ports instead of 80,443,22,21,25 (e.g. 100)")
    parser.add_argument("--sizes", default="20,18,16",
                        help="prefix lengths of 198.19.0.0 to sweep (default 20,18,16)")


def main() -> int:
    parser_options = common.arguments(__doc__.splitlines()[0], budget=300, repeat=1, extra=_options)
    sizes = tuple(int(bits) for bits in parser_options.sizes.split(","))
    if parser_options.top_ports:
        port_flags = ["--top-ports", str(parser_options.top_ports)]
        per_host = parser_options.top_ports
        parser_options.ports = f"top {per_host}"
    else:
        port_flags = ["-p", "80,443,22,21,25"]  # nmap's five most common TCP ports
        per_host = 5
        parser_options.ports = "80,443,22,21,25"
    flags = ["-sS", "-n", "-Pn", *port_flags, "--max-retries", "1", "--max-rate", "200000"]
    results: list[tuple[int, common.Run, common.Run]] = []
    with common.bench_lab("llim", sweep_topology()) as lab:
        for bits in sizes:
            target = f"{SWEPT}/{bits}"
            ours = common.timed_run(lab, "leadline", [common.LEADLINE, *flags, target], parser_options.budget)
            theirs = common.timed_run(lab, "nmap", ["nmap", *flags, target], parser_options.budget)
            print(f"  /{bits}: leadline {ours.shown_wall} s, nmap {theirs.shown_wall} s", flush=True)
            results.append((bits, ours, theirs))
    print(f"\n== peak RSS, -sS -n -Pn {' '.join(port_flags)} --max-retries 1 --max-rate 200000")
    print(f"{'targets':<16} {'hosts':>6} {'probes':>8} {'leadline MB':>12} {'wall s':>8} "
          f"{'nmap MB':>9} {'wall s':>8}  hosts up (leadline / nmap)")
    agree = True
    for bits, ours, theirs in results:
        hosts = 2 ** (32 - bits)
        up = [_hosts_up(run) for run in (ours, theirs)]
        agree = agree and not ours.capped and up[0] == hosts and (theirs.capped or up[1] == hosts)
        print(f"{SWEPT + '/' + str(bits):<16} {hosts:>6} {hosts * per_host:>8} "
              f"{_peak(ours):>12} {ours.shown_wall:>8} {_peak(theirs):>9} {theirs.shown_wall:>8}  "
              f"{up[0]} / {up[1]}")
    first, last = results[0][1].peak_rss_kb, results[-1][1].peak_rss_kb
    growth = 2 ** (sizes[0] - sizes[-1])
    print(f"\nleadline's peak grows {last / first:.2f}x for {growth}x the targets "
          f"({first / 1024:.1f} -> {last / 1024:.1f} MB)")
    print(f"results: {'every host up in every finished run' if agree else 'MISSING hosts (see above)'}")
    return 0 if agree else 1


def _peak(run: common.Run) -> str:
    return f"{'>' if run.capped else ''}{run.peak_rss_kb / 1024:.1f}"


def _hosts_up(run: common.Run) -> int:
    """Hosts with at least one closed or open port, from the run's XML (0 when unreadable)."""
    try:
        found = common.read_states(run.xml) if run.xml else {}
    except Exception:
        return 0
    return sum(1 for host in found.values()
               if any(state in ("open", "closed") for state, _ in host.ports.values()))


if __name__ == "__main__":
    raise SystemExit(main())
