"""leadline -A against nmap -A on the course server: one report, laid out and filled as nmap's.

-A joins four phases built apart (-sV, -sC, -O, --traceroute); this checks
them together: the port states, the services named, the best OS class and
the route equal nmap's, the report's blocks come in nmap's order with one
``Network Distance`` line, the XML is valid against nmap's DTD with one
``<distance>``, and the JSON is valid against leadline's schema.  One scan
by each tool for the whole module: -A is the slowest thing a course runs.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab
from tests.lab.chainlab import LEADLINE, routes_from_xml
from tests.oracle.nmapxml import diff_states, read_states
from tests.oracle.osxml import read_os

pytestmark = [pytest.mark.lab, pytest.mark.oracle]

TARGET = practice.COURSE
PORTS = "1-1024,50000-50010"  # the course server's services (50007, 50008) and its filtered range

# The blocks of a host's report, in nmap's order; the OS block starts with whichever line the match allows.
_OS_BLOCK = ("Warning: OSScan", "Device type:", "Running", "OS details:", "Aggressive OS guesses:",
             "No exact OS matches", "No OS matches", "Too many fingerprints")
_BLOCKS = (("PORT ", "ports"), ("MAC Address:", "mac"), *((w, "os") for w in _OS_BLOCK),
           ("Network Distance:", "distance"), ("Service Info:", "service-info"),
           ("Host script results:", "host-scripts"), ("TRACEROUTE", "traceroute"))


@dataclass
class Run:
    text: str
    xml: str
    json: str


def _run(lab: Lab, program: str, folder: Path) -> Run:
    folder.mkdir()
    xml, js = folder / "out.xml", folder / "out.json"
    argv = [program, "-A", "-p", PORTS, "-oX", str(xml)]
    if program == LEADLINE:
        argv += ["-oJ", str(js)]
    done: subprocess.CompletedProcess[str] = scan_in_lab(lab, [*argv, TARGET], timeout=300)
    assert done.returncode == 0, done.stderr
    return Run(done.stdout, xml.read_text(), js.read_text() if js.exists() else "")


@pytest.fixture(scope="module")
def both(practice_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """(leadline's run, nmap's run) of -A on the course server, one each for the module."""
    base = tmp_path_factory.mktemp("aggressive")
    return _run(practice_lab, LEADLINE, base / "leadline"), _run(practice_lab, "nmap", base / "nmap")


def _blocks(text: str) -> list[str]:
    """The report's blocks in the order they appear, each named once."""
    seen: list[str] = []
    for line in text.splitlines():
        for start, name in _BLOCKS:
            if line.startswith(start) and name not in seen:
                seen.append(name)
    if re.search(r"^(OS and )?Service detection performed\.", text, re.M):
        seen.append("performed")
    return seen


def _services(xml: str) -> dict[int, tuple[str | None, str | None, str | None]]:
    out = {}
    for port in ET.fromstring(xml).iter("port"):
        state, service = port.find("state"), port.find("service")
        if state is not None and state.get("state") == "open":
            out[int(port.get("portid", "0"))] = (None, None, None) if service is None else (
                service.get("name"), service.get("product"), service.get("version"))
    return out


def _port_scripts(xml: str) -> dict[int, list[str]]:
    return {int(port.get("portid", "0")): sorted(s.get("id", "") for s in port.findall("script"))
            for port in ET.fromstring(xml).iter("port")}


def test_port_states_equal_nmaps(both: tuple[Run, Run]) -> None:
    ours, theirs = (read_states(r.xml) for r in both)
    assert set(ours) == set(theirs) == {TARGET}
    assert diff_states(ours[TARGET], theirs[TARGET], with_reason=False) == []


def test_services_equal_nmaps(both: tuple[Run, Run]) -> None:
    ours, theirs = (_services(r.xml) for r in both)
    assert ours == theirs
    assert theirs[50008][:2] == ("http", "nginx")  # the comparison has something in it
    ours_scripts, their_scripts = (_port_scripts(r.xml) for r in both)
    assert ours_scripts == their_scripts  # -sC's and -sV's scripts (http-server-header) on the same ports
    assert "http-server-header" in their_scripts[50008]


def test_best_os_class_equals_nmaps(both: tuple[Run, Run]) -> None:
    ours, theirs = (read_os(r.xml)[TARGET] for r in both)
    assert theirs.best_class is not None
    assert ours.best_class == theirs.best_class
    assert ours.distance == theirs.distance == 1


def test_trace_equals_nmaps(both: tuple[Run, Run]) -> None:
    ours, theirs = (routes_from_xml(r.xml) for r in both)
    assert ours[TARGET] == theirs[TARGET] == [(1, TARGET)]


def test_report_laid_out_as_nmaps(both: tuple[Run, Run]) -> None:
    """Same blocks in the same order, one Network Distance line, and nmap's closing note for -A."""
    ours, theirs = both
    assert _blocks(ours.text) == _blocks(theirs.text)
    assert {"ports", "mac", "os", "distance", "traceroute", "performed"} <= set(_blocks(ours.text))
    distance = [line for line in ours.text.splitlines() if line.startswith("Network Distance:")]
    assert distance == [line for line in theirs.text.splitlines() if line.startswith("Network Distance:")]
    assert distance == ["Network Distance: 1 hop"]
    note = "OS and Service detection performed. Please report any incorrect results at https://nmap.org/submit/ ."
    assert note in ours.text.splitlines() and note in theirs.text.splitlines()


def test_xml_valid_with_one_distance(both: tuple[Run, Run], tmp_path: Path) -> None:
    ours = both[0].xml
    path = tmp_path / "ours.xml"
    path.write_text(ours)
    check = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    host = ET.fromstring(ours).find("host")
    assert host is not None
    assert [len(host.findall(tag)) for tag in ("os", "distance", "trace", "uptime")] == [1, 1, 1, 1]
    order = [child.tag for child in host]
    assert order.index("os") < order.index("distance") < order.index("trace")


def test_json_valid_against_schema(both: tuple[Run, Run]) -> None:
    schema = json.loads(importlib.resources.files("leadline").joinpath("data", "json-schema.json").read_text())
    doc = json.loads(both[0].json)
    jsonschema.validate(doc, schema)
    host = doc["hosts"][0]
    assert host["distance"] == 1 and host["os"]["distance"] == 1
    assert [h["address"] for h in host["trace"]["hops"]] == [TARGET]
    nmap_uptime = ET.fromstring(both[1].xml).find("host/uptime")
    assert (host["uptime"] is not None) == (nmap_uptime is not None)
