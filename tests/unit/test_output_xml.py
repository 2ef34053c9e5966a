"""XML output: nmap's DTD, nmap's own readers (ndiff, python-libnmap) and nmap's file for the same scan."""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from libnmap.parser import NmapParser

from leadline.model import Hostname, PortResult, PortState, Reason
from leadline.output.xml import XmlOutput, xml_attr
from tests.unit.test_output_samples import (
    NMAP_VERBOSE_REASON_XML,
    START,
    as_leadline,
    down_host,
    lab_ports,
    render,
    run_info,
    stats,
    up_host,
    utc,
    verbose_run_events,
)

__all__ = ["utc"]
pytestmark = pytest.mark.usefixtures("utc")

DTD = "/usr/share/nmap/nmap.dtd"


def assert_valid(path: Path) -> None:
    result = subprocess.run(["xmllint", "--noout", "--dtdvalid", DTD, str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_verbose_run_matches_nmap_line_by_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    verbose_run_events(XmlOutput(stream))
    ours = stream.getvalue()
    # Only the RTT variance differs: nmap measured it, leadline estimates it from one sample.
    times = re.compile(r'<times srtt="(\d+)" rttvar="\d+" to="(\d+)"/>')
    assert times.sub(r"<times \1 \2/>", ours) == times.sub(r"<times \1 \2/>", as_leadline(NMAP_VERBOSE_REASON_XML))
    assert_valid(write(tmp_path, "run.xml", ours))


def test_full_report_is_valid_and_libnmap_reads_hosts_ports_and_services(tmp_path: Path) -> None:
    ports = (
        *lab_ports(),
        PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE, service="domain"),
        PortResult(161, "udp", PortState.OPEN, Reason.UDP_RESPONSE, 64, "snmp", evidence=("UDP -> reply (ttl 64)",)),
    )
    named = up_host(ports, mac_vendor="Raspberry Pi Foundation",
                    hostnames=(Hostname("iot.lab", "user"), Hostname("pi.lab", "PTR")))
    path = write(tmp_path, "full.xml", render(XmlOutput, run_info(verbosity=1), [named, down_host()], stats(up=1, down=1)))
    assert_valid(path)
    report = NmapParser.parse_fromfile(str(path))
    assert report.hosts_total == 2 and report.hosts_up == 1
    host = next(h for h in report.hosts if h.address == "198.18.201.2")
    assert host.is_up()
    assert host.mac == "06:8A:CE:DF:55:04" and host.vendor == "Raspberry Pi Foundation"
    assert host.hostnames == ["iot.lab", "pi.lab"]
    listed = {(s.port, s.protocol): (s.state, s.service) for s in host.services}
    assert listed == {
        (22, "tcp"): ("open", "ssh"),
        (80, "tcp"): ("open", "http"),
        (81, "tcp"): ("filtered", "hosts2-ns"),
        (8000, "tcp"): ("open", "http-alt"),
        (53, "udp"): ("open|filtered", "domain"),
        (161, "udp"): ("open", "snmp"),
    }
    snmp = host.get_service(161, "udp")
    assert snmp is not None and snmp.scripts_results[0]["output"] == "UDP -> reply (ttl 64)"
    assert host.extraports_state["state"]["state"] == "closed"
    assert report.elapsed == 15.46
    assert report.summary.startswith("leadline done at Sun Nov 22 05:06:02 2026; 2 IP addresses (1 host up)")


def test_ndiff_reports_the_port_that_changed(tmp_path: Path) -> None:
    before = up_host(lab_ports(range(75, 86)))
    changed = tuple(
        PortResult(80, "tcp", PortState.CLOSED, Reason.CONN_REFUSED, service="http") if p.port == 80 else p for p in before.ports
    )
    a = write(tmp_path, "a.xml", render(XmlOutput, run_info(), [before], stats()))
    b = write(tmp_path, "b.xml", render(XmlOutput, run_info(), [up_host(changed)], stats()))
    result = subprocess.run(["ndiff", str(a), str(b)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr  # 1: the scans differ
    diff = result.stdout.splitlines()
    assert "-80/tcp open   http" in diff
    assert "+80/tcp closed http" in diff
    same = subprocess.run(["ndiff", str(a), str(a)], capture_output=True, text=True, timeout=30)
    assert same.returncode == 0


def test_interrupted_run_is_closed_well_formed_and_valid(tmp_path: Path) -> None:
    stream = io.StringIO()
    sink = XmlOutput(stream)
    sink.begin(run_info())
    sink.task_begin("Connect Scan", START)
    sink.task_progress("Connect Scan", START + 5, 45.5, 6.2, START + 11.2)
    sink.host(up_host())
    sink.end(stats(exit="error", error="interrupted by the user"))
    sink.host(up_host(address="198.18.201.3"))  # too late: the document is closed
    text = stream.getvalue()
    assert text.endswith("</runstats>\n</nmaprun>\n")
    assert "198.18.201.3" not in text
    assert '<taskprogress task="Connect Scan" time="1795323951" percent="45.50" remaining="6" etc="1795323957"/>' in text
    finished = ET.fromstring(text).find("runstats/finished")
    assert finished is not None
    assert finished.get("exit") == "error" and finished.get("errormsg") == "interrupted by the user"
    assert_valid(write(tmp_path, "cut.xml", text))


def test_each_event_is_on_disk_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "live.xml"
    with path.open("w", encoding="utf-8") as stream:
        sink = XmlOutput(stream)
        sink.begin(run_info())
        sink.task_begin("Connect Scan", START)
        assert path.read_text().endswith('<taskbegin task="Connect Scan" time="1795323946"/>\n')
        sink.host(up_host())
        assert path.read_text().endswith("</host>\n")


def test_attributes_are_escaped_and_stay_valid(tmp_path: Path) -> None:
    args = 'leadline --script-args "a=<b>&c" -oX \'x\'\t--\x01'
    run = run_info(args)
    host = up_host((), hostnames=(Hostname('we"ird<&>', "PTR"),))
    text = render(XmlOutput, run, [host], stats())
    assert xml_attr('a"<&>\n') == "a&quot;&lt;&amp;&gt;&#xa;"
    root = ET.fromstring(text)
    assert root.get("args") == args.replace("\x01", "?")  # XML 1.0 cannot carry control characters
    hostname = root.find("host/hostnames/hostname")
    assert hostname is not None and hostname.get("name") == 'we"ird<&>'
    assert "--" not in text.split("<!--", 1)[1].split("-->", 1)[0]
    assert_valid(write(tmp_path, "escaped.xml", text))


def test_ping_scan_hosts_have_no_ports_or_times_of_scan(tmp_path: Path) -> None:
    text = render(XmlOutput, run_info(ping_only=True, verbosity=0), [up_host((), latency=0.000009), down_host()],
                  stats(up=1, down=1))
    root = ET.fromstring(text)
    hosts = root.findall("host")
    assert len(hosts) == 1  # down hosts only with -v, as nmap
    assert hosts[0].get("starttime") is None and hosts[0].find("ports") is None
    times = hosts[0].find("times")
    assert times is not None and times.attrib == {"srtt": "9", "rttvar": "4", "to": "100000"}
    assert root.find("scaninfo") is None
    assert_valid(write(tmp_path, "ping.xml", text))


def test_open_only_folds_closed_and_filtered_into_extraports() -> None:
    root = ET.fromstring(render(XmlOutput, run_info(), [up_host()], stats(), open_only=True))
    extras = [(e.get("state"), e.get("count")) for e in root.iter("extraports")]
    assert extras == [("closed", "97"), ("filtered", "1")]
    filtered = root.findall("host/ports/extraports")[1].find("extrareasons")
    assert filtered is not None and filtered.attrib == {"reason": "no-response", "count": "1", "proto": "tcp", "ports": "81"}
    assert [p.get("portid") for p in root.iter("port")] == ["22", "80", "8000"]


def test_warnings_and_timeouts_are_recorded(tmp_path: Path) -> None:
    host = up_host(timed_out=True, warnings=("giving up on port because retransmission cap hit (0).",))
    text = render(XmlOutput, run_info(), [host], stats())
    root = ET.fromstring(text)
    assert root.findtext("output") == "Warning: giving up on port because retransmission cap hit (0)."
    element = root.find("host")
    assert element is not None and element.get("timedout") == "true" and element.find("ports") is None
    assert_valid(write(tmp_path, "timeout.xml", text))


def test_ipv6_address_type(tmp_path: Path) -> None:
    host = replace(up_host(lab_ports((22,)), address="2001:db8::10", mac=None), family=6)
    text = render(XmlOutput, run_info(), [host], stats())
    address = ET.fromstring(text).find("host/address")
    assert address is not None and address.attrib == {"addr": "2001:db8::10", "addrtype": "ipv6"}
    assert_valid(write(tmp_path, "v6.xml", text))
