"""leadline -sS against nmap -sS: every TCP port of the course server.

Goal: leadline takes at most half nmap's time (ratio <= 0.5), with the
same state and reason for all 65535 ports.  masscan runs alongside when
installed, for scale only: it lists open ports and nothing else, so its
states are not compared.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import common

FLAGS = ["-sS", "-p-", "-n", "-Pn"]
GOAL = 0.5


def listed_open_ports(xml_text: str) -> list[int]:
    """Open ports of any nmap-layout XML, including masscan's one-host-element-per-port files."""
    if not xml_text:
        return []
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return []
    return sorted(int(port.get("portid", "0")) for port in root.iter("port")
                  if (state := port.find("state")) is not None and state.get("state") == "open")


def main() -> int:
    options = common.arguments(__doc__.splitlines()[0], budget=120, repeat=3,
                               extra=lambda p: p.add_argument("--prefix", default="llis"))
    commands = {
        **common.leadline_commands(options, [*FLAGS, common.COURSE]),
        "nmap": ["nmap", *FLAGS, common.COURSE],
    }
    with common.bench_lab(options.prefix) as lab:
        runs = common.side_by_side(lab, commands, options.repeat, options.budget)
        masscan = None
        if shutil.which("masscan"):
            # masscan sends from its own stack; the scanner's address keeps replies routable.
            masscan = common.timed_run(lab, "masscan", [
                "masscan", "-p0-65535", "--rate", "100000", "--wait", "1",
                "--adapter-ip", "198.18.1.2", common.COURSE], options.budget)
    reference = common.states(runs["nmap"][0], common.COURSE)
    rows = [(run, common.compare(run, reference, common.COURSE)) for tool in runs for run in runs[tool]]
    common.print_runs(f"-sS -p- -n -Pn {common.COURSE}, {options.repeat} run(s) each", rows)
    if masscan is not None:
        opened = listed_open_ports(masscan.xml)
        agreeing = "same" if opened == listed_open_ports(runs["nmap"][0].xml) else "NOT the same"
        print(f"masscan (--rate 100000, --wait 1, for scale) {masscan.shown_wall} s, "
              f"peak RSS {masscan.peak_rss_kb / 1024:.1f} MB, open ports {opened}: {agreeing} as nmap's")
    agree = all(comparison.same for _, comparison in rows)
    common.print_summary(runs["leadline"], runs["nmap"], "nmap", GOAL, agree)
    common.print_old_summary(runs, "nmap")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
