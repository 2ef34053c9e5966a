"""Answers a Linux-like host gives to one round of OS probes, built from byte literals' worth of fields.

Shared by the fingerprint tests and the fuzz tests: ``linux_round`` returns
the plan, the send times and the (time, datagram) list the engine would
capture.
"""

from __future__ import annotations

import random

from leadline.core.osprobes import OsPlan, OsProbe, make_plan, round_probes
from leadline.core.packet.checksum import internet_checksum
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.ipv4 import DF, IPv4Header, build_ipv4, pack_ipv4
from leadline.core.packet.tcp import TCPSegment, build_tcp, parse_options

US, HOST = "198.18.1.2", "198.18.1.10"
LINUX_OPTIONS = bytes.fromhex("020405b40402080a") + (1000).to_bytes(4, "big") + bytes.fromhex("ffffffff01030307")


def _tcp_reply(plan: OsPlan, probe_sport: int, flags: int, seq: int, ack: int, window: int, options: bytes,
               ttl: int = 64, ident: int = 0, host: str = HOST) -> bytes:
    segment = TCPSegment(plan.open_port or 0, probe_sport, seq, ack, flags, window, 0, parse_options(options))
    raw = build_tcp(segment, pack_ipv4(host), pack_ipv4(plan.source))
    return build_ipv4(IPv4Header(host, plan.source, 6, raw, ttl=ttl, ident=ident, flags=DF))


def linux_round(seed: int = 1, ttl: int = 64) -> tuple[OsPlan, dict[str, float], list[tuple[float, bytes]]]:
    rng = random.Random(seed)
    plan = make_plan(US, HOST, 22, 1, 40000, rng)
    probes = round_probes(plan, rng)
    sent = {p.name: 1_800_000_000.0 + p.at for p in probes}
    return plan, sent, linux_answers(plan, probes, sent, ttl)


def linux_answers(plan: OsPlan, probes: list[OsProbe], sent: dict[str, float], ttl: int = 64,
                  host: str = HOST) -> list[tuple[float, bytes]]:
    """What a Linux host answers to a round (T2 and T3 unanswered, as Linux does)."""
    got: list[tuple[float, bytes]] = []
    for i in range(6):
        name = f"SEQ{i + 1}"
        options = LINUX_OPTIONS[:8] + (1000 + 100 * i).to_bytes(4, "big") + LINUX_OPTIONS[12:]
        got.append((sent[name] + 0.001, _tcp_reply(plan, plan.tcp_source(name), 0x12, 1_000_000 * (i + 1) * 7919,
                                                   plan.seq_base + i + 1, 65160, options, ttl, host=host)))
    got.append((sent["ECN"] + 0.001, _tcp_reply(plan, plan.tcp_source("ECN"), 0x52, 12345, plan.seq_base + 1, 64240,
                                                bytes.fromhex("020405b40101040201030307"), ttl, host=host)))
    for name in ("T4", "T6"):
        got.append((sent[name] + 0.001, _tcp_reply(plan, plan.tcp_source(name), 0x04, plan.ack, 0, 0, b"", ttl,
                                                   host=host)))
    for name in ("T5", "T7"):
        got.append((sent[name] + 0.001, _tcp_reply(plan, plan.tcp_source(name), 0x14, 0, plan.seq_base + 1, 0, b"",
                                                   ttl, host=host)))
    for n in range(2):
        echo = build_icmp(ICMPMessage(0, 9 if n == 0 else 0, ((plan.icmp_id + n) << 16) | (295 + n),
                                      bytes(120 if n == 0 else 150)))
        got.append((sent[f"IE{n + 1}"] + 0.001, build_ipv4(IPv4Header(host, plan.source, 1, echo, ttl=ttl,
                                                                      ident=100 + n))))
    u1 = next(p for p in probes if p.name == "U1").datagram
    quoted = bytes([u1[0]]) + u1[1:8] + bytes([plan.udp_ttl]) + u1[9:]
    quoted = quoted[:10] + b"\x00\x00" + quoted[12:]
    quoted = quoted[:10] + internet_checksum(quoted[:20]).to_bytes(2, "big") + quoted[12:]
    unreach = build_icmp(ICMPMessage(3, 3, 0, quoted))
    got.append((sent["U1"] + 0.001, build_ipv4(IPv4Header(host, plan.source, 1, unreach, ttl=ttl, ident=7))))
    return got
