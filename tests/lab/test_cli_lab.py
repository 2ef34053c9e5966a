"""The leadline command in the practice lab: behaviour a user sees end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from leadline.lab import practice
from tests.conftest import scan_in_lab

pytestmark = pytest.mark.lab

LEADLINE = str(Path(sys.executable).parent / "leadline")


def test_unresolvable_name_warns_and_the_scan_goes_on(practice_lab) -> None:  # type: ignore[no-untyped-def]
    r = scan_in_lab(practice_lab, [LEADLINE, "-sT", "-Pn", "-n", "-p", "50007", "no-such-host.invalid", practice.COURSE], timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'Failed to resolve "no-such-host.invalid".' in r.stderr
    assert "Traceback" not in r.stderr
    assert f"leadline scan report for {practice.COURSE}" in r.stdout
    assert "50007/tcp open" in r.stdout


def test_normal_output_layout_for_the_course_server(practice_lab) -> None:  # type: ignore[no-untyped-def]
    r = scan_in_lab(practice_lab, [LEADLINE, "-sT", "-n", "-p", "1-1024,50000-50010", practice.COURSE], timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Starting leadline ")
    assert f"leadline scan report for {practice.COURSE}" in lines
    assert any(line.startswith("Host is up (") and line.endswith("s latency).") for line in lines)
    assert "Not shown: 1025 closed tcp ports (conn-refused)" in lines
    assert "PORT      STATE    SERVICE" in lines
    assert any(line.startswith("50007/tcp open") for line in lines)
    assert sum(1 for line in lines if " filtered " in line) == 8
    assert lines[-1].startswith("leadline done: 1 IP address (1 host up) scanned in ")


def test_json_output_of_a_real_scan(practice_lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "scan.json"
    r = scan_in_lab(practice_lab, [LEADLINE, "-sT", "-n", "-Pn", "-p", "50005-50008", "-oJ", str(out), practice.COURSE], timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    (host,) = doc["hosts"]
    states = {p["port"]: p["state"] for p in host["ports"]}
    assert states == {50005: "filtered", 50006: "filtered", 50007: "open", 50008: "open"}


def test_api_scan_inside_the_lab(practice_lab) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import leadline;"
        f"r = leadline.scan('{practice.COURSE}', '-sT -Pn -n -p 50006-50008');"
        "print(sorted((p.port, str(p.state), str(p.reason)) for p in r.hosts[0].ports))"
    )
    r = scan_in_lab(practice_lab, [sys.executable, "-c", code], timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(
        [(50006, "filtered", "no-response"), (50007, "open", "syn-ack"), (50008, "open", "syn-ack")]
    )
