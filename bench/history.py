"""The scan history at scale: ``db import`` and ``report`` of a 65,536-host nmap XML file.

No network is involved: the script writes an nmap-format XML file of a
/16 (three ports per host, every host behind one of 16 first hops and 4
second hops, one OS match each), then times ``leadline db import`` into a
fresh SQLite file and ``leadline report`` of the imported run and of the
file itself, each in its own process, with that process's peak RSS.
Every run is printed (the spread, not the best).  Goals: each step under
10 s on a 2-core machine, memory bounded (the XML is streamed, the store
read through cursors).

    .venv/bin/python bench/history.py [--hosts 65536] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEADLINE = str(Path(sys.executable).parent / "leadline")
GOAL = 10.0


def write_xml(path: Path, hosts: int) -> None:
    """An nmap 7.93-style file: -sS -p 22,80,443 --traceroute -O of 198.18.0.0/16 (made up, nothing is sent)."""
    start = 1_764_000_000
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n'
                  f'<nmaprun scanner="nmap" args="nmap -sS -p 22,80,443 -O --traceroute 198.18.0.0/16" start="{start}" '
                  'startstr="x" version="7.93" xmloutputversion="1.05">\n'
                  '<scaninfo type="syn" protocol="tcp" numservices="3" services="22,80,443"/>\n'
                  '<verbose level="0"/>\n<debugging level="0"/>\n')
        for n in range(hosts):
            addr = f"198.18.{n >> 8 & 255}.{n & 255}"
            r1, r2 = f"198.19.0.{n % 16 + 1}", f"198.19.1.{n % 4 + 1}"
            http = "open" if n % 3 else "closed"
            out.write(
                f'<host starttime="{start}" endtime="{start + 5}"><status state="up" reason="syn-ack" reason_ttl="61"/>\n'
                f'<address addr="{addr}" addrtype="ipv4"/>\n<hostnames>\n</hostnames>\n<ports>'
                '<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="61"/>'
                '<service name="ssh" product="OpenSSH" version="9.2p1" method="probed" conf="10"/></port>\n'
                f'<port protocol="tcp" portid="80"><state state="{http}" reason="syn-ack" reason_ttl="61"/>'
                '<service name="http" method="table" conf="3"/></port>\n'
                '<port protocol="tcp" portid="443"><state state="closed" reason="reset" reason_ttl="61"/>'
                '<service name="https" method="table" conf="3"/></port>\n</ports>\n'
                '<os><osmatch name="Linux 5.0 - 5.14" accuracy="98" line="1"><osclass type="general purpose" '
                'vendor="Linux" osfamily="Linux" osgen="5.X" accuracy="98"/></osmatch></os>\n<distance value="3"/>\n'
                f'<trace port="80" proto="tcp"><hop ttl="1" ipaddr="{r1}" rtt="0.30"/><hop ttl="2" ipaddr="{r2}" '
                f'rtt="0.50"/><hop ttl="3" ipaddr="{addr}" rtt="0.70"/></trace>\n'
                '<times srtt="700" rttvar="300" to="100000"/>\n</host>\n')
        out.write(f'<runstats><finished time="{start + 60}" timestr="x" summary="x" elapsed="60.00" exit="success"/>'
                  f'<hosts up="{hosts}" down="0" total="{hosts}"/>\n</runstats>\n</nmaprun>\n')


def timed(argv: list[str]) -> tuple[float, float, float, float]:
    """Wall seconds, CPU seconds (user + system, the process and any children), peak RSS (MB) of one run in
    its own process, and the one-minute load average as it started (wall time counts other work too)."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, load


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leadline-bench-history-"))
    try:
        xml = work / "big.xml"
        t0 = time.perf_counter()
        write_xml(xml, args.hosts)
        print(flush=True); print(f"wrote {xml.stat().st_size / 1e6:.1f} MB of nmap XML, {args.hosts} hosts, "
              f"in {time.perf_counter() - t0:.1f} s; load {os.getloadavg()[0]:.2f}")
        rows: dict[str, list[tuple[float, float, float, float]]] = {"db import": [], "report RUN": [], "report FILE": []}
        for n in range(args.repeat):
            db = work / f"scans{n}.db"
            url = f"sqlite:///{db}"
            rows["db import"].append(timed([LEADLINE, "db", "import", str(xml), "--db", url]))
            rows["report RUN"].append(timed([LEADLINE, "report", "1", "--db", url, "-o", str(work / "r.html")]))
            rows["report FILE"].append(timed([LEADLINE, "report", str(xml), "-o", str(work / "f.html")]))
            db.unlink()
        size = (work / "r.html").stat().st_size / 1e6
        print(f"report: {size:.1f} MB of HTML; peak RSS of this script {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        print(f"load average after the runs: {os.getloadavg()[0]:.2f} (wall time counts other work on the machine)")
        print(f"{'step':<12} {'runs (wall s / CPU s / peak RSS MB, load at start)':<72} goal (wall)")
        ok = True
        for step, runs in rows.items():
            text = ", ".join(f"{w:.2f} / {c:.2f} / {m:.0f} (load {a:.1f})" for w, c, m, a in runs)
            worst = max(w for w, _, _, _ in runs)
            ok &= worst < GOAL
            print(f"{step:<12} {text:<72} < {GOAL:.0f} s: {'met' if worst < GOAL else 'MISSED'}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
