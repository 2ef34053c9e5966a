"""The idle scan's I/O: probes to the zombie, SYNs forged in its name, its IP IDs read back.

The decisions (is the zombie usable, what a counter step means, which ports
to forge next) are ``core.idle``'s; this module only sends and receives.
Nothing here sends the target a packet from our own address: the target
gets SYNs whose source is the zombie, and the per-destination check forges
SYN/ACKs *to the zombie* in the target's name.
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leadline.core.idle import (
    SPOOF_PROBES,
    ZOMBIE_PROBES,
    IdleSession,
    PortFound,
    ZombieCheck,
    ZombieLost,
    judge_spoof_test,
    judge_zombie,
)
from leadline.core.ipid import IpidClass
from leadline.core.packet import tcp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4, parse_ipv4
from leadline.errors import LeadlineError, UsageError

__all__ = ["IdleEngine", "Zombie", "parse_zombie"]

DEFAULT_PROBE_PORT = 80  # nmap's default zombie probe port
_SETTLE = 0.02  # after forging a round's SYNs: time for SYN/ACKs to reach the zombie and its RSTs to leave


@dataclass(frozen=True, slots=True)
class Zombie:
    """A zombie as given on the command line, and its address."""

    name: str
    address: str
    port: int


def parse_zombie(spec: str) -> Zombie:
    """``ZOMBIE[:PROBEPORT]`` resolved to an IPv4 address; UsageError in one line otherwise."""
    name, _, port_text = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
    name = name or spec
    port = DEFAULT_PROBE_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"Invalid port number given in IP ID zombie specification: {spec}")
        port = int(port_text)
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_RAW)
    except (socket.gaierror, UnicodeError) as error:
        raise UsageError(f"Could not resolve idle scan zombie host \"{name}\": {error.args[-1]}") from None
    return Zombie(name, str(infos[0][4][0]), port)


class IdleEngine:
    """One zombie, checked once, then used for every target of the scan."""

    def __init__(self, zombie: Zombie, source: str, timeout: float = 1.0, settle: float = _SETTLE) -> None:
        self.zombie = zombie
        self.source = source
        self.timeout = timeout
        self.settle = settle
        self.kind = IpidClass.UNKNOWN
        self.last_ipid = 0
        self.rtt = 0.01
        self._send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._recv = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self._sport = 40000 + random.randrange(20000)
        self._cookie = random.randrange(1 << 31)
        self.checked: ZombieCheck | None = None

    def close(self) -> None:
        self._send.close()
        self._recv.close()

    def _send_tcp(self, src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int) -> None:
        segment = tcp.build_tcp(tcp.TCPSegment(sport, dport, seq=seq, ack=ack, flags=flags, window=1024,
                                               options=(tcp.mss(1460),)), pack_ipv4(src), pack_ipv4(dst))
        packet = build_ipv4(IPv4Header(src, dst, tcp.PROTOCOL, segment, ttl=64, ident=random.randrange(1 << 16)))
        self._send.sendto(packet, (dst, 0))

    def probe(self, timeout: float | None = None) -> int | None:
        """One SYN/ACK to the zombie; the IP ID of its RST, or None when none came in time."""
        self._cookie = (self._cookie + 1) & 0xFFFFFFFF
        cookie = self._cookie
        sent = time.monotonic()
        self._send_tcp(self.source, self.zombie.address, self._sport, self.zombie.port,
                       tcp.TCPFlag.SYN | tcp.TCPFlag.ACK, random.randrange(1 << 32), cookie)
        deadline = sent + (timeout if timeout is not None else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._recv], [], [], left)[0]:
                return None
            data = self._recv.recv(65535)
            ipid = self._match(data, cookie)
            if ipid is not None:
                self.rtt = 0.8 * self.rtt + 0.2 * (time.monotonic() - sent)
                return ipid

    def _match(self, data: bytes, cookie: int) -> int | None:
        try:
            packet = parse_ipv4(data)
            if packet.src != self.zombie.address or packet.protocol != tcp.PROTOCOL:
                return None
            segment = tcp.parse_tcp(packet.payload, with_options=False)
        except (PacketError, ValueError, IndexError):
            return None
        if (segment.sport, segment.dport) != (self.zombie.port, self._sport) or not segment.flags & tcp.TCPFlag.RST:
            return None
        return packet.ident if segment.seq == cookie else None

    def check(self, first_target: str | None) -> ZombieCheck:
        """nmap's qualification: six probes classified, then forged packets must move the counter."""
        ipids = []
        for _ in range(ZOMBIE_PROBES):
            ipid = self.probe()
            if ipid is not None:
                ipids.append(ipid)
        z = self.zombie
        verdict = judge_zombie(z.name, z.address, z.port, ipids)
        if not verdict.usable:
            raise LeadlineError(verdict.message)
        self.kind, self.last_ipid = verdict.kind, ipids[-1]
        if first_target is not None:
            for _ in range(SPOOF_PROBES):
                self._send_tcp(first_target, z.address, self._sport + 1, z.port, tcp.TCPFlag.SYN | tcp.TCPFlag.ACK,
                               random.randrange(1 << 32), random.randrange(1 << 32))
            time.sleep(0.1)
            after = self.probe()
            if after is None:
                after = self.probe()
            refusal = judge_spoof_test(self.kind, self.last_ipid, after, f"{z.name} ({z.address}) port {z.port}")
            if refusal is not None:
                raise LeadlineError(refusal)
            assert after is not None
            self.last_ipid = after
        self.checked = verdict
        return verdict

    def scan(self, target: str, ports: Sequence[int], *, max_group: int = 100, min_group: int = 4,
             stop: Callable[[], bool] = lambda: False) -> list[PortFound]:
        """Every port of ``target`` decided through the zombie (``check`` first)."""
        session = IdleSession(ports, self.kind, self.last_ipid, min_group=min_group, max_group=max_group)
        found: list[PortFound] = []
        sport = 1024 + random.randrange(60000)  # + copy number: each copy is a new connection attempt
        while not stop():
            round_ = session.next_round()
            if round_ is None:
                break
            for copy in range(round_.copies):
                for port in round_.ports:
                    self._send_tcp(self.zombie.address, target, sport + copy, port, tcp.TCPFlag.SYN,
                                   int.from_bytes(os.urandom(4), "big"), 0)
            if round_.ports:
                time.sleep(max(self.settle, 4 * self.rtt))
            ipid = self.probe(timeout=min(self.timeout, max(0.1, 10 * self.rtt)))
            try:
                found.extend(session.record(round_, ipid))
            except ZombieLost as lost:
                z = self.zombie
                raise LeadlineError(f"Idle scan zombie {z.name} ({z.address}) stopped answering during the scan "
                                    f"of {target}: {lost}") from None
        if session.last_ipid is not None:
            self.last_ipid = session.last_ipid
        return found
