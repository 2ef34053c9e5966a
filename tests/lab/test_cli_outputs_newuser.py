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
