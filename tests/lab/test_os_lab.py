"""-O in the practice lab with leadline's own database: real kernels, real answers.

* Each Linux host (the course server, the far host two routers away) is
  named Linux, by a record whose kernel range holds the running kernel.
* ``desktop`` (TTL 128, no timestamps/SACK/scaling) and ``gear`` (TTL
  255) are told apart from them: another best record, the right TTL hint.
* The report has nmap's lines; XML validates against nmap's DTD, JSON
  against our schema; -A includes -O; IPv6 is refused per host with a
  warning, not a crash; --osscan-limit skips a host without a closed port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab
from tests.oracle.osxml import read_os

pytestmark = pytest.mark.lab

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = "1,22,23,80,3389,50007"
HOSTS = [practice.COURSE, practice.DESKTOP, practice.GEAR, practice.FAR]
SCHEMA = Path(__file__).resolve().parents[2] / "src" / "leadline" / "data" / "json-schema.json"


@pytest.fixture(scope="module")
def run(practice_lab: Lab) -> tuple[str, str, str]:
    done = scan_in_lab(practice_lab, [LEADLINE, "-O", "-v", "--osdb", "leadline", "-n", "-Pn", "-p", PORTS,
                                      "-oX", "/tmp/leadline-os-lab.xml", "-oJ", "/tmp/leadline-os-lab.json", *HOSTS],
                       timeout=120)
    assert done.returncode == 0, done.stderr
    xml = practice_lab.run(practice_lab.scanner, ["cat", "/tmp/leadline-os-lab.xml"], timeout=10).stdout
    js = practice_lab.run(practice_lab.scanner, ["cat", "/tmp/leadline-os-lab.json"], timeout=10).stdout
    return done.stdout, xml, js


def _kernel() -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", os.uname().release).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def _in_range(name: str, kernel: tuple[int, int]) -> bool:
    low, high = re.search(r"Linux (\d+)\.(\d+) - (\d+)\.(\d+)", name).groups()[:2], \
        re.search(r"Linux (\d+)\.(\d+) - (\d+)\.(\d+)", name).groups()[2:]  # type: ignore[union-attr]
    return (int(low[0]), int(low[1])) <= kernel <= (int(high[0]), int(high[1]))


@pytest.mark.parametrize("address", [practice.COURSE, practice.FAR])
def test_linux_hosts_are_linux_with_the_running_kernel(run: tuple[str, str, str], address: str) -> None:
    report = read_os(run[1])[address]
    name, accuracy = report.matches[0]
    assert accuracy == 100 and report.best_class is not None and report.best_class[:2] == ("Linux", "Linux")
    assert _in_range(name, _kernel()) and "TTL" not in name


def test_desktop_and_gear_are_told_apart(run: tuple[str, str, str]) -> None:
    reports = read_os(run[1])
    linux = reports[practice.COURSE].matches[0][0]
    desktop, gear = reports[practice.DESKTOP].matches[0][0], reports[practice.GEAR].matches[0][0]
    assert len({linux, desktop, gear}) == 3
    assert "TTL 128" in desktop and "TTL 255" in gear


def test_normal_output_has_nmaps_lines_and_the_labelled_hint(run: tuple[str, str, str]) -> None:
    out = run[0]
    block = out.split(f"scan report for {practice.FAR}")[1]
    assert "Device type: general purpose" in block and re.search(r"Running: Linux (5\.X\|6\.X|6\.X\|5\.X)", block)
    assert "OS CPE: cpe:/o:linux:linux_kernel:5 cpe:/o:linux:linux_kernel:6" in block
    assert "OS details: Linux 5.4 - 6.18" in block
    assert "Network Distance: 3 hops" in block  # two routers: U1's quoted TTL says so
    assert "TCP Sequence Prediction: Difficulty=" in block and "IP ID Sequence Generation: All zeros" in block
    assert "OS hint from the initial TTL (leadline, not a match): initial TTL 64 (62 received, 2 routers" in block
    desktop = out.split(f"scan report for {practice.DESKTOP}")[1].split("scan report for")[0]
    assert "initial TTL 128 (128 received" in desktop and "Windows" in desktop
    assert out.rstrip().splitlines()[-2].startswith("OS detection performed.")


def test_xml_is_valid_and_json_follows_the_schema(run: tuple[str, str, str], tmp_path: Path) -> None:
    import jsonschema

    path = tmp_path / "os.xml"
    path.write_text(run[1])
    check = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", str(path)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    for tag in ("<portused state=\"open\" proto=\"tcp\"", "<osmatch name=", "<osclass ", "<distance value=",
                "<tcpsequence index=", "<ipidsequence class=", "<tcptssequence class="):
        assert tag in run[1]
    doc = json.loads(run[2])
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    hosts = {h["address"]: h for h in doc["hosts"]}
    assert hosts[practice.COURSE]["os"]["matches"][0]["name"].startswith("Linux")


def test_aggressive_includes_os_detection(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-A", "--osdb", "leadline", "-n", "-Pn", "-p", "23,1",
                                      practice.GEAR], timeout=180)
    assert done.returncode == 0, done.stderr
    assert "OS details: Linux 5.4 - 6.18 network appliance (initial TTL 255)" in done.stdout


def test_ipv6_is_skipped_with_a_warning(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-6", "-O", "-n", "-Pn", "-p", "50007", practice.COURSE6],
                       timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "Warning: OS detection over IPv6 is not supported yet" in done.stdout


def test_osscan_limit_skips_hosts_without_a_closed_port(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-O", "--osscan-limit", "-n", "-Pn", "-p", "50007",
                                      practice.COURSE], timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OS details" not in done.stdout and "TCP/IP fingerprint" not in done.stdout


def test_unprivileged_os_detection_is_one_clear_line(practice_lab: Lab) -> None:
    done = scan_in_lab(practice_lab, [LEADLINE, "-O", "--unprivileged", "-p", "80", practice.COURSE], timeout=30)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "requires root privileges" in done.stderr
