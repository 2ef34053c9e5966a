"""Version detection against real daemons, with nmap as the oracle, and against a hostile service.

The lab is ``leadline.lab.servicelab`` (its own namespaces, prefix ``lab_prefix()``: the suite's
LEADLINE_TEST_LAB plus "v", removed at the end): OpenSSH, vsftpd, dnsmasq, nginx (plain and TLS with a
certificate the lab makes), Mosquitto, PostgreSQL, Redis, lighttpd and memcached from Debian's packages.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from leadline.lab.hostile import HOSTILE_PORTS
from leadline.lab.servicelab import HOSTILE, SERVICE_PORTS, SERVICES, TRAP, ServiceLab, lab_prefix, service_lab

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = ",".join(map(str, SERVICE_PORTS))
# nmap names Mosquitto from its version script mqtt-subscribe ("mosquitto version 2.0.11"), which -sV
# runs after the probes; leadline's -sV has the same step, so that port is compared like the others.

Identity = tuple[str, str | None, str | None]


@pytest.fixture(scope="module")
def lab() -> Iterator[ServiceLab]:
    with service_lab(lab_prefix()) as built:
        yield built


def _services(xml_text: str) -> dict[int, Identity]:
    """(name with ssl/ in front when tunnelled, product, version) per open port of an XML report."""
    found: dict[int, Identity] = {}
    for port in ET.fromstring(xml_text).iter("port"):
        state = port.find("state")
        svc = port.find("service")
        if state is None or state.get("state") != "open" or svc is None:
            continue
        name = ("ssl/" if svc.get("tunnel") == "ssl" else "") + (svc.get("name") or "")
        found[int(port.get("portid", "0"))] = (name, svc.get("product"), svc.get("version"))
    return found


def _scan(lab: ServiceLab, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = lab.run_in_scanner(argv, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def nmap_says(lab: ServiceLab) -> dict[int, Identity]:
    found = _services(_scan(lab, ["nmap", "-sV", "-Pn", "-n", "-p", PORTS, "-oX", "-", SERVICES]).stdout)
    assert set(found) == set(SERVICE_PORTS)
    return found


def test_same_identities_as_nmap_with_nmaps_database(lab: ServiceLab, nmap_says: dict[int, Identity]) -> None:
    ours = _services(_scan(lab, [LEADLINE, "-sV", "--versiondb", "nmap", "-Pn", "-n", "-p", PORTS, "-oX", "-",
                                 SERVICES]).stdout)
    assert set(ours) == set(nmap_says)
    assert ours == nmap_says


def test_own_database_names_service_and_product(lab: ServiceLab, nmap_says: dict[int, Identity]) -> None:
    ours = _services(_scan(lab, [LEADLINE, "-sV", "--versiondb", "leadline", "-Pn", "-n", "-p", PORTS, "-oX", "-",
                                 SERVICES]).stdout)
    assert set(ours) == set(nmap_says)
    for port, theirs in nmap_says.items():
        assert ours[port][:2] == theirs[:2], port


def test_hostile_service_leaves_every_output_clean_with_versions_and_scripts(lab: ServiceLab, tmp_path: Path) -> None:
    import jsonschema

    xml_path, json_path = tmp_path / "h.xml", tmp_path / "h.json"
    ports = ",".join(map(str, HOSTILE_PORTS.values()))
    before = lab.trap_packets()
    t0 = time.monotonic()
    done = _scan(lab, [LEADLINE, "-sV", "-sC", "-d", "-Pn", "-n", "-p", ports, "-oX", str(xml_path), "-oJ", str(json_path),
                       HOSTILE], timeout=150)
    elapsed = time.monotonic() - t0
    assert elapsed < 90  # each port's conversation ends by its deadline (60 s), however the service behaves
    text = done.stdout + done.stderr
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), "a control character reached the terminal"
    assert all(f"{p}/tcp open" in done.stdout for p in HOSTILE_PORTS.values())
    # -sC's http-title met the redirect and named it without following it
    assert f"|_http-title: Did not follow redirect to http://{TRAP}/" in done.stdout
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", str(xml_path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    schema = json.loads(resources.files("leadline").joinpath("data", "json-schema.json").read_text())
    jsonschema.validate(json.loads(json_path.read_text(encoding="utf-8")), schema)
    assert lab.trap_packets() == before == 0, "something was sent to the address the redirect named"


def test_bad_versiondb_is_one_line_and_no_scan(tmp_path: Path) -> None:
    # In a network namespace of its own with no interface up: even a wrong turn could send nothing.
    done = subprocess.run(["unshare", "-n", LEADLINE, "-sV", "--versiondb", str(tmp_path / "nope"), "-p", "1",
                           "198.18.0.1"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"leadline: cannot read the version database {tmp_path / 'nope'}: "
                                                "No such file or directory"]
