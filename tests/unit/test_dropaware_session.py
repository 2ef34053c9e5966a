"""The scan session under receive drops: the scanner's own kernel throwing replies away.

Over the fake network, replies arriving inside a window are dropped and
counted, as a packet socket's overflow is counted by PACKET_STATISTICS;
the loop reports the count to ``ScanSession.on_receive_drops``.  The
attempts outstanding then are re-sent without being spent, and their
silence counts neither as 'filtered' nor as loss.  Each test also runs
the same network with the report withheld, to show what the drops would
otherwise have cost.
"""

from __future__ import annotations

from dataclasses import replace

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.inflight import MAX_EXCUSED
from leadline.core.probes.base import ProbeContext
from leadline.core.ratecontrol import RateController
from leadline.core.session import Event, PortDecided, ScanSession
from leadline.engines.fake import CLOSED, DROP, OPEN, Answer, FakeHost, FakeNetwork, PortBehaviour, run_fake_scan
from leadline.model import PortState
from tests.unit.rawprobe_fixture import FixtureSynScan

TARGET = "198.18.1.10"
CTX = ProbeContext("198.18.1.2", b"0123456789abcdef")
T3 = TIMING_TEMPLATES[3]
HOST = FakeHost(ports={22: OPEN, 80: OPEN, 443: DROP, 110: PortBehaviour(Answer.ICMP, 1)}, default=CLOSED)
PORTS = list(range(1, 2001))
BURST = ((0.100, 0.200),)  # seconds of virtual time in which every arriving reply is dropped


def scan(timing: Timing, drops: tuple[tuple[float, float], ...], report: bool) -> tuple[list[PortDecided], ScanSession, FakeNetwork]:
    net = FakeNetwork({TARGET: HOST}, seed=5, receive_drops=drops)
    session = ScanSession.for_group(FixtureSynScan(), CTX, [TARGET], PORTS, timing, RateController.from_timing(timing))
    events: list[Event] = []
    run_fake_scan(session, net, on_event=events.append, report_drops=report, time_limit=3600)
    assert session.finished
    return [e for e in events if isinstance(e, PortDecided)], session, net


def expected(port: int) -> PortState:
    if port in (22, 80):
        return PortState.OPEN
    if port in (443, 110):
        return PortState.FILTERED
    return PortState.CLOSED


def test_with_one_attempt_allowed_a_drop_burst_still_costs_no_port_its_state() -> None:
    single = replace(T3, max_retries=0)
    decided, session, net = scan(single, BURST, report=True)
    assert net.dropped_on_receive >= 100  # the burst really took replies
    assert session.receive_drops == net.dropped_on_receive
    assert {d.port: d.verdict.state for d in decided} == {port: expected(port) for port in PORTS}
    # re-sent on the same attempt: no port spent more than the one attempt it was allowed
    assert max(d.attempts for d in decided) == 1
    unaware, _, _ = scan(single, BURST, report=False)
    wrongly_filtered = [d.port for d in unaware if d.verdict.state is not expected(d.port)]
    assert len(wrongly_filtered) >= 100  # what the burst costs when nobody reads the drop counters


def test_silence_during_drops_is_not_counted_as_loss() -> None:
    decided, session, _ = scan(T3, BURST, report=True)
    assert {d.port: d.verdict.state for d in decided} == {port: expected(port) for port in PORTS}
    # only the one truly silent port (443; 110 answers with ICMP) timed out on its first attempt
    assert session.attempts.first_silent == 1
    closed_attempts = [d.attempts for d in decided if d.verdict.state is PortState.CLOSED]
    assert set(closed_attempts) == {1}
    _, unaware, _ = scan(T3, BURST, report=False)
    assert unaware.attempts.first_silent >= 100


def test_a_reader_that_drops_without_end_still_finishes() -> None:
    decided, session, _ = scan(replace(T3, max_retries=1), ((0.0, 1e9),), report=True)
    assert len(decided) == len(PORTS)
    assert all(d.verdict.state is PortState.FILTERED for d in decided)
    # each port was excused at most MAX_EXCUSED times on top of its two attempts
    assert session.sent <= len(PORTS) * (2 + MAX_EXCUSED)
    assert session.sent > len(PORTS) * 2
