"""The connect engine against real kernels: a scanner and a target in two namespaces.

Topology (built and removed by the ``pair`` fixture):

    llb-scan  198.18.200.1/24  --veth--  198.18.200.2/24  llb-tgt

The target listens on 22, 80, 8080; drops 9001-9008; answers 110 with
icmp-host-unreachable, 111 net-unreachable, 143 admin-prohibited, 993
port-unreachable, 995 host-prohibited, 996 proto-unreachable; every other
port is closed.  198.18.200.3 is on the link but nobody owns it.

The engine runs inside llb-scan through a small driver run with
``ip netns exec``, so no probe can leave the pair.  The resolver tests run
there too: the namespace has no route out, so a name missing from
/etc/hosts fails at once instead of reaching a real name server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from leadline.config import TIMING_TEMPLATES
from leadline.engines.connect import HostPortResults, connect_ping, connect_scan
from leadline.errors import PortSpecError, TargetSpecError
from leadline.model import PortState, Reason

pytestmark = pytest.mark.lab

SCAN_NS = "llb-scan"
TARGET_NS = "llb-tgt"
SCANNER = "198.18.200.1"
TARGET = "198.18.200.2"
NOBODY = "198.18.200.3"
OPEN_PORTS = (22, 80, 8080)
DROPPED_PORTS = tuple(range(9001, 9009))
REJECTS = {
    110: "icmp-host-unreachable",
    111: "icmp-net-unreachable",
    143: "icmp-admin-prohibited",
    993: "icmp-port-unreachable",
    995: "icmp-host-prohibited",
    996: "icmp-proto-unreachable",
}
# What connect() sees for each rejection on Linux, hence what nmap -sT reports:
# the kernel folds admin/host-prohibited into EHOSTUNREACH and port-unreachable
# into ECONNREFUSED.
EXPECTED_REJECT_VERDICTS = {
    110: (PortState.FILTERED, Reason.HOST_UNREACH),
    111: (PortState.FILTERED, Reason.NET_UNREACH),
    143: (PortState.FILTERED, Reason.HOST_UNREACH),
    993: (PortState.CLOSED, Reason.CONN_REFUSED),
    995: (PortState.FILTERED, Reason.HOST_UNREACH),
    996: (PortState.FILTERED, Reason.PROTO_UNREACH),
}

LISTENER = f"""
import socket, time
held = []
for port in {OPEN_PORTS!r}:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(({TARGET!r}, port))
    s.listen(1024)
    held.append(s)
print("ready", flush=True)
time.sleep(300)
"""

# Runs inside the scanner namespace; reads a JSON job, prints JSON results.
DRIVER = r"""
import dataclasses, json, resource, socket, sys, threading, time
from leadline.config import TIMING_TEMPLATES
from leadline.engines.connect import connect_ping, connect_scan
from leadline.engines.resolve import resolve_name, reverse_lookup_many

job = json.loads(sys.argv[1])
timing = dataclasses.replace(TIMING_TEMPLATES[job.get("template", 4)], **job.get("timing", {}))
if job["kind"] == "resolve":
    print(json.dumps({
        "forward": {n: resolve_name(n, socket.AF_INET) for n in job["names"]},
        "reverse": reverse_lookup_many(job["addresses"], timeout=3.0),
    }))
    sys.exit()
fillers = []
if "free_fds" in job:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    try:
        while True:
            fillers.append(open("/dev/null"))
    except OSError:
        pass
    for _ in range(job["free_fds"]):
        fillers.pop().close()
ports = list(job.get("ports", []))
if "port_range" in job:
    ports.extend(range(job["port_range"][0], job["port_range"][1] + 1))
for low, high in job.get("port_ranges", []):
    ports.extend(range(low, high + 1))
stop = threading.Event()
if "stop_after" in job:
    threading.Timer(job["stop_after"], stop.set).start()
if "kill_worker_after" in job:
    def kill_a_worker():
        import os, signal
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            os.kill(int(f.read().split()[0]), signal.SIGKILL)
    threading.Timer(job["kill_worker_after"], kill_a_worker).start()
results, progress = [], []
started = time.monotonic()
error = None
if job["kind"] == "ping":
    for r in connect_ping(job["hosts"], ports, timing):
        results.append({"address": r.address, "up": r.up, "reason": r.reason.value, "latency": r.latency})
else:
    def done(r):
        results.append({
            "address": r.address, "latency": r.latency, "timed_out": r.timed_out,
            "interrupted": r.interrupted, "at": time.monotonic() - started,
            "ports": [[p.port, p.state.value, p.reason.value] for p in r.ports],
        })
    try:
        connect_scan(job["hosts"], ports, timing, on_host_done=done,
                     on_progress=lambda d, t: progress.append([d, t]), stop=stop)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
elapsed = time.monotonic() - started
import os
with open(f"/proc/self/task/{os.getpid()}/children") as f:
    children = f.read().split()
print(json.dumps({"elapsed": elapsed, "results": results, "last_progress": progress[-1] if progress else None,
                  "error": error, "children": children}))
"""


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def in_target(*argv: str, check: bool = True) -> None:
    run("ip", "netns", "exec", TARGET_NS, *argv, check=check)


def remove_pair() -> None:
    for ns in (SCAN_NS, TARGET_NS):
        run("ip", "netns", "del", ns, check=False)


@dataclass
class Pair:
    listener: subprocess.Popen[str]

    def drive(self, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        proc = run("ip", "netns", "exec", SCAN_NS, sys.executable, "-c", DRIVER, json.dumps(job), check=False, timeout=timeout)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def scan(self, ports: list[int], **job: Any) -> dict[str, Any]:
        out = self.drive({"kind": "scan", "hosts": [TARGET], "ports": ports, **job})
        assert out["error"] is None
        assert out["children"] == []
        (host,) = out["results"]
        host["elapsed"] = out["elapsed"]
        host["verdicts"] = {port: (PortState(state), Reason(reason)) for port, state, reason in host["ports"]}
        return dict(host)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if os.geteuid() != 0:
        raise PermissionError("the connect-engine lab tests need root to build network namespaces")
    remove_pair()
    listener: subprocess.Popen[str] | None = None
    try:
        run("ip", "netns", "add", SCAN_NS)
        run("ip", "netns", "add", TARGET_NS)
        run("ip", "link", "add", "llb-s0", "netns", SCAN_NS, "type", "veth", "peer", "name", "llb-t0", "netns", TARGET_NS)
        for ns, dev, address in ((SCAN_NS, "llb-s0", SCANNER), (TARGET_NS, "llb-t0", TARGET)):
            run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", dev, "up")
        # No per-destination ICMP rate limit: every rejection must be answered.
        in_target("sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0")
        in_target("iptables", "-A", "INPUT", "-p", "tcp", "--dport", f"{DROPPED_PORTS[0]}:{DROPPED_PORTS[-1]}", "-j", "DROP")
        for port, answer in REJECTS.items():
            in_target("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "REJECT", "--reject-with", answer)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", TARGET_NS, sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True
        )
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield Pair(listener)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=5)
            if listener.stdout is not None:
                listener.stdout.close()
        remove_pair()


class TestVerdicts:
    def test_every_kind_of_answer(self, pair: Pair) -> None:
        closed = [1, 2, 3, 443, 65535]
        ports = [*OPEN_PORTS, *DROPPED_PORTS, *REJECTS, *closed]
        host = pair.scan(ports)
        verdicts = host["verdicts"]
        assert sorted(verdicts) == sorted(ports)
        for port in OPEN_PORTS:
            assert verdicts[port] == (PortState.OPEN, Reason.SYN_ACK)
        for port in closed:
            assert verdicts[port] == (PortState.CLOSED, Reason.CONN_REFUSED)
        for port in DROPPED_PORTS:
            assert verdicts[port] == (PortState.FILTERED, Reason.NO_RESPONSE)
        for port, expected in EXPECTED_REJECT_VERDICTS.items():
            assert verdicts[port] == expected, port
        assert not host["timed_out"] and not host["interrupted"]
        assert 0 < host["latency"] < 0.05

    def test_random_loss_does_not_hide_open_ports(self, pair: Pair) -> None:
        rule = ["INPUT", "-p", "tcp", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"]
        in_target("iptables", "-I", *rule)
        try:
            host = pair.scan(list(range(1, 301)) + [8080])
        finally:
            in_target("iptables", "-D", *rule)
        verdicts = host["verdicts"]
        for port in OPEN_PORTS:
            assert verdicts[port] == (PortState.OPEN, Reason.SYN_ACK), port
        plain_closed = [p for p in range(1, 301) if p not in OPEN_PORTS and p not in REJECTS]
        still_closed = sum(verdicts[p] == (PortState.CLOSED, Reason.CONN_REFUSED) for p in plain_closed)
        assert still_closed >= len(plain_closed) - 3

    def test_several_hosts_at_once(self, pair: Pair) -> None:
        out = pair.drive({"kind": "scan", "hosts": [TARGET, NOBODY], "ports": [22, 23]})
        by_address = {r["address"]: r for r in out["results"]}
        assert by_address[TARGET]["ports"] == [[22, "open", "syn-ack"], [23, "closed", "conn-refused"]]
        assert [state for _, state, _ in by_address[NOBODY]["ports"]] == ["filtered", "filtered"]
        # The live host is reported as soon as it is done, not after the silent one.
        assert by_address[TARGET]["at"] < by_address[NOBODY]["at"]
        assert out["last_progress"] == [4, 4]


@pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
class TestTimingKnobs:
    def test_host_timeout_reports_no_ports(self, pair: Pair) -> None:
        # A 1 s minimum timeout makes the dropped ports outlast the host timeout.
        host = pair.scan([*DROPPED_PORTS, 22], timing={"host_timeout": 0.3, "min_rtt_timeout": 1.0})
        assert host["timed_out"] is True
        assert host["ports"] == []
        assert host["elapsed"] < 1.0

    def test_stop_reports_what_was_decided(self, pair: Pair) -> None:
        host = pair.scan([22, 23, *DROPPED_PORTS], timing={"min_rtt_timeout": 1.0}, stop_after=0.3)
        assert host["interrupted"] is True
        assert host["elapsed"] < 0.8
        assert host["verdicts"] == {22: (PortState.OPEN, Reason.SYN_ACK), 23: (PortState.CLOSED, Reason.CONN_REFUSED)}

    def test_scan_delay_spaces_probes(self, pair: Pair) -> None:
        host = pair.scan([1, 2, 3, 4, 5], timing={"scan_delay": 0.05})
        assert host["elapsed"] >= 0.2
        assert all(v == (PortState.CLOSED, Reason.CONN_REFUSED) for v in host["verdicts"].values())

    def test_max_rate_caps_the_pace(self, pair: Pair) -> None:
        host = pair.scan(list(range(1000, 1100)), timing={"max_rate": 200.0})
        assert 0.4 <= host["elapsed"] < 1.5
        assert len(host["verdicts"]) == 100

    def test_few_descriptors_slow_the_scan_but_do_not_break_it(self, pair: Pair) -> None:
        ports = [*OPEN_PORTS, *DROPPED_PORTS, *range(2000, 2100)]
        host = pair.scan(ports, free_fds=4)
        verdicts = host["verdicts"]
        assert len(verdicts) == len(ports)
        assert all(verdicts[p] == (PortState.OPEN, Reason.SYN_ACK) for p in OPEN_PORTS)
        assert all(verdicts[p] == (PortState.FILTERED, Reason.NO_RESPONSE) for p in DROPPED_PORTS)
        assert all(verdicts[p] == (PortState.CLOSED, Reason.CONN_REFUSED) for p in range(2000, 2100))


class TestConnectPing:
    def test_accept_refusal_and_silence(self, pair: Pair) -> None:
        out = pair.drive({"kind": "ping", "hosts": [TARGET], "ports": [80]})
        assert [(r["up"], r["reason"]) for r in out["results"]] == [(True, "syn-ack")]
        # With both, whichever answer lands first decides; either proves the host up.
        out = pair.drive({"kind": "ping", "hosts": [TARGET], "ports": [80, 443]})
        assert [r["up"] for r in out["results"]] == [True]
        assert out["results"][0]["reason"] in ("syn-ack", "conn-refused")
        out = pair.drive({"kind": "ping", "hosts": [TARGET], "ports": [443]})
        assert [(r["up"], r["reason"]) for r in out["results"]] == [(True, "conn-refused")]
        out = pair.drive({"kind": "ping", "hosts": [TARGET], "ports": [9001, 9002]})
        assert [(r["up"], r["reason"]) for r in out["results"]] == [(False, "no-response")]

    def test_streams_live_hosts_first(self, pair: Pair) -> None:
        out = pair.drive({"kind": "ping", "hosts": [NOBODY, TARGET], "ports": [80, 443]})
        assert [r["address"] for r in out["results"]] == [TARGET, NOBODY]
        assert out["results"][0]["up"] and out["results"][0]["latency"] > 0
        assert not out["results"][1]["up"]


class TestResolver:
    def test_names_from_etc_hosts_only(self, pair: Pair) -> None:
        out = pair.drive(
            {"kind": "resolve", "names": ["localhost", "no-such-host.invalid"], "addresses": ["127.0.0.1", TARGET]}
        )
        assert out["forward"] == {"localhost": ["127.0.0.1"], "no-such-host.invalid": []}
        assert out["reverse"] == {"127.0.0.1": "localhost", TARGET: None}


class TestLoopback:
    """Ports this test opened itself on 127.0.0.1, scanned from the root namespace."""

    def test_listening_port_open_and_released_port_closed(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        released = socket.socket()
        released.bind(("127.0.0.1", 0))
        open_port, closed_port = listener.getsockname()[1], released.getsockname()[1]
        released.close()
        found: list[HostPortResults] = []
        try:
            connect_scan(["127.0.0.1"], [open_port, closed_port], TIMING_TEMPLATES[4], on_host_done=found.append)
        finally:
            listener.close()
        (host,) = found
        assert [(p.port, p.state, p.reason, p.reason_ttl, p.service) for p in host.ports] == sorted(
            [
                (open_port, PortState.OPEN, Reason.SYN_ACK, None, None),
                (closed_port, PortState.CLOSED, Reason.CONN_REFUSED, None, None),
            ]
        )
        assert host.latency is not None and host.latency < 0.05

    def test_ipv6_loopback(self) -> None:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
        listener.listen(8)
        found: list[HostPortResults] = []
        try:
            connect_scan(["::1"], [listener.getsockname()[1]], TIMING_TEMPLATES[4], on_host_done=found.append)
        finally:
            listener.close()
        assert [(r.address, [(p.state, p.reason) for p in r.ports]) for r in found] == [
            ("::1", [(PortState.OPEN, Reason.SYN_ACK)])
        ]

    def test_repeated_port_is_scanned_once(self) -> None:
        released = socket.socket()
        released.bind(("127.0.0.1", 0))
        port = released.getsockname()[1]
        released.close()
        found: list[HostPortResults] = []
        connect_scan(["127.0.0.1"], [port, port], TIMING_TEMPLATES[4], on_host_done=found.append)
        assert [[(p.port, p.state) for p in r.ports] for r in found] == [[(port, PortState.CLOSED)]]

    def test_ping_by_refusal(self) -> None:
        released = socket.socket()
        released.bind(("127.0.0.1", 0))
        port = released.getsockname()[1]
        released.close()
        (result,) = connect_ping(["127.0.0.1"], [port], TIMING_TEMPLATES[4])
        assert (result.address, result.up, result.reason) == ("127.0.0.1", True, Reason.CONN_REFUSED)


class TestBadInput:
    def test_bad_address_names_the_token(self) -> None:
        with pytest.raises(TargetSpecError, match="'198.18.300.1'"):
            connect_scan(["198.18.300.1"], [80], TIMING_TEMPLATES[4], on_host_done=lambda r: None)

    def test_repeated_host_names_the_address(self) -> None:
        with pytest.raises(TargetSpecError, match="127.0.0.1"):
            connect_scan(["127.0.0.1", "127.0.0.1"], [80], TIMING_TEMPLATES[4], on_host_done=lambda r: None)

    def test_bad_port_names_the_number(self) -> None:
        with pytest.raises(PortSpecError, match="70000"):
            connect_scan(["127.0.0.1"], [70000], TIMING_TEMPLATES[4], on_host_done=lambda r: None)


class TestWorkerProcesses:
    """Scans large enough to run in one worker process per core (this machine has several)."""

    FEW = [*OPEN_PORTS, *DROPPED_PORTS, *REJECTS]
    SPREAD = [*FEW, *range(20000, 40000)]

    def test_split_scan_gives_every_verdict_and_leaves_no_process(self, pair: Pair) -> None:
        job = {"kind": "scan", "hosts": [TARGET, NOBODY], "ports": self.FEW, "port_ranges": [[20000, 39999]], "template": 4}
        host = pair.drive(job)
        assert host["error"] is None and host["children"] == []
        by_address = {r["address"]: r for r in host["results"]}
        verdicts = {port: (PortState(state), Reason(reason)) for port, state, reason in by_address[TARGET]["ports"]}
        assert [p for p, _, _ in by_address[TARGET]["ports"]] == sorted(self.SPREAD)
        for port in OPEN_PORTS:
            assert verdicts[port] == (PortState.OPEN, Reason.SYN_ACK)
        for port in DROPPED_PORTS:
            assert verdicts[port] == (PortState.FILTERED, Reason.NO_RESPONSE)
        for port, expected in EXPECTED_REJECT_VERDICTS.items():
            assert verdicts[port] == expected, port
        assert all(verdicts[p] == (PortState.CLOSED, Reason.CONN_REFUSED) for p in range(20000, 40000))
        assert 0 < by_address[TARGET]["latency"] < 0.05
        # The silent address answers nothing on any share of the ports.
        assert len(by_address[NOBODY]["ports"]) == len(self.SPREAD)
        assert {state for _, state, _ in by_address[NOBODY]["ports"]} == {"filtered"}
        total = 2 * len(self.SPREAD)
        assert host["last_progress"] == [total, total]

    @pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
    def test_stop_reaches_every_worker(self, pair: Pair) -> None:
        host = pair.scan([*DROPPED_PORTS], port_ranges=[[1000, 65535]], timing={"min_rtt_timeout": 1.0}, stop_after=0.3)
        assert host["interrupted"] is True
        assert host["elapsed"] < 1.0
        verdicts = host["verdicts"]
        assert 0 < len(verdicts) < 64536
        assert all(
            v == (PortState.CLOSED, Reason.CONN_REFUSED)
            for p, v in verdicts.items()
            if p not in DROPPED_PORTS and p not in OPEN_PORTS
        )

    @pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
    def test_host_timeout_in_a_split_scan(self, pair: Pair) -> None:
        host = pair.scan([*DROPPED_PORTS], port_ranges=[[1000, 20999]], timing={"host_timeout": 0.3, "min_rtt_timeout": 1.0})
        assert host["timed_out"] is True
        assert host["ports"] == []
        assert host["elapsed"] < 1.0

    @pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
    def test_max_rate_is_shared_by_the_workers(self, pair: Pair) -> None:
        # 30000 probes at 30000/s overall: about a second, not half of one.
        host = pair.scan([], port_ranges=[[20000, 49999]], timing={"max_rate": 30000.0})
        assert 0.9 <= host["elapsed"] < 3.0
        assert len(host["verdicts"]) == 30000

    @pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
    def test_a_dead_worker_ends_the_scan_with_one_line(self, pair: Pair) -> None:
        out = pair.drive(
            {"kind": "scan", "hosts": [TARGET], "ports": [*DROPPED_PORTS], "port_ranges": [[1000, 65535]],
             "timing": {"min_rtt_timeout": 2.0}, "kill_worker_after": 0.3}
        )
        assert out["error"] == "WorkerFailed: a connect-scan worker process ended before finishing its share"
        assert out["children"] == []
        assert out["elapsed"] < 2.0


class TestAllPortsAgainstNmap:
    def test_full_range_matches_nmap(self, pair: Pair) -> None:
        """-p- on a host that drops 8 ports and rejects the rest, beside nmap -sT (timing is bench/'s job)."""
        host = pair.scan([], port_range=[1, 65535], template=3)
        verdicts = host["verdicts"]
        assert len(verdicts) == 65535
        assert {p for p, v in verdicts.items() if v[0] is PortState.OPEN} == set(OPEN_PORTS)
        assert all(verdicts[p] == (PortState.FILTERED, Reason.NO_RESPONSE) for p in DROPPED_PORTS)
        started = time.monotonic()
        nmap = run("ip", "netns", "exec", SCAN_NS, "nmap", "-sT", "-p-", "-n", "-Pn", TARGET, timeout=120)
        nmap_elapsed = time.monotonic() - started
        assert "8080/tcp open" in nmap.stdout
        print(f"\n-p- connect scan: leadline {host['elapsed']:.2f} s, nmap {nmap_elapsed:.2f} s")
        nmap_open = {int(line.split("/")[0]) for line in nmap.stdout.splitlines() if "/tcp" in line and " open " in line}
        assert nmap_open == set(OPEN_PORTS)
