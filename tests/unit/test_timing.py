"""The timing core, driven by hand-picked times: no clock, no sleeping."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.timing import CongestionWindow, RateGovernor, RttEstimator, TokenBucket
from leadline.engines.procpool import worker_count
from leadline.engines.workers import share_timing

NORMAL = TIMING_TEMPLATES[3]  # initial 1.0, min 0.1, max 10.0


def timing(initial: float = 1.0, minimum: float = 0.1, maximum: float = 10.0) -> Timing:
    return Timing(initial, minimum, maximum, 10, 0.0, 1.0, 1, None, None)


class TestRttEstimator:
    def test_initial_timeout_before_any_sample(self) -> None:
        assert RttEstimator(NORMAL).timeout() == 1.0
        assert RttEstimator(TIMING_TEMPLATES[4]).timeout() == 0.5

    def test_first_sample_sets_srtt_and_half_variance(self) -> None:
        est = RttEstimator(timing(minimum=0.0))
        est.update(0.2)
        assert est.srtt == pytest.approx(0.2)
        assert est.rttvar == pytest.approx(0.1)
        assert est.timeout() == pytest.approx(0.2 + 4 * 0.1)

    def test_second_sample_follows_rfc6298_gains(self) -> None:
        est = RttEstimator(timing(minimum=0.0))
        est.update(0.2)
        est.update(0.4)
        # rttvar = 3/4 * 0.1 + 1/4 * |0.2 - 0.4|; srtt = 7/8 * 0.2 + 1/8 * 0.4
        assert est.rttvar == pytest.approx(0.125)
        assert est.srtt == pytest.approx(0.225)
        assert est.timeout() == pytest.approx(0.225 + 0.5)

    def test_converges_to_a_steady_rtt(self) -> None:
        est = RttEstimator(timing(minimum=0.0))
        for _ in range(200):
            est.update(0.05)
        assert est.srtt == pytest.approx(0.05, rel=1e-6)
        assert est.rttvar == pytest.approx(0.0, abs=1e-6)
        assert est.timeout() == pytest.approx(0.05, rel=1e-3)

    def test_clamped_below_by_min_rtt_timeout(self) -> None:
        est = RttEstimator(timing(minimum=0.1))
        for _ in range(50):
            est.update(0.0002)
        assert est.timeout() == 0.1

    def test_clamped_above_by_max_rtt_timeout(self) -> None:
        est = RttEstimator(timing(maximum=1.25))
        est.update(3.0)
        assert est.timeout() == 1.25

    def test_initial_timeout_is_clamped_too(self) -> None:
        assert RttEstimator(timing(initial=30.0, maximum=2.0)).timeout() == 2.0

    def test_negative_sample_counts_as_zero(self) -> None:
        est = RttEstimator(timing(minimum=0.0))
        est.update(-1.0)
        assert est.srtt == 0.0

    @given(st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=50))
    def test_timeout_always_within_bounds(self, samples: list[float]) -> None:
        est = RttEstimator(timing(minimum=0.1, maximum=10.0))
        for sample in samples:
            est.update(sample)
            assert 0.1 <= est.timeout() <= 10.0


class TestTokenBucket:
    def test_unlimited_always_allows(self) -> None:
        bucket = TokenBucket(None)
        assert all(bucket.take(0.0) for _ in range(10_000))
        assert bucket.wait_time(0.0) == 0.0

    def test_rate_is_respected_over_time(self) -> None:
        bucket = TokenBucket(100.0, burst=1.0)
        sent = 0
        for tick in range(10_001):  # 10 s in 1 ms steps
            if bucket.take(tick / 1000):
                sent += 1
        assert 1000 <= sent <= 1002

    def test_burst_limits_what_accumulates_while_idle(self) -> None:
        bucket = TokenBucket(10.0, burst=5.0)
        bucket.take(0.0)
        taken = sum(bucket.take(100.0) for _ in range(20))
        assert taken == 5

    def test_wait_time_says_when_the_next_token_comes(self) -> None:
        bucket = TokenBucket(4.0, burst=1.0)
        assert bucket.take(0.0)
        assert not bucket.take(0.0)
        assert bucket.wait_time(0.0) == pytest.approx(0.25)
        assert bucket.wait_time(0.2) == pytest.approx(0.05)
        assert bucket.take(0.25)

    def test_time_going_backwards_creates_no_tokens(self) -> None:
        bucket = TokenBucket(1.0, burst=1.0)
        assert bucket.take(10.0)
        assert not bucket.take(5.0)
        assert not bucket.take(10.5)
        assert bucket.take(11.0)

    def test_non_positive_rate_rejected(self) -> None:
        with pytest.raises(ValueError, match="rate"):
            TokenBucket(0.0)


class TestRateGovernor:
    def test_no_limits(self) -> None:
        gov = RateGovernor(None, None)
        assert gov.may_send(0.0) == math.inf
        assert gov.must_send(0.0) == 0
        assert gov.next_event(0.0) is None

    def test_min_rate_accumulates_a_debt(self) -> None:
        gov = RateGovernor(100.0, None)
        assert gov.must_send(0.0) == 1  # the first probe is always due
        gov.record_sent(0.0)
        assert gov.must_send(0.0) == 0
        assert gov.must_send(0.5) == 50
        gov.record_sent(0.5, 50)
        assert gov.must_send(0.5) == 0
        assert gov.next_event(0.5) == pytest.approx(0.01)

    def test_max_rate_caps_what_may_go(self) -> None:
        gov = RateGovernor(None, 1000.0)  # burst: 10 probes
        assert gov.may_send(0.0) == 10
        gov.record_sent(0.0, 10)
        assert gov.may_send(0.0) == 0
        assert gov.next_event(0.0) == pytest.approx(0.001)
        assert gov.may_send(0.005) == 5

    def test_min_rate_above_max_rate_is_capped(self) -> None:
        gov = RateGovernor(500.0, 100.0)
        gov.record_sent(0.0)
        assert gov.must_send(1.0) == 100

    def test_sustained_max_rate(self) -> None:
        gov = RateGovernor(None, 250.0)
        sent = 0
        for tick in range(2001):  # 2 s in 1 ms steps
            now = tick / 1000
            allowed = int(gov.may_send(now))
            if allowed:
                gov.record_sent(now, allowed)
                sent += allowed
        assert 500 <= sent <= 505


class TestCongestionWindow:
    def test_starts_small_and_within_bounds(self) -> None:
        assert CongestionWindow(1, 1000, initial=10).size == 10
        assert CongestionWindow(20, 1000, initial=10).size == 20
        assert CongestionWindow(1, 4, initial=10).size == 4

    def test_slow_start_grows_by_one_per_answer(self) -> None:
        win = CongestionWindow(1, 1000, initial=10)
        for _ in range(10):
            win.on_answer()
        assert win.size == 20

    def test_drop_halves_then_growth_is_linear(self) -> None:
        win = CongestionWindow(1, 1000, initial=64)
        assert win.on_drop(probe_sent_at=1.0, now=2.0)
        assert win.size == 32
        for _ in range(33):  # about one window's worth of answers
            win.on_answer()
        assert win.size == 33

    def test_one_reduction_per_flight(self) -> None:
        win = CongestionWindow(1, 1000, initial=64)
        assert win.on_drop(probe_sent_at=1.0, now=2.0)
        # Probes sent before the reduction belong to the same overload.
        assert not win.on_drop(probe_sent_at=1.5, now=2.1)
        assert win.size == 32
        assert win.on_drop(probe_sent_at=2.5, now=3.0)
        assert win.size == 16

    def test_never_below_minimum_nor_above_maximum(self) -> None:
        win = CongestionWindow(4, 50, initial=10)
        for t in range(20):
            win.on_drop(probe_sent_at=float(t), now=t + 0.5)
        assert win.size == 4
        for _ in range(10_000):
            win.on_answer()
        assert win.size == 50

    def test_room_and_ceiling_change(self) -> None:
        win = CongestionWindow(1, 1000, initial=100)
        assert win.room(in_flight=30) == 70
        assert win.room(in_flight=150) == 0
        win.set_maximum(40)  # e.g. fewer descriptors than hoped
        assert win.size == 40
        assert win.room(in_flight=10) == 30


class TestWorkerShares:
    """How a connect scan is divided among worker processes, and its limits with it."""

    def test_small_scans_stay_in_one_process(self) -> None:
        assert worker_count(1, 1000, NORMAL, cores=8) == 1
        assert worker_count(1, 65535, NORMAL, cores=1) == 1

    def test_large_scans_use_every_core_up_to_their_size(self) -> None:
        assert worker_count(1, 65535, NORMAL, cores=2) == 2
        assert worker_count(1, 20000, NORMAL, cores=8) == 2
        assert worker_count(256, 1000, NORMAL, cores=64) == 8
        # Never more workers than ports: the shares are slices of the port list.
        assert worker_count(100000, 3, NORMAL, cores=8) == 3

    def test_paced_scans_stay_in_one_process(self) -> None:
        assert worker_count(1, 65535, dataclasses.replace(NORMAL, scan_delay=0.01), cores=4) == 1
        assert worker_count(1, 65535, dataclasses.replace(NORMAL, max_rate=1000.0), cores=4) == 1
        assert worker_count(1, 65535, dataclasses.replace(NORMAL, max_parallelism=1), cores=4) == 1
        assert worker_count(1, 65535, dataclasses.replace(NORMAL, max_rate=100000.0), cores=4) == 4

    def test_limits_are_divided_so_their_sum_holds(self) -> None:
        limited = dataclasses.replace(NORMAL, min_rate=300.0, max_rate=90000.0, min_parallelism=10, max_parallelism=100)
        share = share_timing(limited, 3)
        assert share.max_rate == pytest.approx(30000.0)
        assert share.min_rate == pytest.approx(100.0)
        assert (share.min_parallelism, share.max_parallelism) == (3, 34)
        assert share.initial_rtt_timeout == NORMAL.initial_rtt_timeout
        assert share.max_retries == NORMAL.max_retries

    def test_unlimited_stays_unlimited_and_the_default_window_is_shared(self) -> None:
        share = share_timing(NORMAL, 2)
        assert share.max_rate is None and share.min_rate is None
        assert share.max_parallelism is not None and 1 <= share.max_parallelism <= 4096
        assert share.min_parallelism == 1
