"""The raw engine against a real kernel in namespaces, side by side with ``nmap -sS``.

Two namespaces of our own (llf-scan 198.18.202.1 <-> llf-tgt
198.18.202.2 over a veth pair); the target runs listeners and iptables
rules; both scanners run inside llf-scan.  Run as a script with
``--driver`` this file is the scan driver executed in the namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.serial]  # times leadline beside nmap, with loss and capped resets

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
# This file also runs as a script inside the scanner namespace (no tests package there): the
# prefix is the suite's (tests/conftest.py's lab_prefix) spelled out.
_OWN = os.environ.get("LEADLINE_TEST_LAB", "llt") + "f"
SCANNER, TARGET_NS = f"{_OWN}-scan", f"{_OWN}-tgt"
SCANNER_IP, TARGET_IP = "198.18.202.1", "198.18.202.2"
OPEN_PORTS = (22, 80, 443, 8080)
RULES = (
    "-A INPUT -p tcp --dport 8081 -j DROP",
    "-A INPUT -p tcp --dport 8082 -j REJECT --reject-with tcp-reset",
    "-A INPUT -p tcp --dport 8083 -j REJECT --reject-with icmp-admin-prohibited",
    "-A INPUT -p tcp --dport 8084 -j REJECT --reject-with icmp-host-unreachable",
    "-A INPUT -p tcp --dport 1999 -j DROP",
)
LISTENER = (
    "import socket, sys, time\n"
    "socks = []\n"
    "for p in sys.argv[1:]:\n"
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    s.bind(('0.0.0.0', int(p))); s.listen(64); socks.append(s)\n"
    "time.sleep(300)\n"
)


def _run(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout)


def _ns(namespace: str, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", namespace, *args, check=check, timeout=timeout)


def _teardown() -> None:
    for namespace in (SCANNER, TARGET_NS):
        _run("ip", "netns", "del", namespace, check=False)


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.fail("the raw-engine lab tests need root")
    _teardown()
    listener = None
    try:
        _run("ip", "netns", "add", SCANNER)
        _run("ip", "netns", "add", TARGET_NS)
        _run("ip", "link", "add", "llf-s0", "netns", SCANNER, "type", "veth", "peer", "name", "llf-t0", "netns", TARGET_NS)
        for namespace, device, address in ((SCANNER, "llf-s0", SCANNER_IP), (TARGET_NS, "llf-t0", TARGET_IP)):
            _ns(namespace, "ip", "addr", "add", f"{address}/24", "dev", device)
            _ns(namespace, "ip", "link", "set", device, "up")
            _ns(namespace, "ip", "link", "set", "lo", "up")
        for rule in RULES:
            _ns(TARGET_NS, "iptables", *rule.split())
        listener = subprocess.Popen(
            ["ip", "netns", "exec", TARGET_NS, PYTHON, "-c", LISTENER, *map(str, OPEN_PORTS)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while "0.0.0.0:8080" not in _ns(TARGET_NS, "ss", "-ltn").stdout:
            assert time.monotonic() < deadline, "listeners did not come up"
            time.sleep(0.05)
        yield
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
        _teardown()


def _iptables(*rules: str) -> None:
    for rule in rules:
        _ns(TARGET_NS, "iptables", *rule.split())


def _scan(ports: str, pcap: str | None = None, timeout: float = 60) -> dict:
    command = [PYTHON, __file__, "--driver", "--target", TARGET_IP, "--ports", ports]
    if pcap:
        command += ["--pcap", pcap]
    result = _ns(SCANNER, *command, timeout=timeout)
    return json.loads(result.stdout)


def _nmap(ports: str, timeout: float = 120) -> tuple[dict[int, str], tuple[str, int] | None, float]:
    started = time.monotonic()
    xml = _ns(SCANNER, "nmap", "-sS", "-n", "-Pn", "-p", ports, "-oX", "-", TARGET_IP, timeout=timeout).stdout
    elapsed = time.monotonic() - started
    host = ET.fromstring(xml).find("host")
    assert host is not None
    listed = {int(p.get("portid", "0")): p.find("state").get("state", "") for p in host.iter("port")}  # type: ignore[union-attr]
    extra = host.find("ports/extraports")
    extraports = (extra.get("state", ""), int(extra.get("count", "0"))) if extra is not None else None
    return listed, extraports, elapsed


def _assert_same_as_nmap(ours: dict[str, list[str]], listed: dict[int, str], extraports: tuple[str, int] | None) -> None:
    states = {int(port): value[0] for port, value in ours.items()}
    assert {port: states[port] for port in listed} == listed
    rest = [state for port, state in states.items() if port not in listed]
    if extraports is None:
        assert rest == []
    else:
        assert rest == [extraports[0]] * extraports[1]


def test_states_match_nmap_and_the_pcap_holds_the_handshake(lab, tmp_path: Path) -> None:
    ports = "1-1000,1999,8080-8090"
    pcap = tmp_path / "scan.pcap"
    ours = _scan(ports, str(pcap))
    listed, extraports, nmap_time = _nmap(ports)
    _assert_same_as_nmap(ours["states"], listed, extraports)
    assert ours["states"]["8083"] == ["filtered", "admin-prohibited"]
    assert ours["states"]["8084"] == ["filtered", "host-unreach"]
    print(f"\nclean 1012 ports: leadline {ours['elapsed']:.3f}s, nmap {nmap_time:.3f}s")
    if shutil.which("tshark"):
        shown = _run("tshark", "-r", str(pcap), "-Y", "tcp.port == 22", "-T", "fields", "-e", "tcp.flags.str").stdout
        flags = [line.strip().replace("\u00b7", "") for line in shown.splitlines()]
        assert any(f.endswith("S") and "A" not in f for f in flags)  # our SYN
        assert any("A" in f and "S" in f for f in flags)  # their SYN/ACK
        assert any(f.endswith("R") for f in flags)  # the kernel's RST


def test_random_loss_keeps_states_and_speed(lab) -> None:
    ports = "1-2000"
    clean = _scan(ports)
    _iptables("-I INPUT 1 -p tcp -m statistic --mode random --probability 0.3 -j DROP")
    try:
        lossy = _scan(ports)
    finally:
        _iptables("-D INPUT -p tcp -m statistic --mode random --probability 0.3 -j DROP")
    assert lossy["states"] == clean["states"]
    assert lossy["states"]["1999"][0] == "filtered" and lossy["states"]["22"][0] == "open"
    print(f"\n30% loss, 2000 ports: leadline {lossy['elapsed']:.3f}s (clean {clean['elapsed']:.3f}s)")
    assert lossy["elapsed"] < 20


def test_rate_limited_resets_keep_states(lab) -> None:
    ports = "1-800"
    clean = _scan(ports)
    limit = ("-A OUTPUT -p tcp --tcp-flags RST RST -m limit --limit 50/s --limit-burst 50 -j ACCEPT", "-A OUTPUT -p tcp --tcp-flags RST RST -j DROP")
    _iptables(*limit)
    try:
        limited = _scan(ports, timeout=80)
    finally:
        for rule in limit:
            _iptables(rule.replace("-A OUTPUT", "-D OUTPUT", 1))
    assert limited["states"] == clean["states"]
    assert clean["module"] == "SynScan"  # the real scan module, not the test fixture
    print(f"\nRSTs capped at 50/s, 800 ports: leadline {limited['elapsed']:.3f}s, final rate {limited['rate']:.0f}/s")
    assert limited["rate"] < 150


def _driver() -> None:
    import secrets
    import threading

    from leadline.config import TIMING_TEMPLATES, ScanType
    from leadline.core.probes.base import ProbeContext
    from leadline.core.ratecontrol import RateController
    from leadline.core.session import PortDecided, ScanSession
    from leadline.engines.raw import run_raw_scan, source_address_for
    from leadline.output.evidence import open_evidence

    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", action="store_true")
    parser.add_argument("--target", required=True)
    parser.add_argument("--ports", required=True)
    parser.add_argument("--pcap")
    args = parser.parse_args()
    ports: list[int] = []
    for part in args.ports.split(","):
        low, _, high = part.partition("-")
        ports.extend(range(int(low), int(high or low) + 1))
    try:
        from leadline.scantypes import probe_module

        module = probe_module(ScanType.SYN, None)
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from tests.unit.rawprobe_fixture import FixtureSynScan

        module = FixtureSynScan()
    timing = TIMING_TEMPLATES[3]
    ctx = ProbeContext(source_address_for(args.target), secrets.token_bytes(16))
    rate = RateController.from_timing(timing)
    session = ScanSession.for_group(module, ctx, [args.target], ports, timing, rate)
    states: dict[int, list[str]] = {}

    def collect(event: object) -> None:
        if isinstance(event, PortDecided):
            states[event.port] = [event.verdict.state.value, event.verdict.reason.value]

    stop = threading.Event()
    watchdog = threading.Timer(55, stop.set)
    watchdog.daemon = True
    watchdog.start()
    pcap = open_evidence(args.pcap, None)
    started = time.monotonic()
    run_raw_scan(session, on_event=collect, stop=stop, evidence=pcap)
    elapsed = time.monotonic() - started
    watchdog.cancel()
    if pcap is not None:
        pcap.close()
    json.dump({"states": states, "elapsed": elapsed, "sent": session.sent, "rate": rate.rate, "module": type(module).__name__}, sys.stdout)


if __name__ == "__main__" and "--driver" in sys.argv:
    _driver()
