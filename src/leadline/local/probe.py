"""The outside view for ``--exposure``: a probe namespace joined to this one by a veth pair, and the scans run from it.

Safety is structural: every probe goes to an address that
:func:`check_target` accepts — inside 198.18.0.0/15 and one of the
addresses the caller allows (by default only this end of the veth pair
that :class:`ProbeLink` made) — and is sent from inside a namespace whose
only route is that link.  The namespace and both veth ends are removed
on the way out, also after an error or Ctrl-C.

TCP is scanned by leadline itself (``-sS`` run with ``ip netns exec``).
UDP has no scan in leadline yet, so each port gets one datagram: a reply
means it was reached; an ICMP error means a firewall rejected it (the
port is known to be listening).  Silence is settled by this namespace's
count of packets that passed the firewall to a transport protocol
(``Ip: InDelivers``; ``Udp: InDatagrams`` counts only datagrams an
application has read): it must rise more during the probe's window than
during an equal quiet window after it.  Exact in a quiet namespace; on a
busy host other traffic can make a dropped port look delivered.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from leadline.core.ports import compact
from leadline.errors import LeadlineError, PrivilegeError

__all__ = ["LAB_RANGE", "MAX_SILENT_UDP", "ExposureError", "ProbeLink", "check_target", "probe_link", "probe_udp", "scan_tcp"]

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
_LINKS = ipaddress.IPv4Network("198.19.252.0/22")  # the /30s probe links are cut from
_TIMEOUT = 120.0
MAX_SILENT_UDP = 256  # each silent UDP port costs a wait of its own


class ExposureError(LeadlineError):
    """The outside view could not be set up or taken."""


@dataclass(frozen=True)
class ProbeLink:
    """The namespace and addresses of one probe link."""

    namespace: str  # where the probes are sent from
    host_address: str  # this namespace's end: the only address scanned
    probe_address: str


def check_target(address: str, allowed: Iterable[str]) -> str:
    """The address, if probing it is allowed; otherwise refuse (this is the safety net)."""
    parsed = ipaddress.ip_address(address)
    if parsed not in LAB_RANGE or address not in set(allowed):
        raise ExposureError(f"refusing to probe {address}: only addresses of the probe link in {LAB_RANGE} are scanned")
    return address


def _ip(*argv: str) -> str:
    try:
        done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise ExposureError("'ip' (iproute2) is not installed") from None
    if done.returncode != 0:
        raise ExposureError(f"ip {' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _free_subnet(tag: int) -> ipaddress.IPv4Network:
    """A /30 for the link that no address of this namespace already sits in."""
    used = [ipaddress.IPv4Interface(word) for line in _ip("-4", "-o", "addr", "show").splitlines()
            for word in line.split()[3:4]]
    subnets = list(_LINKS.subnets(new_prefix=30))
    for step in range(len(subnets)):
        candidate = subnets[(tag + step) % len(subnets)]
        if not any(iface.network.overlaps(candidate) for iface in used):
            return candidate
    raise ExposureError(f"no free /30 left in {_LINKS} for the probe link")


@contextmanager
def probe_link() -> Iterator[ProbeLink]:
    """A fresh namespace joined to this one by a veth pair; removed on exit."""
    if os.geteuid() != 0:
        raise PrivilegeError("--exposure needs root: it creates a network namespace to scan from")
    tag = os.getpid()
    namespace, host_end, probe_end = f"llx-{tag}", f"llxh{tag}", f"llxp{tag}"
    subnet = _free_subnet(tag)
    host_address, probe_address = str(subnet[1]), str(subnet[2])
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", probe_end, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{probe_address}/30", "dev", probe_end)
        _ip("-n", namespace, "link", "set", probe_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield ProbeLink(namespace, host_address, probe_address)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=30, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)


def _in(namespace: str, argv: list[str]) -> str:
    try:
        done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ExposureError(f"the probe from {namespace} did not finish within {_TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise ExposureError(f"the probe from {namespace} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout


def scan_tcp(namespace: str, address: str, ports: Iterable[int]) -> dict[int, tuple[str, str]]:
    """port -> (state, reason) from a leadline SYN scan of the address, run inside the namespace."""
    wanted = sorted(set(ports))
    if not wanted:
        return {}
    argv = [sys.executable, "-m", "leadline", "-sS", "-Pn", "-n", "--reason", "--max-retries", "1",
            "-p", compact(wanted), "-oJ", "-", address]
    report = json.loads(_in(namespace, argv))
    found: dict[int, tuple[str, str]] = {}
    for host in report.get("hosts", []):
        for port in host.get("ports", []):
            if port["protocol"] == "tcp":
                found[int(port["port"])] = (port["state"], port["reason"])
    return found


_UDP_SCRIPT = r'''
import errno, json, socket, sys, time
address, ports, watched = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
def delivered():
    rows = [line.split() for line in open(watched) if line.startswith("Ip:")]
    return int(rows[1][rows[0].index("InDelivers")])
found = {}
for port in ports:
    before = delivered()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    s.connect((address, port))
    s.send(b"leadline local: exposure probe\n")
    try:
        s.recv(4096); outcome = "reply"
    except socket.timeout:
        probed = delivered() - before
        quiet = delivered(); time.sleep(0.3); noise = delivered() - quiet
        outcome = "delivered" if probed > noise else "dropped"
    except OSError as e:
        outcome = errno.errorcode.get(e.errno, str(e.errno))
    s.close()
    found[port] = outcome
print(json.dumps(found))
'''


def probe_udp(namespace: str, address: str, ports: Iterable[int]) -> dict[int, str]:
    """port -> "reply" | "delivered" | "dropped" | an errno name (an ICMP error), one port at a time."""
    wanted = sorted(set(ports))[:MAX_SILENT_UDP]
    if not wanted:
        return {}
    watched = f"/proc/{os.getpid()}/net/snmp"  # this namespace's counters, read from the probe namespace
    found = json.loads(_in(namespace, [sys.executable, "-c", _UDP_SCRIPT, address, json.dumps(wanted), watched]))
    return {int(port): outcome for port, outcome in found.items()}
