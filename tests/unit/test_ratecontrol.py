"""The rate controller driven in virtual time: user bounds, random loss, answer caps."""

from __future__ import annotations

import random

import pytest

from leadline.config import TIMING_TEMPLATES
from leadline.core.ratecontrol import RateController


def drive(controller: RateController, seconds: float, answer, rtt: float = 0.001) -> list[float]:
    """Send whenever allowed; ``answer(now)`` says whether a probe sent at ``now`` is answered."""
    now, sends, pending = 0.0, [], []
    while now < seconds:
        for _ in range(controller.allowed(now)):
            controller.on_send(now)
            sends.append(now)
            if answer(now):
                pending.append(now + rtt)
            else:
                pending.append(-(now + 0.1))  # times out 100 ms later
        pending.sort(key=abs)
        while pending and abs(pending[0]) <= now:
            due = pending.pop(0)
            if due > 0:
                controller.on_answer(now, rtt)
            else:
                controller.on_timeout(now)
        now = max(now + 1e-4, min(controller.next_send_time(now), now + 0.01))
    return sends


def rate_between(sends: list[float], start: float, end: float) -> float:
    return sum(1 for t in sends if start <= t < end) / (end - start)


def test_max_rate_is_held_within_ten_percent() -> None:
    controller = RateController(max_rate=2000)
    sends = drive(controller, 2.0, lambda now: True)
    assert rate_between(sends, 0.5, 2.0) == pytest.approx(2000, rel=0.1)


def test_min_rate_is_held_against_a_black_hole() -> None:
    controller = RateController(min_rate=300, max_rate=5000)
    sends = drive(controller, 3.0, lambda now: False)
    assert rate_between(sends, 0.5, 3.0) >= 300 * 0.9


def test_random_loss_does_not_slow_the_scan() -> None:
    rng = random.Random(7)
    controller = RateController(max_rate=20_000)
    sends = drive(controller, 2.0, lambda now: rng.random() > 0.3)
    assert controller.ceiling is None
    assert controller.rate == 20_000
    assert rate_between(sends, 1.5, 2.0) == pytest.approx(20_000, rel=0.1)
    assert any("random" in text for _, text in controller.decisions)


def test_capped_answers_bring_the_rate_near_the_cap() -> None:
    tokens = {"level": 50.0, "last": 0.0}

    def limited(now: float) -> bool:  # the target answers at most 100/s, burst 50
        tokens["level"] = min(50.0, tokens["level"] + (now - tokens["last"]) * 100)
        tokens["last"] = now
        if tokens["level"] >= 1:
            tokens["level"] -= 1
            return True
        return False

    controller = RateController()
    sends = drive(controller, 12.0, limited)
    assert controller.ceiling is not None
    assert 60 <= rate_between(sends, 6.0, 12.0) <= 160


def test_next_send_time_agrees_with_allowed() -> None:
    controller = RateController(max_rate=100)
    controller.allowed(0.0)
    controller.on_send(0.0)
    assert controller.allowed(0.0) == 0
    later = controller.next_send_time(0.0)
    assert later == pytest.approx(0.01)
    assert controller.allowed(later) == 1


def test_scan_delay_caps_the_rate() -> None:
    controller = RateController.from_timing(TIMING_TEMPLATES[2])  # -T2: 0.4 s between probes
    assert controller.rate == pytest.approx(2.5)
    assert controller.max_rate == pytest.approx(2.5)



def test_a_clean_lan_path_reaches_full_speed_within_170_ms() -> None:
    """Every answer back in 0.2 ms: the ramp from 500/s to the 100,000/s default ceiling
    is five judged bins (about 0.16 s here; doubling all the way took eight, 0.2 s), so a
    scan of a few thousand ports is not spent in slow start."""
    controller = RateController()
    drive(controller, 0.17, lambda now: True, rtt=0.0002)
    assert controller.rate == pytest.approx(100_000)
    assert controller.ceiling is None


def test_the_ramp_only_doubles_once_a_drop_was_seen() -> None:
    """Random loss from the start: experiments prove it random, and from then on the rate
    grows by doubling, so an unproven path is never overrun fourfold."""
    rng = random.Random(3)
    controller = RateController(max_rate=50_000)
    drive(controller, 2.0, lambda now: rng.random() > 0.4, rtt=0.0002)
    texts = [text for _, text in controller.decisions]
    first_drop = next(i for i, text in enumerate(texts) if "trying half" in text)
    rates = [float(text.rsplit(" ", 1)[1].rstrip("/s")) for text in texts[first_drop:]
             if text.startswith("no sign of a limit")]
    assert controller.rate == pytest.approx(50_000)
    assert rates and all(b <= 2 * a + 1e-9 for a, b in zip(rates, rates[1:]))
