"""``leadline local`` against a namespace this test builds and fills with servers it starts.

The namespace (prefix "lcl") holds TCP and UDP servers on IPv4 and IPv6,
one bound to loopback only, one behind an iptables DROP and one behind a
REJECT, and one established connection.  ``ss`` run in the same namespace
is the oracle for the listing; ``--exposure`` probes from a namespace
leadline makes itself, joined to this one by a veth pair, and removes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
NS = f"lcl-{os.getpid()}"

# A server: bind, listen (TCP), print "ready", then serve until killed.
# mode "echo" answers UDP datagrams and accepts TCP connections; "silent" only reads.
_SERVER = r'''
import ctypes, socket, sys, threading
name, proto, addr, port, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)   # PR_SET_NAME: what ss and ps show
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
if mode == "v6only":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((addr, port))
held = []
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        held.append(s.accept()[0])
    else:
        data, peer = s.recvfrom(4096)
        if mode == "echo":
            s.sendto(data, peer)
'''

# A client that connects and holds the connection; prints its own port.
_CLIENT = r'''
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, b"lclclient", 0, 0, 0)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(c.getsockname()[1], flush=True)
time.sleep(120)
'''

# A second program that tries to bind a port and reports what it got.
_BINDER = r'''
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); print("bound")
except OSError as e:
    print(errno.errorcode[e.errno])
'''

# name, protocol, address, port, mode, expected service, expected exposure label
SERVERS = [
    ("lclweb", "tcp", "0.0.0.0", 8080, "echo", "http-alt", "exposed"),
    ("lclpg", "tcp", "::", 5432, "echo", "postgresql", "exposed"),
    ("lcldns", "udp", "0.0.0.0", 53, "echo", "domain", "exposed"),
    ("lclmdns", "udp", "::", 5353, "silent", "mdns", "exposed"),
    ("lclcups", "tcp", "127.0.0.1", 631, "echo", "ipp", "local-only"),
    ("lclmemc", "udp", "::1", 11211, "echo", "memcache", "local-only"),
    ("lclsql", "tcp", "0.0.0.0", 3306, "echo", "mysql", "filtered"),
    ("lclredis", "tcp", "0.0.0.0", 6379, "echo", "redis", "filtered"),
    ("lclsnmp", "udp", "0.0.0.0", 161, "silent", "snmp", "filtered"),
    ("lclv6", "tcp", "::", 9100, "v6only", "jetdirect", "untested"),
]
RULES = [("tcp", 3306, "DROP"), ("tcp", 6379, "REJECT"), ("udp", 161, "DROP")]


def _in_ns(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", NS, *argv], capture_output=True, text=True, timeout=timeout,
                          check=False)


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(["ip", "netns", "exec", NS, *argv], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


@pytest.fixture(scope="module")
def host() -> Iterator[dict[str, object]]:
    """The namespace with every server up; pids by name, the connection's client port."""
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces)", pytrace=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    processes: list[subprocess.Popen[str]] = []
    try:
        _in_ns(["ip", "link", "set", "lo", "up"])
        for proto, port, verdict in RULES:
            subprocess.run(["ip", "netns", "exec", NS, "iptables", "-A", "INPUT", "-p", proto, "--dport", str(port),
                            "-j", verdict], check=True, timeout=30)
        pids: dict[str, int] = {}
        for name, proto, addr, port, mode, _, _ in SERVERS:
            process, line = _start([sys.executable, "-c", _SERVER, name, proto, addr, str(port), mode])
            assert line == "ready", name
            processes.append(process)
            pids[name] = process.pid
        client, client_port = _start([sys.executable, "-c", _CLIENT, "127.0.0.1", "8080"])
        processes.append(client)
        pids["lclclient"] = client.pid
        time.sleep(0.2)  # the server's accept()
        yield {"pids": pids, "client_port": int(client_port)}
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        subprocess.run(["ip", "netns", "del", NS], check=False)


def _ours(*flags: str) -> dict[str, object]:
    done = _in_ns([LEADLINE, "local", *flags, "-oJ", "-"], timeout=120)
    assert done.returncode == 0, done.stderr
    document: dict[str, object] = json.loads(done.stdout)
    return document


_USERS = re.compile(r'\("([^"]*)",pid=(\d+),fd=(\d+)\)')


def _ss(flags: str) -> set[tuple[str, str, int, str, int]]:
    """(protocol, local address, port, peer, pid) per holder, from ss's own output."""
    done = _in_ns(["ss", "-H", flags])
    assert done.returncode == 0, done.stderr
    found = set()
    for line in done.stdout.splitlines():
        fields = line.split()
        protocol = fields[0] if flags.startswith("-tu") else "tcp"
        local, peer = (fields[4], fields[5]) if flags.startswith("-tu") else (fields[3], fields[4])
        address, _, port = local.rpartition(":")
        for _, pid, _ in _USERS.findall(line):
            found.add((protocol, address.strip("[]"), int(port), peer, int(pid)))
    return found


def _ss_address(entry: dict[str, object]) -> str:
    """Our address as ss prints it: a dual-stack IPv6 wildcard is '*'."""
    return "*" if entry["local_address"] == "::" and entry["local_port"] != 9100 else str(entry["local_address"])


def _sockets(document: dict[str, object]) -> list[dict[str, object]]:
    return document["sockets"]  # type: ignore[return-value]


def test_listing_equals_ss_tulpn(host: dict[str, object]) -> None:
    ours = {(str(s["protocol"]), _ss_address(s), int(s["local_port"]), "x", int(s["pid"]))  # type: ignore[arg-type]
            for s in _sockets(_ours("--listening"))}
    theirs = {(proto, addr, port, "x", pid) for proto, addr, port, _, pid in _ss("-tulpn")}
    assert ours == theirs
    assert len(ours) == len(SERVERS)


def _peer_port(peer: str) -> int | None:
    port = peer.rpartition(":")[2]
    return None if port == "*" else int(port)


def test_the_whole_listing_equals_ss_tuapn(host: dict[str, object]) -> None:
    """Every socket and holder in every state, connections included, as ``ss -tuapn`` lists them."""
    ours = {(str(s["protocol"]), _ss_address(s), int(s["local_port"]), s["remote_port"], int(s["pid"]))  # type: ignore[arg-type]
            for s in _sockets(_ours()) if s["pid"] is not None}
    theirs = {(proto, addr, port, _peer_port(peer), pid) for proto, addr, port, peer, pid in _ss("-tuapn")}
    assert ours == theirs
    assert len(ours) == len(SERVERS) + 2  # and the connection's two ends


# A listener shared by two processes: bound and listening, then forked; prints the child's pid.
_FORKED = r'''
import os, socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
child = os.fork()
if child == 0:
    time.sleep(120); os._exit(0)
print(child, flush=True)
time.sleep(120)
'''


def test_a_shared_listener_is_listed_under_every_holder_as_ss_does(host: dict[str, object]) -> None:
    parent, line = _start([sys.executable, "-c", _FORKED, "7171"])
    child = int(line)
    try:
        ours = {(s["pid"], s["fd"]) for s in _sockets(_ours("-l", "-p", "7171"))}
        theirs = {pid for _, _, port, _, pid in _ss("-tlpn") if port == 7171}
    finally:
        os.kill(child, 9)
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()
    assert theirs == {parent.pid, child}
    assert {pid for pid, _ in ours} == theirs and len(ours) == 2


_BOTH_READERS = """
import json
from leadline.local.kernel import psutil_sockets, read_snapshot
keep = lambda s: (s.protocol, s.family, s.state, s.local_address, s.local_port, s.remote_address, s.remote_port, s.pid)
print(json.dumps([sorted(map(keep, read_snapshot().sockets)),
                  sorted(map(keep, psutil_sockets(frozenset({4, 6}), frozenset({"tcp", "udp"}))))]))
"""


def test_the_psutil_fallback_lists_what_sock_diag_lists(host: dict[str, object]) -> None:
    done = _in_ns([sys.executable, "-c", _BOTH_READERS])
    assert done.returncode == 0, done.stderr
    netlink, psutil_view = json.loads(done.stdout)
    assert netlink == psutil_view
    assert len([entry for entry in netlink if entry[7] is not None]) == len(SERVERS) + 2


def test_servers_appear_with_pid_process_address_and_service(host: dict[str, object]) -> None:
    document = _ours()
    pids = host["pids"]
    assert isinstance(pids, dict)
    names = {p["pid"]: p["name"] for p in document["processes"]}  # type: ignore[attr-defined, index]
    listening = {(s["protocol"], s["local_port"]): s for s in _sockets(document) if s["state"] in ("LISTEN", "UNCONN")}
    for name, proto, addr, port, _, service, _ in SERVERS:
        entry = listening[(proto, port)]
        assert entry["pid"] == pids[name] and names[pids[name]] == name
        assert entry["local_address"] == addr and entry["family"] == (6 if ":" in addr else 4)
        assert entry["service"] == service


def test_established_connection_shows_both_ends(host: dict[str, object]) -> None:
    pids, client_port = host["pids"], host["client_port"]
    assert isinstance(pids, dict)
    connected = [s for s in _sockets(_ours("--established")) if s["state"] == "ESTAB"]
    ends = {(s["pid"], s["local_port"], s["remote_port"]) for s in connected}
    assert ends == {(pids["lclclient"], client_port, 8080), (pids["lclweb"], 8080, client_port)}
    assert all(s["service"] == "http-alt" for s in connected)
    theirs = {(port, peer, pid) for _, _, port, peer, pid in _ss("-tnp") if port in (8080, client_port)}
    assert theirs == {(client_port, "127.0.0.1:8080", pids["lclclient"]), (8080, f"127.0.0.1:{client_port}", pids["lclweb"])}


def test_filters_narrow_the_listing(host: dict[str, object]) -> None:
    only_udp4 = _sockets(_ours("-l", "-4", "-p", "U:1-65535"))
    assert {(s["protocol"], s["local_port"]) for s in only_udp4} == {("udp", 53), ("udp", 161)}
    by_name = _sockets(_ours("--process", "lclre*"))
    assert [(s["local_port"], s["state"]) for s in by_name] == [(6379, "LISTEN")]
    by_service = _sockets(_ours("-l", "-p", "http-alt,ipp"))
    assert sorted(s["local_port"] for s in by_service) == [631, 8080]


def test_who_names_the_holder_and_why_a_second_bind_fails(host: dict[str, object]) -> None:
    pids = host["pids"]
    assert isinstance(pids, dict)
    second = _in_ns([sys.executable, "-c", _BINDER, "8080"])
    assert second.stdout.strip() == "EADDRINUSE"
    done = _in_ns([LEADLINE, "local", "--who", "8080"])
    assert done.returncode == 0, done.stderr
    assert f"lclweb (pid {pids['lclweb']}, user root, running since" in done.stdout
    assert "a wildcard bind" in done.stdout and "SO_REUSEADDR off, SO_REUSEPORT off" in done.stdout
    assert "A second program binding 0.0.0.0:8080/tcp fails now with EADDRINUSE" in done.stdout
    udp = _in_ns([LEADLINE, "local", "--who", "11211/udp"]).stdout
    assert f"lclmemc (pid {pids['lclmemc']}" in udp and "bound to ::1 only" in udp
    free = _in_ns([LEADLINE, "local", "--who", "8081"]).stdout
    assert "nobody listens here" in free and "0.0.0.0:8081/tcp succeeds" in free


def test_exposure_labels_each_listener_and_cleans_up(host: dict[str, object], tmp_path: Path) -> None:
    before = {name for name in os.listdir("/run/netns") if name.startswith("llx-")}
    document = _ours("--exposure")
    assert {name for name in os.listdir("/run/netns") if name.startswith("llx-")} <= before  # its namespace is gone
    assert "llxh" not in _in_ns(["ip", "-o", "link"]).stdout  # and so is its end of the veth pair
    outside = document["exposure"]
    assert isinstance(outside, dict) and outside["address"].startswith("198.19.")
    labels = {(s["protocol"], s["local_port"]): s["exposure"] for s in _sockets(document)}
    for name, proto, _, port, _, _, label in SERVERS:
        assert labels[(proto, port)]["label"] == label, (name, labels[(proto, port)])  # type: ignore[index]
    for proto, port, verdict in RULES:
        seen = labels[(proto, port)]
        assert seen["rule_family"] == "iptables" and f"--dport {port}" in seen["rule"] and verdict in seen["rule"]  # type: ignore[index, operator]
    assert labels[("tcp", 3306)]["detail"] == "dropped (no-response)"  # type: ignore[index]
    assert labels[("tcp", 6379)]["detail"].startswith("rejected")  # type: ignore[index]


def test_json_validates_and_xml_follows_the_dtd(host: dict[str, object], tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(files("leadline").joinpath("data", "local.schema.json").read_text())
    json_path, xml_path = tmp_path / "l.json", tmp_path / "l.xml"
    done = _in_ns([LEADLINE, "local", "--exposure", "-oJ", str(json_path), "-oX", str(xml_path)], timeout=120)
    assert done.returncode == 0, done.stderr
    jsonschema.validate(json.loads(json_path.read_text()), schema)
    jsonschema.validate(_ours(), schema)
    dtd = str(files("leadline").joinpath("data", "local.dtd"))
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", dtd, str(xml_path)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    assert xml_path.read_text().count("<socket ") == len(SERVERS)


def test_diff_shows_a_firewall_change(host: dict[str, object], tmp_path: Path) -> None:
    before, after = tmp_path / "a.json", tmp_path / "b.json"
    assert _in_ns([LEADLINE, "local", "-l", "-p", "8080,3306", "--exposure", "-oJ", str(before)]).returncode == 0
    _in_ns(["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
    try:
        assert _in_ns([LEADLINE, "local", "-l", "-p", "8080,3306", "--exposure", "-oJ", str(after)]).returncode == 0
    finally:
        _in_ns(["iptables", "-D", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"])
    done = subprocess.run([LEADLINE, "local", "--diff", str(before), str(after)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[2].startswith("~ 8080/tcp on 0.0.0.0: lclweb") and "exposed (syn-ack) -> lclweb" in lines[2]
    assert "filtered (dropped (no-response)) [iptables: -A INPUT -p tcp -m tcp --dport 8080 -j DROP]" in lines[2]
    assert lines[-1] == "1 listener unchanged"


def test_without_root_owners_of_others_are_hidden_and_said_so(host: dict[str, object],
                                                            unprivileged_leadline: list[str]) -> None:
    # nobody may not read a checkout in a private directory: the fixture's copy and interpreter it can run.
    as_nobody = unprivileged_leadline[:unprivileged_leadline.index("env")]
    python = unprivileged_leadline[unprivileged_leadline.index("-m") - 1]
    own, line = _start([*as_nobody, python, "-c", _SERVER, "lclnobody", "tcp", "127.0.0.1", "7070", "echo"])
    try:
        assert line == "ready"
        done = _in_ns([*unprivileged_leadline, "local", "-l", "-oJ", "-"])
        text = _in_ns([*unprivileged_leadline, "local", "-l"]).stdout
    finally:
        own.kill()
        own.wait(timeout=10)
        if own.stdout is not None:
            own.stdout.close()
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["privileged"] is False and document["note"].startswith("not root:")
    assert text.splitlines()[1] == document["note"]
    pids = {s["local_port"]: s["pid"] for s in document["sockets"]}
    assert pids[7070] == own.pid  # our own process stays visible
    assert pids[8080] is None and pids[53] is None  # root's are not, as with ss


def test_exposure_from_a_given_namespace(host: dict[str, object]) -> None:
    outside = f"lclo-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", outside], check=True)
    try:
        subprocess.run(["ip", "link", "add", "lclo0", "netns", NS, "type", "veth", "peer", "name", "lclo1", "netns", outside],
                       check=True)
        for namespace, device, address in ((NS, "lclo0", "198.19.250.1/30"), (outside, "lclo1", "198.19.250.2/30")):
            subprocess.run(["ip", "-n", namespace, "addr", "add", address, "dev", device], check=True)
            subprocess.run(["ip", "-n", namespace, "link", "set", device, "up"], check=True)
        document = _ours("-l", "-p", "8080,3306,631,U:53", "--exposure", "--from", outside)
    finally:
        subprocess.run(["ip", "-n", NS, "link", "del", "lclo0"], check=False)
        subprocess.run(["ip", "netns", "del", outside], check=False)
    assert document["exposure"]["from"] == outside and document["exposure"]["address"] == "198.19.250.1"  # type: ignore[index]
    labels = {(s["protocol"], s["local_port"]): s["exposure"]["label"] for s in _sockets(document)}  # type: ignore[index]
    assert labels == {("tcp", 8080): "exposed", ("tcp", 3306): "filtered", ("tcp", 631): "local-only",
                      ("udp", 53): "exposed"}
