"""ARP for IPv4 over Ethernet (RFC 826): build and parse.

Invariant: only the Ethernet/IPv4 flavour (hardware 1, protocol 0x0800,
lengths 6 and 4) is parsed; anything else raises ``PacketError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import format_mac, pack_mac
from leadline.core.packet.ipv4 import format_ipv4, pack_ipv4

__all__ = ["ARPPacket", "build_arp", "parse_arp", "REQUEST", "REPLY"]

REQUEST = 1
REPLY = 2
_LAYOUT = struct.Struct("!HHBBH6s4s6s4s")  # 28 bytes


@dataclass(frozen=True, slots=True)
class ARPPacket:
    operation: int  # 1 request, 2 reply
    sender_mac: str  # who asks / answers
    sender_ip: str
    target_mac: str  # zero in a request
    target_ip: str  # the address being resolved
    hardware_type: int = 1  # Ethernet
    protocol_type: int = 0x0800  # IPv4


def build_arp(packet: ARPPacket) -> bytes:
    return _LAYOUT.pack(
        packet.hardware_type,
        packet.protocol_type,
        6,
        4,
        packet.operation,
        pack_mac(packet.sender_mac),
        pack_ipv4(packet.sender_ip),
        pack_mac(packet.target_mac),
        pack_ipv4(packet.target_ip),
    )


def parse_arp(data: bytes) -> ARPPacket:
    if len(data) < _LAYOUT.size:
        raise PacketError(f"ARP packet truncated: {len(data)} bytes")
    htype, ptype, hlen, plen, op, smac, sip, tmac, tip = _LAYOUT.unpack_from(data)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        raise PacketError(f"ARP for hardware {htype} / protocol {ptype:#06x} not supported")
    return ARPPacket(op, format_mac(smac), format_ipv4(sip), format_mac(tmac), format_ipv4(tip), htype, ptype)
