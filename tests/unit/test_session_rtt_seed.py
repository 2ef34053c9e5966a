"""A port scan's first timeouts come from the RTT discovery measured, not from --initial-rtt-timeout."""

from __future__ import annotations

from leadline.config import TIMING_TEMPLATES
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.syn import SynScan
from leadline.core.ratecontrol import RateController
from leadline.core.session import ScanSession

HOST = "198.18.3.10"


def _first_timeout(seeds: dict[str, float] | None) -> float:
    timing = TIMING_TEMPLATES[3]
    session = ScanSession.for_group(SynScan(), ProbeContext("198.18.1.2", b"seed-test"), [HOST], [8080], timing,
                                    RateController.from_timing(timing), rtt_seeds=seeds)
    assert len(session.due(0.0)) == 1
    return session.time_until_next(0.0)


def test_a_dropped_port_waits_as_long_as_the_ping_suggests() -> None:
    assert _first_timeout(None) >= 0.9  # nmap's initial one second, with nothing known
    assert _first_timeout({HOST: 0.0004}) <= 0.11  # a fast ping: the floor (--min-rtt-timeout 100 ms)
    assert 0.25 < _first_timeout({HOST: 0.1}) < 0.35  # 100 ms away: srtt + 4 * rttvar
