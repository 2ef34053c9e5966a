"""nmap's own tools read leadline's real output: xmllint with nmap.dtd, ndiff, python-libnmap.

Every file here comes from a real scan in the shared practice lab (read
only: no rule of it is changed), so what is checked is what a user gets:
the XML validates against the DTD nmap ships, ndiff sees the change
between two scans, libnmap parses reports and drives leadline in place of
nmap through NmapProcess, an interrupted scan still leaves a valid file,
and -oA, -oJ and -sL behave as documented.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from libnmap.parser import NmapParser
from libnmap.process import NmapProcess

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
NMAP_DTD = "/usr/share/nmap/nmap.dtd"
LIBNMAP_PORTS = "1-1024,50000-50010"


def leadline(lab: Lab, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run leadline in the lab's scanner namespace; it must succeed."""
    done = scan_in_lab(lab, [LEADLINE, *argv], timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done


def assert_dtd_valid(path: Path) -> None:
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", NMAP_DTD, str(path)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr[-2000:]


@pytest.mark.parametrize("flags, targets", [
    (["-sT", "-p", LIBNMAP_PORTS, "--reason", "-n"],
     [practice.COURSE, practice.FIREWALL, practice.NO_HOST]),
    (["-sT", "-Pn", "-n", "-p", "22-25,110,111,143,993,995,8080", "-v"], [practice.FIREWALL]),
    (["-sn", "-n"], [f"{practice.COURSE}-12", practice.NO_HOST]),
    (["-sL", "-n"], ["198.18.1.0/28"]),
], ids=["connect-with-down-host", "connect-every-reason", "ping-sweep", "list"])
def test_xml_validates_against_nmaps_dtd(practice_lab: Lab, tmp_path: Path,
                                         flags: list[str], targets: list[str]) -> None:
    out = tmp_path / "scan.xml"
    leadline(practice_lab, *flags, "-oX", str(out), *targets)
    assert_dtd_valid(out)
    assert ET.parse(out).getroot().find("runstats/finished").get("exit") == "success"  # type: ignore[union-attr]


def test_ndiff_reports_the_change_between_two_scans(practice_lab: Lab, tmp_path: Path) -> None:
    before, after = tmp_path / "before.xml", tmp_path / "after.xml"
    leadline(practice_lab, "-sT", "-n", "-p", "50007,50008", "-oX", str(before), practice.COURSE)
    leadline(practice_lab, "-sT", "-n", "-p", "50007,50009", "-oX", str(after), practice.COURSE)
    changed = subprocess.run(["ndiff", str(before), str(after)], capture_output=True, text=True, timeout=30)
    assert changed.returncode == 1, changed.stderr  # 1: the scans differ
    lines = changed.stdout.splitlines()
    assert "-50008/tcp open" in [line.split("  ")[0].rstrip() for line in lines]
    assert any(line.startswith("+50009/tcp") and "filtered" in line for line in lines)
    port_lines = [line for line in lines if "/tcp" in line]
    assert not any("50007" in line for line in port_lines)  # unchanged ports are not reported
    same = subprocess.run(["ndiff", str(before), str(before)], capture_output=True, text=True, timeout=30)
    assert same.returncode == 0, same.stdout + same.stderr


def test_libnmap_parses_hosts_ports_states_and_services(practice_lab: Lab) -> None:
    done = leadline(practice_lab, "-sT", "-n", "-p", "22,23,25,110,8080", "-oX", "-",
                    practice.FIREWALL, practice.COURSE)
    report = NmapParser.parse_fromstring(done.stdout)
    assert report.hosts_total == 2 and report.hosts_up == 2
    assert report.is_consistent()
    by_address = {host.address: host for host in report.hosts}
    firewall = by_address[practice.FIREWALL]
    assert firewall.is_up()
    seen = {(s.port, s.protocol): (s.state, s.reason, s.service) for s in firewall.services}
    assert seen == {
        (22, "tcp"): ("open", "syn-ack", "ssh"),
        (23, "tcp"): ("closed", "conn-refused", "telnet"),
        (25, "tcp"): ("closed", "conn-refused", "smtp"),
        (110, "tcp"): ("filtered", "host-unreach", "pop3"),
        (8080, "tcp"): ("filtered", "no-response", "http-proxy"),
    }
    assert firewall.get_open_ports() == [(22, "tcp")]
    assert by_address[practice.COURSE].get_open_ports() == []
    assert "2 IP addresses (2 hosts up)" in report.summary


def test_libnmap_nmapprocess_runs_leadline_with_progress_events(practice_lab: Lab,
                                                                 tmp_path: Path) -> None:
    wrapper = tmp_path / "leadline-in-lab"
    wrapper.write_text("#!/bin/sh\n"
                       f'exec ip netns exec {practice_lab.namespace(practice_lab.scanner)} {LEADLINE} "$@"\n')
    wrapper.chmod(0o755)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_event(process: NmapProcess) -> None:
        task = process.current_task
        if task:
            with lock:
                events.append((task.name, str(task.progress)))

    process = NmapProcess(targets=practice.COURSE, options=f"-sT -n -p {LIBNMAP_PORTS}",
                          event_callback=on_event, fqp=str(wrapper))
    assert "-oX - -vvv --stats-every 1s" in process.command
    process.run_background()
    process.join(timeout=60)
    try:
        if process.is_alive():
            process.stop()
            process.join(timeout=10)
            pytest.fail("leadline under NmapProcess did not finish within 60 s")
    finally:
        child = process._NmapProcess__nmap_proc  # NmapProcess never closes its pipes itself
        if child is not None:
            child.stdout.close()
            child.stderr.close()
    assert process.rc == 0, process.stderr
    assert process.is_successful()
    assert events, "no task event reached the callback"
    assert any(name == "Connect Scan" for name, _ in events)
    assert events[-1][1] == "100"  # NmapProcess marks the last task complete on success
    report = NmapParser.parse_fromstring(process.stdout)
    host = report.hosts[0]
    assert host.address == practice.COURSE
    assert sorted(host.get_open_ports()) == [(practice.COURSE_ECHO_PORT, "tcp"),
                                             (practice.COURSE_HTTP_PORT, "tcp")]
    assert sorted(s.port for s in host.services if s.state == "filtered") == \
        sorted(practice.COURSE_DROPPED_PORTS)
    assert host.extraports_state["state"]["state"] == "closed"


def _wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{path} never showed {text!r}"
        time.sleep(0.05)


def test_interrupted_scan_leaves_a_valid_xml_file(practice_lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "f.xml"
    scan = practice_lab.popen(practice_lab.scanner,
                              [LEADLINE, "-sT", "-p-", "-T2", "-n", "-Pn", "-oX", str(out),
                               practice.COURSE],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        _wait_for(out, "<scaninfo", timeout=20)
        time.sleep(1.0)
        assert scan.poll() is None, "a -T2 -p- scan cannot have finished already"
        os.kill(scan.pid, signal.SIGINT)  # ip netns exec became leadline: same pid
        interrupted = time.monotonic()
        _, stderr = scan.communicate(timeout=10)
        took = time.monotonic() - interrupted
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(timeout=10)
    assert scan.returncode != 0
    assert took < 5.0, f"leadline took {took:.1f} s to stop after SIGINT"
    assert b"Traceback" not in stderr
    finished = ET.parse(out).getroot().find("runstats/finished")
    assert finished is not None and finished.get("exit") == "error"
    assert_dtd_valid(out)


def test_oA_writes_normal_xml_and_grepable(practice_lab: Lab, tmp_path: Path) -> None:
    base = tmp_path / "course"
    leadline(practice_lab, "-sT", "-n", "-p", "50006-50009", "-oA", str(base), practice.COURSE)
    normal = Path(f"{base}.nmap").read_text()
    grepable = Path(f"{base}.gnmap").read_text()
    assert_dtd_valid(Path(f"{base}.xml"))
    assert any(line.split()[:2] == ["50007/tcp", "open"] for line in normal.splitlines())
    assert normal.splitlines()[0].startswith("# ") and "-oA" in normal.splitlines()[0]
    ports_line = next(line for line in grepable.splitlines() if "Ports:" in line)
    assert ports_line.startswith(f"Host: {practice.COURSE} ()\tPorts: ")
    assert "50007/open/tcp//" in ports_line and "50009/filtered/tcp//" in ports_line
    assert grepable.rstrip().splitlines()[-1].startswith("# ") and "done" in grepable


def test_oJ_is_json_with_the_documented_fields(practice_lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "scan.json"
    leadline(practice_lab, "-sT", "-n", "-p", "22,50007-50009", "-oJ", str(out),
             practice.COURSE, practice.FIREWALL)
    document = json.loads(out.read_text())
    assert {"scanner", "schema", "version", "args", "start", "scaninfo", "verbosity", "debugging",
            "ping_only", "list_only", "hosts", "runstats"} <= set(document)
    assert document["scanner"] == "leadline" and document["schema"] == 1
    assert document["scaninfo"] == [{"scan_type": "connect", "protocol": "tcp", "numservices": 4,
                                     "services": "22,50007-50009"}]
    hosts = {host["address"]: host for host in document["hosts"]}
    assert set(hosts) == {practice.COURSE, practice.FIREWALL}
    for host in hosts.values():
        assert {"address", "family", "status", "reason", "reason_ttl", "hostnames", "latency", "mac",
                "mac_vendor", "start_time", "end_time", "other_addresses", "timed_out", "warnings",
                "ports"} <= set(host)
        assert host["family"] == 4 and host["status"] == "up" and not host["timed_out"]
        for port in host["ports"]:
            assert {"port", "protocol", "state", "reason", "reason_ttl", "service", "evidence"} <= set(port)
    states = {p["port"]: (p["state"], p["reason"]) for p in hosts[practice.COURSE]["ports"]}
    assert states == {22: ("closed", "conn-refused"), 50007: ("open", "syn-ack"),
                      50008: ("open", "syn-ack"), 50009: ("filtered", "no-response")}
    assert [p["port"] for p in hosts[practice.FIREWALL]["ports"]] == [22, 50007, 50008, 50009]
    runstats = document["runstats"]
    assert runstats["exit"] == "success" and runstats["error_message"] == ""
    assert (runstats["hosts_up"], runstats["hosts_down"], runstats["hosts_total"]) == (2, 0, 2)


def test_list_scan_without_dns_sends_nothing(practice_lab: Lab) -> None:
    done = leadline(practice_lab, "-sL", "-n", "--packet-trace", "-oX", "-", practice.LAN)
    root = ET.fromstring(done.stdout)
    statuses = [host.find("status").get("state") for host in root.findall("host")]  # type: ignore[union-attr]
    assert len(statuses) == 256
    assert set(statuses) == {"unknown"}
    hosts = root.find("runstats/hosts")
    assert hosts is not None and hosts.get("up") == "0" and hosts.get("total") == "256"
    assert not [line for line in done.stdout.splitlines() + done.stderr.splitlines()
                if line.startswith(("SENT", "RCVD"))]


def test_list_scan_with_reverse_dns_ends_without_a_name_server(practice_lab: Lab) -> None:
    started = time.monotonic()
    done = leadline(practice_lab, "-sL", "-oX", "-", "198.18.1.8/29", timeout=30)
    took = time.monotonic() - started
    root = ET.fromstring(done.stdout)
    addresses = [host.find("address").get("addr") for host in root.findall("host")]  # type: ignore[union-attr]
    assert addresses == [f"198.18.1.{last}" for last in range(8, 16)]
    assert {host.find("status").get("state") for host in root.findall("host")} == {"unknown"}  # type: ignore[union-attr]
    assert took < 15, f"a list scan with unreachable DNS took {took:.1f} s"
