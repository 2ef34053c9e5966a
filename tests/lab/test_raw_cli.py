"""The `leadline` command's raw TCP scans in a lab of our own (prefix "llg"), where
firewall rules may change: random loss, capped resets, a SYN proxy; and what the
scan leaves behind: a pcap tshark reads, packet-trace lines, --explain, DTD-valid XML.

The lab is built once for the module and removed at the end.  Every scan runs
in the lab's scanner namespace, which has no route out of 198.18.0.0/15.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from leadline.lab import Lab, practice, practice_topology
from tests.oracle.nmapxml import HostStates, diff_states, read_states
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PREFIX = lab_prefix("g")
DTD = Path("/usr/share/nmap/nmap.dtd")
PROXY_PORT = 9999
# Accepts every connection and holds it, so the kernel answers each SYN with SYN/ACK.
PROXY_LISTENER = (
    "import socket, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {PROXY_PORT})); s.listen(4096)\n"
    "time.sleep(120)\n"
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab(PREFIX)
    lab.up(practice_topology())
    try:
        yield lab
    finally:
        lab.down()


def leadline(lab: Lab, argv: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run leadline in the scanner namespace; its output and wall time."""
    started = time.monotonic()
    done = lab.run(lab.scanner, [LEADLINE, *argv], timeout=timeout)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done, elapsed


def course_states(lab: Lab, ports: str, timeout: float = 120) -> tuple[HostStates, float]:
    done, elapsed = leadline(lab, ["-sS", "-Pn", "-n", "-p", ports, "-oX", "-", practice.COURSE], timeout)
    return read_states(done.stdout)[practice.COURSE], elapsed


# 1-2000 plus the course server's open and dropped ports, so loss hits every kind.
LOSS_PORTS = "1-2000,50000-50010"


@pytest.fixture(scope="module")
def clean_2000(lab: Lab) -> HostStates:
    states, elapsed = course_states(lab, LOSS_PORTS)
    print(f"\nclean -sS -p {LOSS_PORTS}: {elapsed:.2f} s")
    assert len(states.ports) == 2011
    return states


@pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
def test_thirty_percent_loss_gives_the_clean_result_in_bounded_time(lab: Lab, clean_2000: HostStates) -> None:
    lab.drop_random("course", 0.3)
    try:
        lossy, elapsed = course_states(lab, LOSS_PORTS, timeout=60)
    finally:
        assert lab.clear_rules("course", "loss") == 1
    print(f"\n30% loss -sS -p {LOSS_PORTS}: {elapsed:.2f} s")
    assert diff_states(lossy, clean_2000) == []
    assert lossy.ports[("tcp", 50007)] == ("open", "syn-ack")
    assert lossy.ports[("tcp", 50003)] == ("filtered", "no-response")
    assert lossy.ports[("tcp", 22)] == ("closed", "reset")
    assert elapsed < 15


# 500 closed ports and the course server's open and dropped ones: at 50 resets/s, 10 s however the scan is paced.
RST_PORTS = "1-500,50000-50010"


@pytest.mark.serial  # the cap is a rate: a scan starved of CPU by tests beside it reads late resets as drops
def test_rate_limited_resets_give_the_clean_result(lab: Lab, clean_2000: HostStates) -> None:
    lab.limit_rst("course", 50)
    try:
        limited, elapsed = course_states(lab, RST_PORTS, timeout=150)
    finally:
        assert lab.clear_rules("course", "rst-limit") == 2
    print(f"\nRSTs capped at 50/s, -sS -p {RST_PORTS}: {elapsed:.2f} s")
    assert len(limited.ports) == 511
    clean = replace(clean_2000, ports={key: value for key, value in clean_2000.ports.items() if key in limited.ports})
    assert diff_states(limited, clean) == []


def test_pcap_holds_the_handshake_tshark_reads(lab: Lab, tmp_path: Path) -> None:
    pcap = tmp_path / "scan.pcap"
    leadline(lab, ["-sS", "-Pn", "-n", "-p", "22,50007", "--pcap", str(pcap), practice.COURSE])
    shown = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp.port == 50007", "-T", "fields", "-e", "ip.src", "-e", "tcp.flags.str",
         "-e", "frame.time_epoch"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    rows = [line.split("\t") for line in shown.splitlines()]
    seen = [(src, flags.replace("\u00b7", "")) for src, flags, _ in rows]
    assert (practice.SCANNER, "S") in seen  # our SYN
    assert (practice.COURSE, "AS") in seen  # the SYN/ACK
    assert (practice.SCANNER, "R") in seen  # our kernel's reset
    # The kernel's own timestamps: in order, and a veth hop away the answer takes well under 5 ms.
    times = [float(when) for _, _, when in rows]
    assert times == sorted(times)
    syn, synack = times[seen.index((practice.SCANNER, "S"))], times[seen.index((practice.COURSE, "AS"))]
    assert 0 <= synack - syn < 0.005


SENT = re.compile(
    r"^SENT \(\d+\.\d{4}s\) TCP 198\.18\.1\.2:\d+ > 198\.18\.1\.10:(\d+) S ttl=\d+ id=\d+ iplen=44  seq=\d+ win=1024 <mss 1460>$"
)
RCVD = re.compile(r"^RCVD \(\d+\.\d{4}s\) TCP 198\.18\.1\.10:(\d+) > 198\.18\.1\.2:\d+ (SA|RA) ttl=64 id=\d+ iplen=\d+  seq=\d+ win=\d+")


def test_packet_trace_prints_nmaps_lines(lab: Lab) -> None:
    done, _ = leadline(lab, ["-sS", "-Pn", "-n", "-p", "22,50007", "--packet-trace", practice.COURSE])
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    sent = {int(m.group(1)) for line in lines if (m := SENT.match(line))}
    received = {(int(m.group(1)), m.group(2)) for line in lines if (m := RCVD.match(line))}
    assert sent == {22, 50007}
    assert received == {(22, "RA"), (50007, "SA")}


def test_explain_prints_the_exchange_under_each_port(lab: Lab) -> None:
    done, _ = leadline(lab, ["-sS", "-Pn", "-n", "-p", "22,50003,50007", "--explain", practice.COURSE])
    lines = done.stdout.splitlines()
    under = {lines[i].split("/")[0]: lines[i + 1] for i, line in enumerate(lines[:-1]) if re.match(r"^\d+/tcp ", line)}
    assert set(under) == {"22", "50003", "50007"}
    shown = re.match(r"^\|_ SYN \u2192 SYN/ACK \(ttl 64, ([\d.]+) ms\) \u2192 RST \(from our kernel\)$", under["50007"])
    assert shown is not None and float(shown.group(1)) < 5  # a veth hop, timed by the kernel
    assert re.match(r"^\|_ SYN \u2192 RST/ACK \(ttl 64, [\d.]+ ms\)$", under["22"])
    assert under["50003"].startswith("|_ SYN \u2192 no reply in ") and "SYN (retry 1)" in under["50003"]


def test_xml_of_a_syn_scan_is_valid_against_nmaps_dtd(lab: Lab, tmp_path: Path) -> None:
    xml = tmp_path / "scan.xml"
    leadline(lab, ["-sS", "-Pn", "-n", "-p", "1-1024,50000-50010", "-oX", str(xml), practice.COURSE, practice.FIREWALL])
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", str(DTD), str(xml)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    hosts = read_states(xml.read_text())
    assert hosts[practice.FIREWALL].ports[("tcp", 143)] == ("filtered", "admin-prohibited")
    assert hosts[practice.COURSE].ports[("tcp", 50008)] == ("open", "syn-ack")


def test_a_syn_proxy_answering_every_port_draws_a_warning(lab: Lab) -> None:
    nat = ["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(PROXY_PORT)]
    listener = lab.popen("iot", [sys.executable, "-c", PROXY_LISTENER],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while f":{PROXY_PORT} " not in lab.run("iot", ["ss", "-ltnH"]).stdout:
            assert time.monotonic() < deadline, "the listener did not come up"
            time.sleep(0.05)
        assert lab.run("iot", nat).returncode == 0
        done, _ = leadline(lab, ["-sS", "-Pn", "-n", "-p", "1-300", practice.IOT])
    finally:
        lab.run("iot", ["iptables", "-t", "nat", "-D", *nat[4:]])
        listener.kill()
        listener.wait(timeout=10)
    assert "300 of 300 ports answered as open" in done.stderr
    assert "SYN proxy" in done.stderr
    assert done.stderr.count("SYN proxy") == 1
