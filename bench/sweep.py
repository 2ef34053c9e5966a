"""Ping-sweep rate: ``leadline -sn --send-ip -PE`` against ``masscan --ping`` over a /16.

The benchmark builds its own two-namespace lab (prefix "llhb"): a scanner
198.18.100.1 and a target 198.18.100.2 that answers for all of
198.19.0.0/16 (a ``local`` route on its loopback), routed to it from the
scanner.  Both tools sweep the whole /16 with ICMP echo at the same
--max-rate / --rate; an iptables rule in the target counts the echo
requests that arrived.  For each tool it prints wall time, hosts found,
requests received and the rate achieved: requests received over the
seconds from the tool's start until the target had them all (startup
included, masscan's --wait excluded), then the ratio leadline/masscan.  Every run is capped by --budget seconds; the lab
is removed whatever happens.

    sudo .venv/bin/python bench/sweep.py [--rate 20000] [--budget 60]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from leadline.lab import Host, Interface, Lab, Route, Rule, Topology

PREFIX = "llhb"
SCANNER_IP, TARGET_IP = "198.18.100.1", "198.18.100.2"
TARGET_MAC = "02:4c:11:00:64:02"
SWEPT = "198.19.0.0/16"
SWEPT_SIZE = 65536
LEADLINE = str(Path(sys.executable).parent / "leadline")
MASSCAN_WAIT = 1  # seconds masscan listens after its last probe
COUNT_TAG = "sweep-count"


def topology() -> Topology:
    scanner = Host("scanner", (Interface("bench", f"{SCANNER_IP}/24", "02:4c:11:00:64:01"),),
                   routes=(Route(SWEPT, via=TARGET_IP),))
    target = Host(
        "target",
        (Interface("bench", f"{TARGET_IP}/24", TARGET_MAC),),
        routes=(Route(SWEPT, kind="local", device="lo"),),
        firewall=(Rule("INPUT", f"-p icmp --icmp-type echo-request -m comment --comment {COUNT_TAG}"),),
    )
    return Topology("sweep-bench", (scanner, target))


@dataclass
class Outcome:
    tool: str
    wall: float
    sending: float  # seconds from start until the target had received every request
    hosts_up: int
    requests: int  # echo requests the target received
    capped: bool

    @property
    def rate(self) -> float:
        return self.requests / self.sending if self.sending > 0 else 0.0


def echo_requests(lab: Lab) -> int:
    """The target's count of echo requests so far (the counting rule's packet counter)."""
    listing = lab.run("target", ["iptables", "-nvxL", "INPUT"], timeout=10).stdout
    for line in listing.splitlines():
        if COUNT_TAG in line:
            return int(line.split()[0])
    raise RuntimeError("the counting rule is missing from the target")


def timed(lab: Lab, argv: list[str], budget: float, linger: float | None) -> tuple[float, float, str, bool]:
    """Run a tool; return (wall, seconds until the target had every request, output, capped).

    ``linger``: seconds to let the tool listen after the last request
    arrived before interrupting it (masscan 1.3 may never leave its
    receive loop by itself); None lets it end on its own.
    """
    before = echo_requests(lab)
    started = time.monotonic()
    process = lab.popen("scanner", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: process.stdout.read(65536), b"")))  # type: ignore[union-attr]
    reader.start()
    sent_all: float | None = None
    capped = False
    while process.poll() is None:
        now = time.monotonic()
        if now - started > budget:
            capped = True
            break
        if sent_all is None and echo_requests(lab) - before >= SWEPT_SIZE:
            sent_all = now - started
        if sent_all is not None and linger is not None and now - started > sent_all + linger:
            break
        time.sleep(0.02)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=10)
    wall = time.monotonic() - started
    return wall, sent_all if sent_all is not None else wall, b"".join(chunks).decode(errors="replace"), capped


def run_leadline(lab: Lab, rate: int, budget: float) -> Outcome:
    before = echo_requests(lab)
    argv = [LEADLINE, "-sn", "-n", "--send-ip", "-PE", "--max-rate", str(rate), "-oG", "-", SWEPT]
    wall, sending, output, capped = timed(lab, argv, budget, None)
    up = sum(1 for line in output.splitlines() if line.startswith("Host:") and "Status: Up" in line)
    return Outcome("leadline", wall, sending, up, echo_requests(lab) - before, capped)


def run_masscan(lab: Lab, rate: int, budget: float) -> Outcome:
    before = echo_requests(lab)
    argv = ["masscan", "--ping", SWEPT, "--rate", str(rate), "--interface", "eth0",
            "--adapter-ip", SCANNER_IP, "--router-mac", TARGET_MAC, "--wait", str(MASSCAN_WAIT)]
    wall, sending, output, capped = timed(lab, argv, budget, MASSCAN_WAIT + 0.5)
    up = len(set(re.findall(r"Discovered open port 0/icmp on (\S+)", output)))
    return Outcome("masscan", wall, sending, up, echo_requests(lab) - before, capped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=20000, help="--max-rate / --rate for both tools (default 20000)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds a tool run may take (default 60)")
    options = parser.parse_args()
    if options.rate <= 0 or options.budget <= 0:
        parser.error("--rate and --budget must be positive")
    lab = Lab(PREFIX)
    try:
        lab.up(topology())
        outcomes = [run_leadline(lab, options.rate, options.budget), run_masscan(lab, options.rate, options.budget)]
    finally:
        lab.down()
    print(f"-sn ICMP echo sweep of {SWEPT} ({SWEPT_SIZE} addresses), rate cap {options.rate}/s")
    print(f"{'tool':<10}{'wall s':>9}{'send s':>9}{'hosts up':>10}{'requests':>10}{'pps':>10}")
    for o in outcomes:
        wall = f">{o.wall:.1f}" if o.capped else f"{o.wall:.2f}"
        print(f"{o.tool:<10}{wall:>9}{o.sending:>9.2f}{o.hosts_up:>10}{o.requests:>10}{o.rate:>10.0f}")
    ours, theirs = outcomes
    if theirs.rate > 0:
        print(f"ratio leadline/masscan (pps): {ours.rate / theirs.rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
