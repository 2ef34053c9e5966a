"""Outputs as a new user meets them, from real scans in the shared practice lab (read only).

--packet-trace next to ``-oJ -`` keeps standard output pure JSON, and the
JSON of several kinds of scan validates against the schema file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab
from tests.schema_check import load_schema, schema_errors

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")


def test_packet_trace_leaves_json_on_standard_output_alone(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-sS", "-n", "--packet-trace", "-p", "22,50007,50008",
                                      "-oJ", "-", practice.COURSE], timeout=60)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # nothing but the document
    assert [p["state"] for p in doc["hosts"][0]["ports"] if p["port"] == 50008] == ["open"]
    assert any(line.startswith("SENT") for line in done.stderr.splitlines()), done.stderr[-1000:]


@pytest.mark.parametrize("flags, targets", [
    (["-sS", "-n", "-p", "22-25,8080,50007-50009", "--reason"], [practice.COURSE, practice.FIREWALL, practice.NO_HOST]),
    (["-sT", "-n", "-p", "1-200"], [practice.IOT]),  # names the services table calls "unknown"
    (["-sn", "-n"], [f"{practice.COURSE}-40"]),  # ARP replies: no TTL
    (["-sL", "-n"], ["198.18.1.0/29"]),
    (["-sS", "-n", "-p", "80", "--explain"], [practice.FAR]),
], ids=["syn", "connect-unknown-services", "arp-sweep", "list", "routed-explain"])
def test_json_of_real_scans_validates_against_the_schema(practice_lab: Lab, tmp_path: Path,
                                                         flags: list[str], targets: list[str]) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, *flags, "-oJ", "-", *targets], timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["hosts"], done.stdout[:500]
    assert schema_errors(doc, load_schema()) == []


@pytest.mark.parametrize("gap", [0.01, 0.03, 0.05])
@pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
def test_double_interrupt_of_a_real_scan_keeps_every_file_whole(practice_lab: Lab, tmp_path: Path, gap: float) -> None:
    """Two Ctrl-Cs 10-50 ms apart during a connect scan: leadline quits promptly, and every
    output file is complete (footer written, DTD-valid XML) for every host the terminal printed."""
    import os
    import signal
    import subprocess
    import time
    import xml.etree.ElementTree as ET

    base, terminal = tmp_path / "scan", tmp_path / "terminal.txt"
    argv = [LEADLINE, "-sT", "-n", "-Pn", "-p-", "--max-rate", "3000", "-oA", str(base), "-oJ", f"{base}.json",
            practice.COURSE, practice.FIREWALL]
    with open(terminal, "w") as out:
        scan = practice_lab.popen(practice_lab.scanner, argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.PIPE)
        try:
            time.sleep(2.0)
            assert scan.poll() is None, "a rate-capped -p- of two hosts cannot have finished already"
            os.kill(scan.pid, signal.SIGINT)
            time.sleep(gap)
            os.kill(scan.pid, signal.SIGINT)
            second = time.monotonic()
            _, err = scan.communicate(timeout=15)
            took = time.monotonic() - second
        finally:
            if scan.poll() is None:
                scan.kill()
                scan.wait(timeout=10)
    assert scan.returncode == 130 and b"Traceback" not in err, err[-2000:]
    assert took < 3.0, f"{took:.1f} s to quit after the second Ctrl-C"
    printed = [line.split()[-1] for line in terminal.read_text().splitlines()
               if line.startswith("leadline scan report for")]
    doc = json.loads(Path(f"{base}.json").read_text())
    root = ET.parse(f"{base}.xml").getroot()
    grepable = Path(f"{base}.gnmap").read_text().splitlines()
    assert doc["runstats"]["exit"] == "error" and root.find("runstats/finished").get("exit") == "error"  # type: ignore[union-attr]
    assert grepable[-1].startswith("# leadline done at")
    assert [h["address"] for h in doc["hosts"]] == printed
    assert [h.find("address").get("addr") for h in root.findall("host")] == printed  # type: ignore[union-attr]
    assert sorted({line.split()[1] for line in grepable if line.startswith("Host: ")}) == sorted(printed)
    assert doc["runstats"]["hosts_up"] >= len(printed)
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", f"{base}.xml"],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr[-2000:]
