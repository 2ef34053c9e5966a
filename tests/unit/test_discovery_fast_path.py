"""The IPv4 fast paths of the ICMP query pings give what the general paths give.

``build`` writes the IPv4 header itself and ``match`` reads a reply from
fixed offsets; both must agree byte for byte and verdict for verdict
with the dataclass builders and the full parser, and reject what the
full parser rejects.
"""

from __future__ import annotations

import random

import pytest

from leadline.core.packet import icmp
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.discovery import IcmpEchoPing, IcmpMaskPing, IcmpTimestampPing, _ip_datagram

CTX = ProbeContext("198.18.75.2", b"fast-path-secret")
MODULES = [IcmpEchoPing, IcmpTimestampPing, IcmpMaskPing]
ADDRESSES = [f"198.19.{random.Random(seed).randrange(128)}.{random.Random(seed + 1).randrange(256)}" for seed in range(40)]


def general_build(module: IcmpEchoPing, address: str, attempt: int) -> bytes:
    cookie, values = module._values(CTX, address)
    message = module._message(values.icmp_ident, cookie.icmp_sequence(values, attempt), cookie.sequence(values, attempt))
    return _ip_datagram(CTX, address, 1, icmp.build_icmp(message), values.ip_id)


def answer(probe: bytes, *, reply_type: int) -> bytes:
    """The target's reply: the query's ICMP message turned round, in a datagram back to us."""
    message = icmp.parse_icmp(probe[20:])
    reply = icmp.ICMPMessage(reply_type, 0, message.rest, message.body)
    return build_ipv4(IPv4Header(_dotted(probe[16:20]), _dotted(probe[12:16]), 1, icmp.build_icmp(reply), ttl=61, ident=7))


def _dotted(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


@pytest.mark.parametrize("kind", MODULES)
def test_the_fast_build_writes_the_general_bytes(kind: type[IcmpEchoPing]) -> None:
    module = kind()
    for address in ADDRESSES:
        for attempt in (0, 1, 5):
            assert module.build(address, 0, attempt, CTX).packet == general_build(module, address, attempt)


@pytest.mark.parametrize("kind", MODULES)
def test_the_fast_match_agrees_with_the_full_parser(kind: type[IcmpEchoPing]) -> None:
    module = kind()
    for address in ADDRESSES:
        for attempt in (0, 3):
            reply = answer(module.build(address, 0, attempt, CTX).packet, reply_type=module.reply_type)
            fast = module.match(reply, CTX)
            assert fast is not None and fast == module._match(reply, CTX)
            assert fast[0].address == address and fast[1].attempt == attempt and fast[1].ttl == 61


@pytest.mark.parametrize("kind", MODULES)
def test_the_fast_match_rejects_what_is_not_ours(kind: type[IcmpEchoPing]) -> None:
    module = kind()
    reply = bytearray(answer(module.build(ADDRESSES[0], 0, 0, CTX).packet, reply_type=module.reply_type))
    wrong_ident = bytearray(reply)
    wrong_ident[24] ^= 0x01
    wrong_sequence = bytearray(reply)
    wrong_sequence[26] ^= 0x40
    to_someone_else = bytearray(reply)
    to_someone_else[19] ^= 0x01
    fragment = bytearray(reply)
    fragment[7] = 1
    nonzero_code = bytearray(reply)
    nonzero_code[21] = 1
    for bad in (wrong_ident, wrong_sequence, to_someone_else, fragment, nonzero_code, reply[:27], reply[:-1]):
        assert module.match(bytes(bad), CTX) is None


def test_a_timestamp_reply_must_echo_the_originate_cookie() -> None:
    module = IcmpTimestampPing()
    reply = bytearray(answer(module.build(ADDRESSES[1], 0, 0, CTX).packet, reply_type=module.reply_type))
    reply[28] ^= 0xFF  # the originate timestamp
    assert module.match(bytes(reply), CTX) is None
