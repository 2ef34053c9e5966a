"""The shared rules every format relies on: number spelling, port ranges, folding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline.model import PortResult, PortState, Reason
from leadline.output.formatting import (
    reason_text,
    sort_ports,
    compress_ports,
    counted,
    ctime_string,
    done_summary,
    duration,
    fold_ports,
    not_shown_line,
    sig_digits,
)
from tests.unit.test_output_samples import lab_ports, stats, utc

__all__ = ["utc"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.00018, "0.00018"),
        (0.000034, "0.000034"),
        (0.000009, "0.0000090"),
        (0.055, "0.055"),
        (0.16, "0.16"),
        (1.234, "1.2"),
        (12.3, "12"),
        (0.0, "0"),
    ],
)
def test_latency_has_two_significant_digits_like_nmap(seconds: float, text: str) -> None:
    assert sig_digits(seconds) == text


@pytest.mark.parametrize(
    ("ports", "text"),
    [([], ""), ([5], "5"), ([3, 1, 2, 5], "1-3,5"), ([1, 2, 4, 5, 7], "1-2,4-5,7"), ([80, 80, 81], "80-81")],
)
def test_compress_ports(ports: list[int], text: str) -> None:
    assert compress_ports(ports) == text


@given(st.sets(st.integers(min_value=0, max_value=65535), max_size=200))
def test_compressed_ports_expand_back(ports: set[int]) -> None:
    expanded: set[int] = set()
    for piece in filter(None, compress_ports(ports).split(",")):
        low, _, high = piece.partition("-")
        expanded.update(range(int(low), int(high or low) + 1))
    assert expanded == ports


def test_counted_and_done_summary() -> None:
    assert counted(1, "IP address", "IP addresses") == "1 IP address"
    assert counted(0, "host") == "0 hosts"
    assert done_summary(stats(up=2, down=1, elapsed=27.255)) == "3 IP addresses (2 hosts up) scanned in 27.25 seconds"
    assert done_summary(stats(up=1)) == "1 IP address (1 host up) scanned in 15.46 seconds"


def test_duration_and_dates(utc: None) -> None:
    assert duration(3723.4) == "1:02:03"
    assert duration(-1) == "0:00:00"
    assert ctime_string(1795323946) == "Sun Nov 22 05:05:46 2026"
    assert ctime_string(1793595946) == "Mon Nov  2 05:05:46 2026"  # ctime pads the day with a space


def closed(count: int, start: int = 1000) -> list[PortResult]:
    return [PortResult(n, "tcp", PortState.CLOSED, Reason.RESET) for n in range(start, start + count)]


def test_a_state_folds_above_25_ports() -> None:
    assert fold_ports(closed(25)).folded == ()
    folding = fold_ports(closed(26))
    assert folding.shown == () and folding.folded_count == 26 and folding.total == 26


def test_verbosity_and_debugging_raise_the_limit() -> None:
    assert fold_ports(closed(50), verbosity=2).folded == ()
    assert fold_ports(closed(51), verbosity=2).folded_count == 51
    assert fold_ports(closed(75), debugging=1).folded == ()
    assert fold_ports(closed(76), debugging=1).folded_count == 76
    assert fold_ports(closed(5000), debugging=3).folded == ()


def test_open_ports_are_never_folded() -> None:
    ports = [PortResult(n, "tcp", PortState.OPEN, Reason.SYN_ACK) for n in range(1, 101)]
    assert len(fold_ports(ports).shown) == 100


def test_open_only_keeps_possibly_open_states() -> None:
    ports = [
        PortResult(1, "tcp", PortState.CLOSED, Reason.RESET),
        PortResult(2, "tcp", PortState.UNFILTERED, Reason.RESET),
        PortResult(3, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE),
        PortResult(4, "tcp", PortState.CLOSED_FILTERED, Reason.NO_RESPONSE),
        PortResult(5, "tcp", PortState.FILTERED, Reason.NO_RESPONSE),
    ]
    folding = fold_ports(ports, open_only=True)
    assert [(p.port, p.protocol) for p in folding.shown] == [(2, "tcp"), (3, "udp")]
    assert {g.state for g in folding.folded} == {PortState.CLOSED, PortState.CLOSED_FILTERED, PortState.FILTERED}


def test_not_shown_lists_groups_largest_first_across_protocols() -> None:
    # nmap -sS -sU -p T:1-30,80,U:1-30 198.18.201.2
    udp = [PortResult(n, "udp", PortState.CLOSED, Reason.PORT_UNREACH) for n in range(1, 31)]
    tcp = [p for p in closed(30, 1) if p.port != 22] + [PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK)]
    folding = fold_ports(tcp + udp)
    assert not_shown_line(folding) == "Not shown: 30 closed udp ports (port-unreach), 29 closed tcp ports (reset)"
    assert [p.port for p in folding.shown] == [22]
    assert folding.folded_states()[0][:2] == (PortState.CLOSED, 59)


def test_not_shown_speaks_of_one_port_in_the_singular() -> None:
    folding = fold_ports(lab_ports(), open_only=True)
    assert not_shown_line(folding) == "Not shown: 97 closed tcp ports (conn-refused), 1 filtered tcp port (no-response)"


def test_sort_ports_lists_tcp_before_udp_each_by_number() -> None:
    def port(number: int, protocol: str) -> PortResult:
        return PortResult(number, protocol, PortState.OPEN, Reason.SYN_ACK)

    mixed = [port(53, "udp"), port(443, "tcp"), port(22, "tcp"), port(7, "udp"), port(1, "sctp")]
    assert [(p.protocol, p.port) for p in sort_ports(mixed)] == [("tcp", 22), ("tcp", 443), ("udp", 7), ("udp", 53), ("sctp", 1)]
    assert [p.port for p in sort_ports([port(9, "tcp"), port(3, "tcp")])] == [3, 9]


def test_reason_text_leaves_out_a_ttl_the_answer_did_not_have() -> None:
    assert reason_text(Reason.SYN_ACK, 64) == "syn-ack ttl 64"
    assert reason_text(Reason.ARP_RESPONSE, 0) == "arp-response"  # nmap: "received arp-response"
    assert reason_text(Reason.CONN_REFUSED, None) == "conn-refused"
