"""Ethernet II frames (IEEE 802.3 with an EtherType): build and parse.

Invariant: MAC addresses are lower-case colon-separated strings at the
API and 6 bytes on the wire; ``PacketError`` names a bad one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from leadline.core.packet.checksum import PacketError

__all__ = ["EthernetFrame", "build_ethernet", "parse_ethernet", "format_mac", "pack_mac", "BROADCAST"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    dst: str  # destination MAC
    src: str  # source MAC
    ethertype: int  # 0x0800 IPv4, 0x0806 ARP, 0x86dd IPv6
    payload: bytes = b""  # the carried packet (no padding removal: lengths live inside)


def pack_mac(mac: str) -> bytes:
    parts = mac.replace("-", ":").split(":")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise PacketError(f"not a MAC address: {mac!r}") from None
    if len(parts) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise PacketError(f"not a MAC address: {mac!r}")
    return raw


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def build_ethernet(frame: EthernetFrame) -> bytes:
    return pack_mac(frame.dst) + pack_mac(frame.src) + struct.pack("!H", frame.ethertype) + frame.payload


def parse_ethernet(data: bytes) -> EthernetFrame:
    """Parse a frame; one 802.1Q tag is skipped so tagged frames still yield their payload type."""
    if len(data) < 14:
        raise PacketError(f"Ethernet frame truncated: {len(data)} bytes")
    ethertype = struct.unpack_from("!H", data, 12)[0]
    start = 14
    if ethertype == ETHERTYPE_VLAN:
        if len(data) < 18:
            raise PacketError("802.1Q tag truncated")
        ethertype = struct.unpack_from("!H", data, 16)[0]
        start = 18
    return EthernetFrame(format_mac(data[0:6]), format_mac(data[6:12]), ethertype, bytes(data[start:]))
