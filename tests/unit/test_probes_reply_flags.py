"""Which TCP replies each raw scan heeds, pinned to what nmap 7.93 did in the lab.

``nmap -sF --scanflags SYN`` (and -sA / -sW / -sM the same way) against an
open port gets a SYN/ACK back and reports ``open|filtered no-response`` (or
``filtered no-response``): only a SYN scan reads SYN replies, every other
scan reads RSTs alone and treats anything else as silence.
"""

from __future__ import annotations

import pytest

from leadline.config import ScanType
from leadline.core.packet.parse import pack_address, parse_datagram
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp
from leadline.core.probes.base import Probe, ProbeContext
from leadline.scantypes import probe_module
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.model import PortState, Reason

US, TARGET = "198.18.1.2", "198.18.1.10"
CTX = ProbeContext(US, b"per-scan secret!")
SYN, ACK, RST, FIN, PSH = TCPFlag.SYN, TCPFlag.ACK, TCPFlag.RST, TCPFlag.FIN, TCPFlag.PSH


def answer(probe: Probe, flags: int) -> bytes:
    """A reply with ``flags`` that acknowledges the probe exactly as a real stack would."""
    sent = parse_datagram(probe.packet)
    seg = sent.transport
    assert isinstance(seg, TCPSegment)
    consumed = bool(seg.flags & SYN) + bool(seg.flags & FIN)
    reply = TCPSegment(seg.dport, seg.sport, 0x1000, (seg.seq + consumed) & 0xFFFFFFFF, flags | ACK, 64240)
    raw = build_tcp(reply, pack_address(sent.dst), pack_address(sent.src))
    return build_ipv4(IPv4Header(sent.dst, sent.src, 6, raw, ttl=64))


NON_SYN_SCANS = [ScanType.FIN, ScanType.NULL, ScanType.XMAS, ScanType.MAIMON, ScanType.ACK, ScanType.WINDOW]
SILENCE = {
    ScanType.FIN: PortState.OPEN_FILTERED,
    ScanType.NULL: PortState.OPEN_FILTERED,
    ScanType.XMAS: PortState.OPEN_FILTERED,
    ScanType.MAIMON: PortState.OPEN_FILTERED,
    ScanType.ACK: PortState.FILTERED,
    ScanType.WINDOW: PortState.FILTERED,
}


@pytest.mark.parametrize("scan_type", NON_SYN_SCANS, ids=lambda t: t.value)
def test_a_syn_ack_to_a_non_syn_scan_is_ignored_like_silence(scan_type: ScanType) -> None:
    module = probe_module(scan_type, SYN)  # e.g. -sF --scanflags SYN: an open port answers SYN/ACK
    probe = module.build(TARGET, 22, 0, CTX)
    assert module.match(answer(probe, SYN), CTX) is None
    verdict = module.classify(None)
    assert (verdict.state, verdict.reason) == (SILENCE[scan_type], Reason.NO_RESPONSE)


@pytest.mark.parametrize("scan_type", NON_SYN_SCANS, ids=lambda t: t.value)
def test_the_same_scan_still_reads_a_reset(scan_type: ScanType) -> None:
    module = probe_module(scan_type, SYN)
    probe = module.build(TARGET, 23, 0, CTX)
    matched = module.match(answer(probe, RST), CTX)
    assert matched is not None
    assert module.classify(matched[1]).reason is Reason.RESET


@pytest.mark.parametrize("scan_type", [ScanType.SYN, ScanType.CUSTOM], ids=lambda t: t.value)
@pytest.mark.parametrize("flags", [0, FIN, PSH], ids=["ack", "fin-ack", "psh-ack"])
def test_a_syn_scan_ignores_replies_without_syn_or_rst(scan_type: ScanType, flags: int) -> None:
    module = probe_module(scan_type, None)
    probe = module.build(TARGET, 80, 0, CTX)
    assert module.match(answer(probe, flags), CTX) is None


@pytest.mark.parametrize("scan_type", [ScanType.SYN, ScanType.CUSTOM], ids=lambda t: t.value)
def test_a_syn_scan_reads_syn_ack_as_open(scan_type: ScanType) -> None:
    module = probe_module(scan_type, None)
    matched = module.match(answer(module.build(TARGET, 80, 0, CTX), SYN), CTX)
    assert matched is not None
    assert module.classify(matched[1]).state is PortState.OPEN


def test_a_bare_syn_back_is_open_with_nmaps_split_handshake_reason() -> None:
    module = probe_module(ScanType.SYN, None)
    probe = module.build(TARGET, 80, 0, CTX)
    sent = parse_datagram(probe.packet)
    seg = sent.transport
    assert isinstance(seg, TCPSegment)
    # A split handshake: the target answers our SYN with its own SYN, acknowledging nothing.
    raw = build_tcp(TCPSegment(seg.dport, seg.sport, 0x2000, 0, SYN, 64240), pack_address(TARGET), pack_address(US))
    matched = module.match(build_ipv4(IPv4Header(TARGET, US, 6, raw, ttl=64)), CTX)
    assert matched is not None
    verdict = module.classify(matched[1])
    assert (verdict.state, verdict.reason) == (PortState.OPEN, Reason.SPLIT_HANDSHAKE_SYN)
    syn_ack = module.classify(module.match(answer(probe, SYN), CTX)[1])  # type: ignore[index]
    assert (syn_ack.state, syn_ack.reason) == (PortState.OPEN, Reason.SYN_ACK)
