"""Privileged host discovery against nmap as root, in the practice lab.

nmap 7.93 and leadline run in the same scanner namespace with the same
flags; the hosts found up, their reasons and their MAC addresses (with
vendors) must agree.  On the lab's own segment both use ARP whatever -P
options are given; the far segment is routed, so IP probes decide there.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from leadline.lab import practice
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import HostStates, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle]

LEADLINE = str(Path(sys.executable).parent / "leadline")


def both(lab, flags: list[str], targets: list[str], timeout: float = 120):  # type: ignore[no-untyped-def]
    theirs = scan_in_lab(lab, ["nmap", *flags, "-oX", "-", *targets], timeout=timeout)
    assert theirs.returncode == 0, theirs.stderr
    ours = scan_in_lab(lab, [LEADLINE, *flags, "-oX", "-", *targets], timeout=timeout)
    assert ours.returncode == 0, ours.stderr
    return ours.stdout, theirs.stdout


def up_hosts(xml_text: str) -> dict[str, HostStates]:
    return {address: host for address, host in read_states(xml_text).items() if host.status == "up"}


def vendors(xml_text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for host in ET.fromstring(xml_text).findall("host"):
        for address in host.findall("address"):
            if address.get("addrtype") == "mac":
                out[address.get("addr", "")] = address.get("vendor")
    return out


def test_lan_sweep_same_hosts_reasons_and_macs(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours_xml, theirs_xml = both(practice_lab, ["-sn", "-n"], [practice.LAN])
    ours, theirs = up_hosts(ours_xml), up_hosts(theirs_xml)
    assert sorted(ours) == sorted(theirs)
    assert {a: h.status_reason for a, h in ours.items()} == {a: h.status_reason for a, h in theirs.items()}
    assert {a: h.mac for a, h in ours.items()} == {a: h.mac for a, h in theirs.items()}
    assert vendors(ours_xml) == vendors(theirs_xml)
    assert ours[practice.IOT].mac == practice.IOT_MAC.upper()
    assert ours[practice.IOT].status_reason == "arp-response"
    assert ours[practice.SCANNER].status_reason == "localhost-response"
    assert vendors(ours_xml)[practice.WINDOWS_MAC.upper()] == "Microsoft"
    assert practice.NO_HOST not in ours


def test_routed_sweep_same_hosts(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours_xml, theirs_xml = both(practice_lab, ["-sn", "-n"], [practice.FAR_LAN])
    ours, theirs = up_hosts(ours_xml), up_hosts(theirs_xml)
    assert sorted(ours) == sorted(theirs)
    assert practice.FAR in ours
    assert ours[practice.FAR].mac is None  # two hops away: no MAC to report
    assert ours[practice.FAR].status_reason == theirs[practice.FAR].status_reason == "echo-reply"


@pytest.mark.parametrize("probe", ["-PE", "-PS22", "-PA80", "-PP"])
def test_explicit_probes_on_the_lan_same_hosts(practice_lab, probe: str) -> None:  # type: ignore[no-untyped-def]
    ours_xml, theirs_xml = both(practice_lab, ["-sn", "-n", probe], [practice.LAN])
    ours, theirs = up_hosts(ours_xml), up_hosts(theirs_xml)
    assert sorted(ours) == sorted(theirs)
    assert {a: h.status_reason for a, h in ours.items()} == {a: h.status_reason for a, h in theirs.items()}


def test_syn_scan_reports_discovery_and_macs_like_nmap(practice_lab) -> None:  # type: ignore[no-untyped-def]
    targets = [practice.IOT, practice.WINDOWS]
    ours_xml, theirs_xml = both(practice_lab, ["-sS", "-n", "-p", "80,135"], targets)
    ours, theirs = up_hosts(ours_xml), up_hosts(theirs_xml)
    assert sorted(ours) == sorted(theirs) == sorted(targets)
    for address in targets:
        assert ours[address].mac == theirs[address].mac
        assert ours[address].status_reason == theirs[address].status_reason == "arp-response"
        assert ours[address].ports == theirs[address].ports
    assert vendors(ours_xml) == vendors(theirs_xml)


@pytest.mark.parametrize("extra", [[], ["--disable-arp-ping"]])
def test_syn_scan_without_discovery_still_arps_or_learns_macs(practice_lab, extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    """-Pn with a raw scan: nmap still ARPs its neighbours (a silent one is down); without ARP the scan's replies give the MAC."""
    targets = [practice.IOT, practice.NO_HOST, practice.FAR]
    ours_xml, theirs_xml = both(practice_lab, ["-sS", "-n", "-Pn", "-p", "80", *extra], targets)
    ours, theirs = up_hosts(ours_xml), up_hosts(theirs_xml)
    assert sorted(ours) == sorted(theirs)
    assert {a: (h.status_reason, h.mac) for a, h in ours.items()} == {a: (h.status_reason, h.mac) for a, h in theirs.items()}
    assert ours[practice.IOT].mac == practice.IOT_MAC.upper()
    assert ours[practice.FAR].mac is None


@pytest.mark.parametrize("argv", [["-sn", "198.18.1.0/29"], ["-sn", "198.18.3.8/29"], ["-p", "22", practice.COURSE],
                                  ["-Pn", "-p", "22", practice.COURSE]])
def test_verbose_task_names_are_nmaps(practice_lab, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    tasks = []
    for tool in (LEADLINE, "nmap"):
        done = scan_in_lab(practice_lab, [tool, "-n", "-v", *argv], timeout=60)
        assert done.returncode == 0, done.stderr
        tasks.append([line.split(" at ")[0] for line in done.stdout.splitlines() if line.startswith("Initiating ")])
    assert tasks[0] == tasks[1]
