"""How fast to send: pacing that tells random loss from rate limiting.

Why not nmap's way.  nmap reads every unanswered probe as congestion
and shrinks its window; on a path that drops 30% of packets at random
it keeps shrinking, and a 2000-port scan that takes a fraction of a
second on a clean path takes tens of minutes.  Random loss does not go
away when you slow down, so slowing down buys nothing: retransmission
is the cure.  Rate limiting and congestion do go away when you slow
down, so for them slowing down is the cure.  This controller measures
which of the two it faces before it reacts.

The signal.  Sends are grouped into *bins*: short stretches of time
sent at one pacing rate (about 32 probes, at least 10 ms).  An answer
reports its RTT, so it is credited to the bin its probe was sent in
(``now - rtt``); a bin is judged once it is older than a few RTTs, when
every answer it will get has arrived.  For each bin we know the send
rate R, the answered fraction f and the answer rate a = f * R.

  * random loss p (or filtered ports, which never answer): f = f0 * (1 - p)
    whatever R is, so a = f * R grows with R;
  * a target that answers at most L per second (Linux/BSD limits on RSTs
    and ICMP errors), or a bottleneck of capacity L: once R > L / f0,
    a stays at L and f = L / R falls as R rises.

The experiment.  While bins keep the answered fraction they had before
(within 20%, and the drop statistically significant), the rate grows:
doubling per bin until the first limit is found (fourfold from 2000/s
until the first drop: a clean LAN path reaches 100,000/s from 500/s in
five steps, about 0.16 s, where doubling took eight and 0.2 s), 5% per
bin after it, and only while the pacer, not the supply of probes, was
the bottleneck.
When a bin's fraction drops, the next bin is sent at half the rate and
the two are compared with a two-proportion z-test:

  * the fraction rose by more than 25% (z > 2): the answers are capped.
    The ceiling is estimated as a_high / f_low (the answer rate the
    target sustained, divided by the fraction an unhurried scan gets)
    and the rate is set there.  If that estimate is no better than the
    halved rate, the halved rate is itself over the cap and the
    experiment repeats one step lower;
  * the fraction did not move: the loss is random.  The old rate is
    restored, the lower fraction becomes the new normal, and lost
    probes are left to retransmission.

Calling loss random when it is a cap is the expensive mistake: the low
fraction becomes "normal", the rate keeps growing and ports run out of
attempts.  It happens when both rates of an experiment are over the cap
(a target's burst allowance lets the rate double far past it before the
first drop is seen) or when too few answers came back to compare.  So
when halving hints at a cap without proving it, or the two sides hold
too few answers to say anything although earlier bins were answered
normally, the experiment steps down once more
(the low side becomes the high side), at most six times, and only then
accepts random loss and restores the rate it started from.  Likewise a
ceiling estimate no better than the low rate means the low rate was
capped too (its answer rate equalled the high side's), so the
experiment steps down instead of settling there.

A scan on a lossy path therefore pays one half-rate bin and keeps its
speed; a scan against a rate-limited target settles near the target's
answer rate instead of flooding it with probes that will be ignored.

User bounds win: the rate never leaves [--min-rate, --max-rate]
(``--scan-delay`` d caps it at 1/d), and sends are paced by a token
bucket holding at most 5 ms of tokens, so the rate an observer measures
over any tenth of a second stays within 10% of the target.

Time is a parameter of every method; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from leadline.config import Timing

__all__ = ["RateController", "DEFAULT_INITIAL_RATE", "DEFAULT_MAX_RATE"]

DEFAULT_INITIAL_RATE = 500.0  # probes/s before anything is measured
DEFAULT_MAX_RATE = 100_000.0  # probes/s when the user set no --max-rate
_BIN_PROBES = 32  # aim for this many sends per bin
_BIN_MIN_TIME = 0.010
_BIN_MAX_TIME = 0.5
_MIN_SAMPLES = 12  # fewer sends than this are never judged
_MIN_ANSWERS = 24  # judge once this many answers are in (enough to compare fractions) ...
_MAX_SAMPLES = 256  # ... or this many sends (a fraction near 0 is then well known) ...
_MAX_TALLY_TIME = 2.0  # ... or this many seconds of sending
_DROP_TRIGGER = 0.8  # a fraction below 80% of the usual one starts an experiment
_LIMIT_RATIO = 1.15  # halving the rate must raise the fraction by 15% to mean "capped"
_Z_SIGNIFICANT = 2.0
_EXTEND_LIMIT = 4  # an unclear experiment gathers up to 4x the high side's sends
_OUTCOME_WINDOW = 64
_ADVANCE_STEP = 0.0005  # seconds between bin reviews driven by answers and timeouts
# Until the first drop, from 2000/s up (past the answer caps hosts commonly keep, whose
# burst allowance could hide them through a fourfold step): the ramp to 100,000/s
# costs five judged bins, not eight.
_START_GROWTH = 4.0
_START_GROWTH_FROM = 2000.0
_FAST_GROWTH = 2.0
_SLOW_GROWTH = 1.05
_BURST_SECONDS = 0.005
_DECISION_LOG = 64
_MAX_DESCENT = 6  # an unclear experiment halves the rate at most this many extra times
_DESCENT_FLOOR = 10.0  # ... and never below this many probes/s


@dataclass(slots=True)
class _Bin:
    """Sends made at one rate during one short stretch of time."""

    start: float
    rate: float
    end: float = math.inf
    sent: int = 0
    answered: int = 0
    span: float = 0.0  # seconds actually spent sending (bins only: end - start)

    @property
    def fraction(self) -> float:
        return self.answered / self.sent if self.sent else 0.0

    @property
    def answer_rate(self) -> float:
        return self.answered / self.span if self.span > 0 else 0.0

    @property
    def paced(self) -> bool:
        """True when the pacer, not a shortage of probes, limited the sends."""
        return self.sent >= 0.7 * self.rate * self.span


def _z_two_proportions(x1: int, n1: int, x2: int, n2: int) -> float:
    """How many standard errors proportion 1 lies above proportion 2."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-4) * (1 / n1 + 1 / n2))
    return (x1 / n1 - x2 / n2) / se


class RateController:
    """Decides how many probes may leave now; see the module docstring for the algorithm."""

    def __init__(
        self,
        *,
        min_rate: float | None = None,
        max_rate: float | None = None,
        initial_rate: float | None = None,
        adaptive: bool = True,
    ) -> None:
        # adaptive=False: a plain pacer at the rate the bounds give, without the
        # experiments (the connect scan's window does its own congestion control).
        self.adaptive = adaptive
        self.min_rate = min_rate if min_rate and min_rate > 0 else None
        self.max_rate = max_rate if max_rate and max_rate > 0 else DEFAULT_MAX_RATE
        if self.min_rate is not None and self.min_rate > self.max_rate:
            self.min_rate = self.max_rate
        start = initial_rate or max(DEFAULT_INITIAL_RATE, self.min_rate or 0.0)
        self.rate = self._clamp(start)
        self.ceiling: float | None = None  # the answer cap, once one was found
        self.usual_fraction = 1.0
        self.decisions: deque[tuple[float, str]] = deque(maxlen=_DECISION_LOG)
        self.sent = 0
        self.answered = 0
        self.timeouts = 0
        self._tokens = 1.0
        self._token_time: float | None = None
        self._bins: deque[_Bin] = deque()
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._experiment_high: _Bin | None = None  # the measurement that looked capped
        self._experiment_low: _Bin | None = None  # what half the rate got so far
        self._experiment_origin = 0.0  # the rate the experiment started from
        self._descent = 0  # extra halvings taken by the current experiment
        self._dropped_once = False  # an experiment has begun: growth slows from _START_GROWTH to _FAST_GROWTH
        self._capped_answer_rate: float | None = None  # the cap a step of this experiment proved
        self._fraction_seen = False  # a bin was judged normal: usual_fraction is measured, not assumed
        self._tally: _Bin | None = None  # settled bins at the current rate, not yet judged
        self._tally_since = -math.inf
        self._busy = False  # the last bin sent as fast as the pacer allowed
        self._advance_after = -math.inf
        self._outcomes: deque[bool] = deque(maxlen=_OUTCOME_WINDOW)  # latest answers (True) and timeouts

    @classmethod
    def from_timing(cls, timing: Timing) -> RateController:
        """A controller honouring --min-rate, --max-rate and --scan-delay."""
        max_rate = timing.max_rate
        if timing.scan_delay > 0:
            delay_cap = 1.0 / timing.scan_delay
            max_rate = delay_cap if max_rate is None else min(max_rate, delay_cap)
        return cls(min_rate=timing.min_rate, max_rate=max_rate)

    # -- the pacer -------------------------------------------------------

    def allowed(self, now: float) -> int:
        """How many probes may be sent at ``now``."""
        self._advance(now)
        self._refill(now)
        return int(self._tokens)

    def next_send_time(self, now: float) -> float:
        """The earliest time at which one more probe may be sent."""
        self._refill(now)
        if self._tokens >= 1.0:
            return now
        return now + (1.0 - self._tokens) / self.rate

    def on_send(self, now: float) -> None:
        """One probe (new or retransmitted) left at ``now``."""
        self.on_sends(now, 1)

    def on_sends(self, now: float, count: int) -> None:
        """``count`` probes left together at ``now``."""
        self._refill(now)
        self._tokens -= count
        self.sent += count
        if self.adaptive:
            self._current_bin(now).sent += count

    def on_answer(self, now: float, rtt: float) -> None:
        """A probe sent ``rtt`` seconds ago was answered."""
        self.answered += 1
        self._outcomes.append(True)
        rtt = max(0.0, rtt)
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        sent_at = now - rtt
        for candidate in reversed(self._bins):
            if candidate.start <= sent_at:
                if sent_at <= candidate.end:
                    candidate.answered += 1
                break
        if now >= self._advance_after:  # at most once per _ADVANCE_STEP: bins last 10 ms or more
            self._advance(now)

    def on_timeout(self, now: float) -> None:
        """A probe went unanswered.  Bins infer losses from missing answers; this feeds the early warning."""
        self.timeouts += 1
        self._outcomes.append(False)
        if now >= self._advance_after:  # at most once per _ADVANCE_STEP: bins last 10 ms or more
            self._advance(now)

    @property
    def suspect(self) -> bool:
        """True while recent probes are answered clearly less than usual and the cause is not yet known.

        Bins are judged a few RTTs late; this reacts at once, so the caller
        can slow its retransmissions instead of spending a port's attempts
        against a cap the controller has not measured yet.
        """
        if len(self._outcomes) < _OUTCOME_WINDOW // 2 or not self._busy:
            return False  # few sends cannot overrun a cap: silence is the ports' own
        share = sum(self._outcomes) / len(self._outcomes)
        usual = self.usual_fraction
        # As in judging a bin, the drop must stand out from the noise: a host that
        # answers 1% of its ports is often silent for 64 probes in a row.
        spread = 2 * math.sqrt(max(usual * (1 - usual), 0.01) / len(self._outcomes))
        return share < usual * _DROP_TRIGGER and usual - share > spread

    @property
    def fraction_measured(self) -> bool:
        """True once a bin was judged normal with answers in it: the usual fraction is measured, not assumed."""
        return self._fraction_seen

    # -- internals ---------------------------------------------------------

    def _clamp(self, rate: float) -> float:
        rate = min(rate, self.max_rate)
        if self.min_rate is not None:
            rate = max(rate, self.min_rate)
        return max(rate, 1e-3)

    def _refill(self, now: float) -> None:
        if self._token_time is None:
            self._token_time = now
            return
        if now > self._token_time:
            burst = max(1.0, self.rate * _BURST_SECONDS)
            self._tokens = min(burst, self._tokens + (now - self._token_time) * self.rate)
            self._token_time = now

    def _set_rate(self, now: float, rate: float, why: str) -> None:
        rate = self._clamp(rate)
        if abs(rate - self.rate) > 1e-9:
            self._close_bin(now)
            self._refill(now)
            self.rate = rate
        self._tally = None
        self._tally_since = now
        self.decisions.append((now, f"{why}: {self.rate:.0f}/s"))

    def _bin_length(self, rate: float) -> float:
        return min(_BIN_MAX_TIME, max(_BIN_MIN_TIME, _BIN_PROBES / rate))

    def _current_bin(self, now: float) -> _Bin:
        if self._bins and self._bins[-1].end == math.inf:
            last = self._bins[-1]
            if now < last.start + self._bin_length(last.rate):
                return last
            self._close_bin(now)
        fresh = _Bin(start=now, rate=self.rate)
        self._bins.append(fresh)
        return fresh

    def _close_bin(self, now: float) -> None:
        if self._bins and self._bins[-1].end == math.inf:
            closing = self._bins[-1]
            closing.end = now
            closing.span = now - closing.start
            self._busy = closing.paced

    def _settle_delay(self) -> float:
        if self._srtt is None:
            return 0.05
        return min(2.0, max(0.005, 2 * self._srtt + 4 * self._rttvar))

    def _advance(self, now: float) -> None:
        """Fold every bin old enough that all its answers are in into the tally, and judge it."""
        self._advance_after = now + _ADVANCE_STEP
        if not self.adaptive:
            return
        if self._bins and self._bins[-1].end == math.inf:
            last = self._bins[-1]
            if now >= last.start + self._bin_length(last.rate):
                self._close_bin(now)
        delay = self._settle_delay()
        while self._bins and self._bins[0].end + delay <= now:
            settled = self._bins.popleft()
            if abs(settled.rate - self.rate) > 1e-9 or settled.start < self._tally_since:
                continue  # sent at a rate we have since left: says nothing about this one
            tally = self._tally
            if tally is None:
                tally = self._tally = _Bin(start=settled.start, rate=settled.rate)
            tally.sent += settled.sent
            tally.answered += settled.answered
            tally.end = settled.end
            tally.span += settled.end - settled.start
            if tally.sent >= _MIN_SAMPLES and (
                tally.answered >= _MIN_ANSWERS or tally.sent >= _MAX_SAMPLES or tally.end - tally.start >= _MAX_TALLY_TIME
            ):
                self._tally = None
                self._judge(tally, now)

    def _end_experiment(self) -> None:
        self._experiment_high = None
        self._experiment_low = None

    def _judge(self, measured: _Bin, now: float) -> None:
        if self._experiment_high is not None:
            self._judge_experiment(measured, now)
            return
        usual = self.usual_fraction
        spread = 2 * math.sqrt(max(usual * (1 - usual), 0.01) / measured.sent)
        if measured.fraction < usual * _DROP_TRIGGER and usual - measured.fraction > spread:
            low = self._clamp(measured.rate / 2)
            if low < measured.rate:
                self._experiment_high = measured
                self._experiment_origin = measured.rate
                self._dropped_once = True
                self._descent = 0
                self._capped_answer_rate = None
                self._set_rate(now, low, f"answered {measured.fraction:.0%} at {measured.rate:.0f}/s, trying half")
            return
        # The usual fraction only rises here; it falls only when an experiment
        # proves the loss random.  Letting it drift down with each small rise in
        # rate would walk the rate past a cap one unnoticed step at a time.
        self.usual_fraction = max(usual, 0.8 * usual + 0.2 * measured.fraction)
        self._fraction_seen = self._fraction_seen or measured.answered > 0
        if measured.paced and self.rate < self.max_rate:
            ramp = _START_GROWTH if self.rate >= _START_GROWTH_FROM and not self._dropped_once else _FAST_GROWTH
            growth = ramp if self.ceiling is None else _SLOW_GROWTH
            self._set_rate(now, self.rate * growth, "no sign of a limit, faster")

    def _judge_experiment(self, measured: _Bin, now: float) -> None:
        high = self._experiment_high
        assert high is not None
        low = self._experiment_low
        if low is None:
            low = self._experiment_low = measured
        else:
            low.sent += measured.sent
            low.answered += measured.answered
            low.span += measured.span
            low.end = measured.end
        z = _z_two_proportions(low.answered, low.sent, high.answered, high.sent)
        if z < -_Z_SIGNIFICANT:
            # Slower got fewer answers: the path changed under us (a burst allowance
            # ran out, the scan reached filtered ports).  Measure again.
            self._end_experiment()
            self._set_rate(now, self._experiment_origin, "inconclusive, rate restored")
            return
        capped = low.fraction > high.fraction * _LIMIT_RATIO and z > _Z_SIGNIFICANT
        if not capped and z > 1.0 and low.sent < _EXTEND_LIMIT * high.sent:
            return  # a hint of a cap but not proof: keep measuring at the low rate
        if not capped:
            # Too few answers to compare means something only after answers were normal:
            # from the first bin on it is a black hole (filtered ports), not a cap.
            too_few = self._fraction_seen and low.answered + high.answered < _MIN_ANSWERS
            if (z > 1.0 or too_few) and self._step_down(low, now, "unclear, one step lower"):
                return
            self._end_experiment()
            if self._capped_answer_rate is not None:
                # An earlier step proved a cap and this one sees none: both rates here are
                # under it, so their fraction is the unhurried one the cap divides by.
                natural = max(low.fraction, high.fraction, 1e-3)
                self.usual_fraction = natural
                self.ceiling = self._clamp(
                    min(self._experiment_origin, max(high.rate, self._capped_answer_rate / natural)))
                self._set_rate(now, self.ceiling, f"answers capped near {self._capped_answer_rate:.0f}/s")
                return
            self.usual_fraction = max(0.01, (low.fraction + high.fraction) / 2)
            self._set_rate(now, self._experiment_origin,
                           f"loss is random ({high.fraction:.0%} vs {low.fraction:.0%}), rate restored")
            return
        # The cap is the answer rate the target sustained; divided by the share of
        # probes an unhurried scan gets answered, it is the send rate to pace at.
        natural = max(low.fraction, self.usual_fraction, 1e-3)
        ceiling = self._clamp(min(high.rate, high.answer_rate / natural))
        self._capped_answer_rate = high.answer_rate
        if ceiling <= low.rate * _LIMIT_RATIO and self._step_down(low, now, "low rate capped too, one step lower"):
            return
        self._end_experiment()
        self.ceiling = ceiling
        self._set_rate(now, self.ceiling, f"answers capped near {high.answer_rate:.0f}/s")

    def _step_down(self, low: _Bin, now: float, why: str) -> bool:
        """Continue the experiment at half the low rate, the low side becoming the high one."""
        lower = self._clamp(low.rate / 2)
        if self._descent >= _MAX_DESCENT or lower < _DESCENT_FLOOR or lower >= low.rate:
            return False
        self._descent += 1
        self._experiment_high = low
        self._experiment_low = None
        self._set_rate(now, lower, why)
        return True
