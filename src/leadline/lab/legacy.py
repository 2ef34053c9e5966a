"""A legacy device for the lab: a small TCP/IP responder of ours with one global IP ID counter.

A modern Linux kernel numbers its RSTs 0 and keeps per-destination counters
for everything else, so no lab host built from one can serve as an idle
scan's zombie.  This responder can: it runs on a packet socket in a
namespace of its own whose kernel stays silent (every IPv4 packet dropped
by the firewall, ARP ignored), and answers by itself:

* ARP requests for its address;
* ICMP echo requests with echo replies;
* TCP: a SYN to an open port gets a SYN/ACK, a SYN to a closed port (or
  anything but a RST to a closed port) a RST/ACK, and an ACK nobody
  expected (an unexpected SYN/ACK included) a RST, as RFC 793 says;
* every IP packet it sends takes the next number of one global counter
  (``--ipid incremental``; ``by-two``, ``little-endian``, ``random``,
  ``zero`` and ``per-destination`` let it stand in for other stacks; a
  running device takes a new mode from its mode file, see ``set_ipid_mode``),
  with TTL 128 and window 8192;
* optional background traffic: broadcast UDP datagrams to the discard port
  at the rate written in its control file (packets per second; 0 or no
  file: none), read again every second, so a test can turn it on and off
  on a running lab with ``set_chatter``.

It holds no connection state; ``python -m leadline.lab.legacy`` starts it.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import socket
import struct
import sys
import time
from pathlib import Path

from leadline.core.packet import icmp, tcp
from leadline.core.packet.arp import ARPPacket, build_arp, parse_arp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import (
    BROADCAST,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    EthernetFrame,
    build_ethernet,
    parse_ethernet,
)
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4, parse_ipv4
from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind

__all__ = [
    "LEGACY",
    "LEGACY_MAC",
    "LEGACY_OPEN_PORTS",
    "LegacyStack",
    "chatter_file",
    "legacy_host",
    "responder_argv",
    "set_chatter",
    "set_ipid_mode",
]

LEGACY = "198.18.1.75"
LEGACY_MAC = "02:4c:11:00:00:75"
LEGACY_OPEN_PORTS = (21, 80)
LEGACY_TTL = 128
LEGACY_WINDOW = 8192
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_CHATTER_FILE = "legacy-chatter"
_MODE_FILE = "legacy-ipid"
IPID_MODES = ("incremental", "by-two", "little-endian", "random", "zero", "per-destination")
_UDP = 17
_DISCARD_PORT = 9


def legacy_host(routes: tuple[Route, ...]) -> Host:
    """The practice lab's legacy device: the kernel of its namespace is kept mute; the responder speaks."""
    return Host(
        "legacy",
        (Interface("lan", f"{LEGACY}/24", LEGACY_MAC),),
        routes=routes,
        firewall=(Rule("INPUT", "-j DROP"), Rule("OUTPUT", "-j DROP")),
        services=(Service(ServiceKind.LEGACY_STACK, LEGACY_OPEN_PORTS[-1]),),
        sysctls=(("net.ipv4.conf.all.arp_ignore", "8"),),
        role="legacy stack (idle scan zombie)",
    )


def chatter_file(state_dir: Path) -> Path:
    return state_dir / _CHATTER_FILE


def set_chatter(state_dir: Path, per_second: float) -> None:
    """Set the legacy device's background traffic (packets a second; 0: none); it reads this within 1 s."""
    path = chatter_file(state_dir)
    path.write_text(f"{per_second:g}\n")


def set_ipid_mode(state_dir: Path, mode: str) -> None:
    """Make the running device number its packets another way (one of ``IPID_MODES``) within 1 s."""
    if mode not in IPID_MODES:
        raise ValueError(f"unknown IP ID mode {mode!r}")
    (state_dir / _MODE_FILE).write_text(mode + "\n")


def responder_argv(state_dir: Path) -> list[str]:
    """The command line that starts the practice lab's legacy device inside its namespace."""
    return [sys.executable, "-m", "leadline.lab.legacy", "--interface", "eth0", "--address", LEGACY,
            "--mac", LEGACY_MAC, "--open", ",".join(map(str, LEGACY_OPEN_PORTS)),
            "--control", str(chatter_file(state_dir))]


class LegacyStack:
    """Builds the device's answers; ``answer(frame)`` is pure but for the counter and random ISNs."""

    def __init__(self, address: str, mac: str, open_ports: set[int], ipid_mode: str = "incremental",
                 start: int | None = None) -> None:
        self.address = address
        self.mac = mac
        self.open_ports = open_ports
        self.mode = ipid_mode
        self.counter = random.randrange(1 << 16) if start is None else start
        self.sent = 0
        self.per_destination: dict[str, int] = {}

    def next_ipid(self, destination: str = "") -> int:
        if self.mode == "per-destination":
            value = (self.per_destination.get(destination, random.randrange(1 << 16)) + 1) & 0xFFFF
            self.per_destination[destination] = value
            return value
        self.counter = (self.counter + 1) & 0xFFFF
        if self.mode == "by-two":
            return (self.counter * 2) & 0xFFFF
        if self.mode == "little-endian":
            return ((self.counter & 0xFF) << 8) | (self.counter >> 8)
        if self.mode == "random":
            return random.randrange(1 << 16)
        if self.mode == "zero":
            return 0
        return self.counter

    def answer(self, data: bytes) -> bytes | None:
        """The frame to send back for one received frame, or None."""
        try:
            frame = parse_ethernet(data)
            if frame.ethertype == ETHERTYPE_ARP:
                return self._arp(frame)
            if frame.ethertype == ETHERTYPE_IPV4:
                return self._ip(frame)
        except (PacketError, ValueError, struct.error, IndexError):
            return None
        return None

    def _arp(self, frame: EthernetFrame) -> bytes | None:
        request = parse_arp(frame.payload)
        if request.operation != 1 or request.target_ip != self.address:
            return None
        reply = ARPPacket(2, self.mac, self.address, request.sender_mac, request.sender_ip)
        return build_ethernet(EthernetFrame(frame.src, self.mac, ETHERTYPE_ARP, build_arp(reply)))

    def _ip(self, frame: EthernetFrame) -> bytes | None:
        packet = parse_ipv4(frame.payload)
        if packet.dst != self.address or packet.frag_offset or packet.flags & 1:
            return None
        payload: bytes | None = None
        if packet.protocol == icmp.PROTOCOL:
            message = icmp.parse_icmp(packet.payload)
            if message.type == 8 and message.code == 0:
                payload = icmp.build_icmp(icmp.ICMPMessage(0, 0, message.rest, message.body))
        elif packet.protocol == tcp.PROTOCOL:
            payload = self._tcp(packet)
        if payload is None:
            return None
        return self.frame_to(frame.src, packet.src, packet.protocol, payload)

    def frame_to(self, mac: str, address: str, protocol: int, payload: bytes) -> bytes:
        """One IPv4 packet from the device, numbered from its counter."""
        if protocol == tcp.PROTOCOL:
            payload = _with_tcp_checksum(payload, self.address, address)
        header = IPv4Header(self.address, address, protocol, payload, ttl=LEGACY_TTL, ident=self.next_ipid(address))
        self.sent += 1
        return build_ethernet(EthernetFrame(mac, self.mac, ETHERTYPE_IPV4, build_ipv4(header)))

    def _tcp(self, packet: IPv4Header) -> bytes | None:
        segment = tcp.parse_tcp(packet.payload, with_options=False)
        flags = segment.flags
        if flags & tcp.TCPFlag.RST:
            return None
        is_open = segment.dport in self.open_ports
        length = len(segment.payload) + (1 if flags & tcp.TCPFlag.SYN else 0) + (1 if flags & tcp.TCPFlag.FIN else 0)
        if flags & tcp.TCPFlag.ACK:
            if is_open and not flags & (tcp.TCPFlag.SYN | tcp.TCPFlag.FIN) and not segment.payload:
                return None  # the last step of a handshake we began: keep quiet
            reply = tcp.TCPSegment(segment.dport, segment.sport, seq=segment.ack, flags=tcp.TCPFlag.RST, window=0)
        elif flags & tcp.TCPFlag.SYN and is_open:
            reply = tcp.TCPSegment(segment.dport, segment.sport, seq=random.randrange(1 << 32), ack=segment.seq + 1,
                                   flags=tcp.TCPFlag.SYN | tcp.TCPFlag.ACK, window=LEGACY_WINDOW,
                                   options=(tcp.mss(1460),))
        elif is_open:
            return None  # FIN, NULL or Xmas to a listening port: RFC 793 drops it
        else:
            reply = tcp.TCPSegment(segment.dport, segment.sport, seq=0, ack=segment.seq + length,
                                   flags=tcp.TCPFlag.RST | tcp.TCPFlag.ACK, window=0)
        return tcp.build_tcp(reply, b"\0\0\0\0", b"\0\0\0\0")

    def chatter(self) -> bytes:
        """One background datagram: broadcast to the discard port, answered by nobody."""
        udp = struct.pack("!HHHH", 1024 + random.randrange(1024), _DISCARD_PORT, 8 + 4, 0) + b"idle"
        broadcast = self.address.rsplit(".", 1)[0] + ".255"
        return self.frame_to(BROADCAST, broadcast, _UDP, udp)


def _with_tcp_checksum(segment: bytes, src: str, dst: str) -> bytes:
    """The segment with its checksum computed for the real addresses."""
    from leadline.core.packet.checksum import transport_checksum

    raw = bytearray(segment)
    raw[16:18] = b"\0\0"
    struct.pack_into("!H", raw, 16, transport_checksum(pack_ipv4(src), pack_ipv4(dst), tcp.PROTOCOL, raw))
    return bytes(raw)


def _read_rate(control: Path | None) -> float:
    if control is None:
        return 0.0
    try:
        return max(0.0, min(1000.0, float(control.read_text().strip() or 0)))
    except (OSError, ValueError):
        return 0.0


def _read_mode(control: Path | None, current: str) -> str:
    if control is None:
        return current
    try:
        mode = (control.parent / _MODE_FILE).read_text().strip()
    except OSError:
        return current
    return mode if mode in IPID_MODES else current


def serve(interface: str, stack: LegacyStack, control: Path | None) -> None:
    """Answer frames on ``interface`` until killed, with background traffic at the control file's rate."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    sock.bind((interface, 0))
    rate, next_read, next_chatter = 0.0, 0.0, float("inf")
    while True:
        now = time.monotonic()
        if now >= next_read:
            rate, next_read = _read_rate(control), now + 1.0
            stack.mode = _read_mode(control, stack.mode)
            next_chatter = min(next_chatter, now + 1.0 / rate) if rate else float("inf")
        if now >= next_chatter:
            sock.send(stack.chatter())
            next_chatter = now + random.expovariate(rate) if rate else float("inf")
        ready, _, _ = select.select([sock], [], [], max(0.0, min(next_read, next_chatter) - now))
        if not ready:
            continue
        data, where = sock.recvfrom(65535)
        if where[2] == _PACKET_OUTGOING:
            continue
        reply = stack.answer(data)
        if reply is not None:
            sock.send(reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadline.lab.legacy", description="the lab's legacy TCP/IP responder")
    parser.add_argument("--interface", default="eth0")
    parser.add_argument("--address", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--open", default="", help="open TCP ports, comma-separated")
    parser.add_argument("--ipid", default="incremental",
                        choices=IPID_MODES)
    parser.add_argument("--control", default=None, help="file holding the background packet rate")
    args = parser.parse_args(argv)
    ports = {int(p) for p in args.open.split(",") if p}
    stack = LegacyStack(args.address, args.mac, ports, args.ipid)
    print(f"legacy responder pid {os.getpid()} on {args.interface} as {args.address}", flush=True)
    serve(args.interface, stack, Path(args.control) if args.control else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
