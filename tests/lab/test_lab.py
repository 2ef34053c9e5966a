"""The practice lab against real kernels.

Two labs appear here: the suite's shared practice lab ("llt", from conftest)
for checks that only look, and this file's own labs ("lld", "lldl") for
checks that build, change or remove one.  Every probe starts inside a lab
namespace and is addressed to a lab host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.errors import LabError
from leadline.lab import Host, Interface, Lab, Route, Service, ServiceKind, Topology
from leadline.lab import practice as net
from leadline.lab.daemons import processes_in_namespace, start_time_of
from leadline.lab.netns import namespace_inode, namespaces
from tests.conftest import probe_in_lab, scan_in_lab

pytestmark = pytest.mark.lab

OWN_PREFIX = "lld"
CLI = [sys.executable, "-m", "leadline.cli.lab"]


@pytest.fixture(scope="module")
def own_lab() -> Iterator[Lab]:
    """A practice lab this file may change and remove."""
    lab = Lab(OWN_PREFIX)
    lab.down()
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


# --- the topology answers as designed (shared lab, read only) -------------


def test_course_server_echoes_serves_drops_and_closes(practice_lab: Lab) -> None:
    ports = [net.COURSE_ECHO_PORT, net.COURSE_HTTP_PORT, *net.COURSE_DROPPED_PORTS, 50010, 22]
    outcomes = probe_in_lab(practice_lab, [("tcp", net.COURSE, port, 0.5) for port in ports])
    assert outcomes == ["open", "open"] + ["timeout"] * len(net.COURSE_DROPPED_PORTS) \
        + ["ECONNREFUSED", "ECONNREFUSED"]
    echoed = scan_in_lab(practice_lab, [sys.executable, "-c", (
        "import socket; s = socket.create_connection(('%s', %d), 2); s.sendall(b'ping-lab');"
        "print(s.recv(64).decode())") % (net.COURSE, net.COURSE_ECHO_PORT)], timeout=10)
    assert echoed.stdout.strip() == "ping-lab"


def test_http_servers_are_nginx(practice_lab: Lab) -> None:
    for address, port in ((net.COURSE, net.COURSE_HTTP_PORT), (net.IOT, 80), (net.FAR, 80)):
        fetched = scan_in_lab(practice_lab, [sys.executable, "-c", (
            "import http.client; c = http.client.HTTPConnection('%s', %d, timeout=2);"
            "c.request('GET', '/'); r = c.getresponse(); print(r.status, r.getheader('Server'))")
            % (address, port)], timeout=10)
        assert fetched.stdout.split()[0] == "200", fetched.stderr
        assert fetched.stdout.split()[1].startswith("nginx")


def test_iot_udp_listeners(practice_lab: Lab) -> None:
    outcomes = probe_in_lab(practice_lab, [("udp", net.IOT, 5353, 0.5), ("udp", net.IOT, 68, 0.5),
                                           ("udp", net.IOT, 67, 0.5), ("tcp", net.IOT, 80, 0.5)])
    assert outcomes == ["reply", "timeout", "ECONNREFUSED", "open"]


def test_windows_like_host_opens_five_ports_drops_the_rest_and_uses_ttl_128(practice_lab: Lab) -> None:
    probes = [("tcp", net.WINDOWS, port, 0.5) for port in (*net.WINDOWS_OPEN_PORTS, 22, 80)]
    outcomes = probe_in_lab(practice_lab, [*probes, ("icmp", net.WINDOWS, 64, 1.0)])
    assert outcomes[:5] == ["open"] * 5
    assert outcomes[5:7] == ["timeout", "timeout"]
    assert outcomes[7] == ["reply", net.WINDOWS, 128]


def test_firewall_host_rejects_as_documented(practice_lab: Lab) -> None:
    ports = [22, *net.FIREWALL_RESET_PORTS, *net.FIREWALL_ICMP_REJECTS, net.FIREWALL_DROPPED_PORT]
    outcomes = probe_in_lab(practice_lab, [("tcp", net.FIREWALL, port, 0.5) for port in ports])
    # connect() folds port-unreachable into a refusal and the prohibitions into EHOSTUNREACH.
    assert outcomes == ["open", "ECONNREFUSED", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH",
                        "EHOSTUNREACH", "ECONNREFUSED", "EHOSTUNREACH", "timeout"]
    # nmap sees the exact ICMP types: an independent reading of the same rules.
    port_list = ",".join(map(str, ports))
    done = scan_in_lab(practice_lab, ["nmap", "-n", "-Pn", "-sS", "--reason", "--max-retries", "1",
                                      "--host-timeout", "30s", "-p", port_list, net.FIREWALL],
                       timeout=60)
    reasons = {line.split("/")[0]: line.split()[3] for line in done.stdout.splitlines()
               if "/tcp" in line}
    assert reasons == {"22": "syn-ack", "23": "reset", "25": "reset", "110": "host-unreach",
                       "111": "net-unreach", "143": "admin-prohibited", "993": "port-unreach",
                       "995": "host-prohibited", "8080": "no-response"}, done.stdout


def test_far_host_is_two_routers_away(practice_lab: Lab) -> None:
    outcomes = probe_in_lab(practice_lab, [("icmp", net.FAR, 1, 1.0), ("icmp", net.FAR, 2, 1.0),
                                           ("icmp", net.FAR, 3, 1.0), ("tcp", net.FAR, 22, 1.0)])
    assert outcomes[0][:2] == ["time-exceeded", net.ROUTER1]  # type: ignore[index]
    assert outcomes[1][:2] == ["time-exceeded", net.ROUTER2]  # type: ignore[index]
    assert outcomes[2] == ["reply", net.FAR, 62]  # 64, less one per router
    assert outcomes[3] == "open"
    banner = scan_in_lab(practice_lab, [sys.executable, "-c", (
        "import socket; print(socket.create_connection(('%s', 22), 2).recv(64))") % net.FAR],
        timeout=10)
    assert banner.stdout.strip() == repr((net.FAR_SSH_BANNER + "\r\n").encode())


def test_nobody_answers_for_the_empty_address(practice_lab: Lab) -> None:
    assert probe_in_lab(practice_lab, [("icmp", net.NO_HOST, 64, 1.0)]) == [["timeout"]]


def test_macs_are_fixed_for_stable_arp_output(practice_lab: Lab) -> None:
    probe_in_lab(practice_lab, [("icmp", a, 64, 1.0) for a in (net.IOT, net.WINDOWS, net.COURSE)])
    neighbours = practice_lab.run("scanner", ["ip", "-4", "neigh", "show"], timeout=5).stdout
    table = {line.split()[0]: line.split()[4] for line in neighbours.splitlines() if "lladdr" in line}
    assert table[net.IOT] == net.IOT_MAC
    assert table[net.WINDOWS] == net.WINDOWS_MAC
    assert int(table[net.COURSE].split(":")[0], 16) & 0x02  # locally administered


def test_lab_is_sealed_from_the_root_namespace_and_the_outside(practice_lab: Lab) -> None:
    # Route look-ups only: no packet is sent.
    scanner_route = practice_lab.run("scanner", ["ip", "route", "get", "203.0.113.9"], timeout=5)
    assert f"via {net.ROUTER1}" in scanner_route.stdout
    for router in ("router1", "router2"):
        beyond = practice_lab.run(router, ["ip", "route", "get", "203.0.113.9"], timeout=5)
        assert beyond.returncode != 0 and "unreachable" in beyond.stderr
    root_addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                                    check=True).stdout
    root_routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                                 check=True).stdout
    assert "198.18." not in root_addresses + root_routes
    assert "198.19." not in root_addresses + root_routes


# --- building, inspecting, changing and removing a lab (own labs) ----------


def test_status_lists_hosts_addresses_and_live_daemons(own_lab: Lab) -> None:
    status = own_lab.status()
    assert status.is_up and status.topology == "practice"
    addresses = {h.name: h.addresses for h in status.hosts}
    assert addresses["course"] == (f"{net.COURSE}/24",)
    assert addresses["router1"] == (f"{net.ROUTER1}/24", f"{net.ROUTER1_FAR_SIDE}/24")
    assert {(d.host, d.port) for d in status.daemons} >= {("course", 50007), ("iot", 5353)}
    for daemon in status.daemons:
        assert Path(f"/proc/{daemon.pid}/comm").read_text().strip() == daemon.program[:15]  # comm is cut at 15
        assert daemon.program and "/" not in daemon.program  # a program name as /proc shows it, not a path
        inode = namespace_inode(own_lab.namespace(daemon.host))
        assert os.readlink(f"/proc/{daemon.pid}/ns/net") == f"net:[{inode}]"
    assert own_lab.up() is False  # already up: nothing rebuilt
    shown = subprocess.run([*CLI, "status", "--prefix", OWN_PREFIX], capture_output=True,
                           text=True, timeout=30)
    assert shown.returncode == 0
    assert shown.stdout.startswith("lab lld (practice): up\n")
    assert f"{net.IOT}/24" in shown.stdout


def test_exec_runs_in_the_scanner_and_passes_the_exit_code_on(own_lab: Lab) -> None:
    done = subprocess.run([*CLI, "exec", "--prefix", OWN_PREFIX, "--", "sh", "-c",
                           "ip -4 -o addr show dev eth0; exit 7"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 7
    assert f"{net.SCANNER}/24" in done.stdout
    shell = subprocess.run([*CLI, "shell", "--prefix", OWN_PREFIX, "--host", "far"],
                           input="ip -4 -o addr show dev eth0; exit 3\n", capture_output=True,
                           text=True, timeout=30, env=dict(os.environ, SHELL="/bin/sh"))
    assert shell.returncode == 3
    assert f"{net.FAR}/24" in shell.stdout


def test_runtime_rules_drop_limit_and_clear(own_lab: Lab) -> None:
    echo = ("tcp", net.COURSE, net.COURSE_ECHO_PORT, 0.4)
    own_lab.drop_random("course", 1.0, tag="loss")
    try:
        assert probe_in_lab(own_lab, [echo]) == ["timeout"]
    finally:
        assert own_lab.clear_rules("course", "loss") == 1
    assert probe_in_lab(own_lab, [echo]) == ["open"]

    own_lab.limit_rst("course", 1)
    try:
        closed = probe_in_lab(own_lab, [("tcp", net.COURSE, 40000 + i, 0.4) for i in range(10)])
    finally:
        assert own_lab.clear_rules("course", "rst-limit") == 2
    assert 1 <= closed.count("ECONNREFUSED") <= 3
    assert closed.count("timeout") >= 7
    assert own_lab.clear_rules("course", "rst-limit") == 0


def test_down_removes_every_namespace_and_process_even_after_a_crash(own_lab: Lab) -> None:
    status = own_lab.status()
    inodes = [namespace_inode(h.namespace) for h in status.hosts]
    nginx = next(d for d in status.daemons if d.program == "nginx")
    os.kill(nginx.pid, signal.SIGKILL)  # a crash: its worker is orphaned in the namespace
    assert own_lab.down() is True
    assert not {n for n in namespaces() if n.startswith(f"{OWN_PREFIX}-")}
    assert all(start_time_of(d.pid) is None for d in status.daemons)
    assert not [p for inode in inodes if inode for p in processes_in_namespace(inode)]
    assert not own_lab.state_dir.exists()
    assert own_lab.down() is False  # idempotent
    assert not own_lab.status().is_up


def test_other_topologies_a_target_answering_for_a_whole_slash_16() -> None:
    topology = Topology("local16", (
        Host("scanner", (Interface("link", "198.18.250.1/24"),),
             routes=(Route("198.19.0.0/16", via="198.18.250.2"),)),
        Host("target", (Interface("link", "198.18.250.2/24"),),
             routes=(Route("198.19.0.0/16", kind="local", device="lo"),),
             services=(Service(ServiceKind.TCP_OPEN, 8443),)),
    ))
    lab = Lab("lldl")
    lab.down()
    try:
        assert lab.up(topology) is True
        outcomes = probe_in_lab(lab, [("tcp", "198.19.7.9", 8443, 1.0), ("tcp", "198.19.200.1", 8443, 1.0),
                                      ("tcp", "198.19.3.3", 8444, 1.0)])
        assert outcomes == ["open", "open", "ECONNREFUSED"]
    finally:
        lab.down()
    assert "lldl-target" not in namespaces()


def test_topologies_outside_the_lab_range_are_refused() -> None:
    unsafe = Topology("unsafe", (Host("scanner", (Interface("link", "10.1.2.3/24"),)),))
    with pytest.raises(LabError, match="10.1.2.3/24 lies outside the lab range"):
        unsafe.validate()
    escaping = Topology("escaping", (Host("scanner", (Interface("link", "198.18.9.1/24"),),
                                          routes=(Route("0.0.0.0/1", via="198.18.9.2"),)),))
    with pytest.raises(LabError, match="0.0.0.0/1 lies outside"):
        escaping.validate()


def test_non_root_gets_one_line_and_exit_code_1(unprivileged_leadline: list[str]) -> None:
    done = subprocess.run([*unprivileged_leadline, "lab", "up", "--prefix", OWN_PREFIX],
                          capture_output=True, text=True, timeout=30, cwd="/")
    assert done.returncode == 1
    assert done.stderr == "leadline: the practice lab needs root (network namespaces); run as root\n"
    assert done.stdout == ""


def test_bad_input_is_one_line_not_a_traceback() -> None:
    done = subprocess.run([*CLI, "up", "--prefix", "Bad!"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr == "leadline: bad lab prefix 'Bad!': use 1-8 of [a-z0-9], starting with a letter\n"
    done = subprocess.run([*CLI, "exec", "--prefix", "lldnone"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("leadline: lab exec:")
