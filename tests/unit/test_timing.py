"""The timing core, driven by hand-picked times: no clock, no sleeping."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.timing import CongestionWindow, RttEstimator
from leadline.engines.procpool import split_plan, worker_count
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

    def test_many_hosts_on_few_ports_are_shared_out_by_host(self) -> None:
        assert split_plan(32768, 1, NORMAL, 2, by_hosts_allowed=True) == (2, True)
        assert split_plan(32768, 1, NORMAL, 2, by_hosts_allowed=False) == (1, False)  # IPv6: by port or not at all
        assert split_plan(1, 65535, NORMAL, 2, by_hosts_allowed=True) == (2, False)  # enough ports: by port
        assert split_plan(16384, 3, NORMAL, 8, by_hosts_allowed=True) == (3, False)
        assert split_plan(8191, 1, NORMAL, 2, by_hosts_allowed=True) == (1, False)  # too small to fork
        assert split_plan(32768, 1, dataclasses.replace(NORMAL, max_rate=1000.0), 2, by_hosts_allowed=True) == (1, False)

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


class TestRttBoard:
    """The round trip the workers of a split connect scan share."""

    def test_empty_until_posted_and_seen_across_a_fork(self) -> None:
        import os

        from leadline.engines.workers import RttBoard

        board = RttBoard()
        try:
            assert board.read() is None
            pid = os.fork()
            if pid == 0:  # the child posts, as a worker would
                board.post(0.0042)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert board.read() == pytest.approx(0.0042)
        finally:
            board.close()
