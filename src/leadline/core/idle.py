"""The idle scan's decisions: is this host a usable zombie, and what did its counter say.

An idle scan never sends the target a packet from our address.  SYNs go to
the target forged in the zombie's name; an open port answers the zombie
with a SYN/ACK, the zombie answers that with a RST, and the RST takes one
number from the zombie's global IP ID counter.  Probing the zombie before
and after a group of forged SYNs tells how many of the group's ports are
open.  This module holds that reasoning with no I/O and no clock:

* ``judge_zombie``: the first ~6 IP IDs of the zombie (our own SYN/ACK
  probes answered by RSTs) classified by ``core.ipid``; only incremental,
  incremental by two and broken little-endian counters serve.
* ``judge_spoof_test``: after forging a few SYN/ACKs to the zombie in the
  target's name, the counter must have moved by them; a zombie with a
  counter per destination (or a network that drops forged packets) does not.
* ``IdleSession``: which ports to forge SYNs to next (``next_round``) and
  what the counter's step after them means (``record``).

Invariants of the session:

* Every port is decided exactly once, ``open`` or ``closed|filtered``.
* A round whose count is zero decides all its ports ``closed|filtered`` at
  once: extra traffic at the zombie only adds increments, so zero is the
  one answer noise cannot fake.
* A positive count is never taken for a group: the group is split in
  halves and each is measured again, down to single ports; a single port
  gets ``LEAF_COPIES`` (4) SYNs per round, from different source ports, so
  an open one moves the counter by at least four: a round that counts
  fewer decides ``closed|filtered`` at once (noise adds increments, it never
  takes one away), and ``open`` needs ``confirm`` (2) rounds of four or
  more, which a zombie's own traffic of a few packets a second almost
  never gives twice.
* A count above the group's size is noise: the round is repeated and the
  group size shrinks (×0.8, never below ``min_group``); every consistent
  round grows it (×1.1, never above ``max_group``), as nmap does.
* A zombie probe that goes unanswered loses the baseline: the next round
  only re-reads the counter.  ``max_silent`` unanswered probes in a row end
  the scan with ``ZombieLost``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from leadline.core.ipid import IpidClass, classify_ipids, is_zombie_class

__all__ = [
    "IdleSession",
    "LEAF_COPIES",
    "PortFound",
    "Round",
    "ZombieCheck",
    "ZombieLost",
    "ipid_distance",
    "judge_spoof_test",
    "judge_zombie",
]

ZOMBIE_PROBES = 6  # nmap's NUM_IPID_PROBES
SPOOF_PROBES = 4  # SYN/ACKs forged in the target's name by the per-destination test
LEAF_COPIES = 4  # SYNs per round to a single port, so noise cannot pass for it
START_GROUP = 30
MIN_GROUP = 4
MAX_GROUP = 100
_SHRINK = 0.8
_GROW = 1.1
_MODULUS = 1 << 16


class ZombieLost(Exception):
    """The zombie stopped answering our probes in the middle of the scan."""


@dataclass(frozen=True, slots=True)
class ZombieCheck:
    """The verdict on a would-be zombie: usable, its class, and the line to print."""

    usable: bool
    kind: IpidClass
    message: str  # "Idle scan using zombie ..." or the one-line refusal


def judge_zombie(name: str, address: str, port: int, ipids: Sequence[int], sent: int = ZOMBIE_PROBES) -> ZombieCheck:
    """Classify the zombie's answers to our first probes; refuse any class but the three that serve."""
    where = f"{name} ({address}) port {port}" if name != address else f"{address} port {port}"
    if not ipids:
        return ZombieCheck(False, IpidClass.UNKNOWN,
                           f"Idle scan zombie {where} cannot be used because it has not returned any of our "
                           f"{sent} probes -- perhaps it is down or firewalled")
    kind = classify_ipids(ipids)
    if not is_zombie_class(kind):
        return ZombieCheck(False, kind,
                           f"Idle scan zombie {where} cannot be used because its IP ID sequence class is: "
                           f"{kind.description}; a zombie needs one global counter (Incremental, "
                           f"Incrementing by 2 or Broken little-endian incremental) -- try another zombie")
    label = f"{name} ({address}:{port})" if name != address else f"{address} ({address}:{port})"
    return ZombieCheck(True, kind, f"Idle scan using zombie {label}; Class: {kind.description}")


def ipid_distance(kind: IpidClass, earlier: int, later: int) -> int:
    """How many packets the zombie sent between two IP IDs, in its class's units."""
    if kind is IpidClass.BROKEN_INCREMENTAL:
        earlier, later = _swap(earlier), _swap(later)
    distance = (later - earlier) % _MODULUS
    if kind is IpidClass.INCREMENTAL_BY_2:
        distance //= 2
    return distance


def _swap(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


def judge_spoof_test(kind: IpidClass, before: int, after: int | None, where: str) -> str | None:
    """None when forged packets moved the counter; else the one-line refusal saying why not."""
    if after is None:
        return f"Idle scan zombie {where} is behaving strangely -- it stopped answering our probes"
    if ipid_distance(kind, before, after) <= 1:
        return (f"Idle scan zombie {where} counts packets to each destination separately "
                f"(class {kind.description}, but packets forged in the target's name did not move the counter "
                "we see), or forged packets do not reach it; try another zombie")
    return None


@dataclass(frozen=True, slots=True)
class Round:
    """One round: forge SYNs to ``ports`` (none: just re-read the counter), then probe the zombie."""

    ports: tuple[int, ...]
    copies: int = 1  # SYNs forged to each port (from different source ports)


@dataclass(frozen=True, slots=True)
class PortFound:
    """A decided port: ``open`` True when the zombie's counter moved for it alone."""

    port: int
    open: bool


@dataclass(slots=True)
class _Split:
    """A positive group cut in two: its count, and what its halves counted."""

    count: int
    counts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Task:
    ports: tuple[int, ...]
    parent: _Split | None = None
    tries: int = 0
    positives: int = 0  # single ports: rounds that counted one
    zeros: int = 0


class IdleSession:
    """What to forge next, and what the zombie's counter says about it (see the module's invariants)."""

    def __init__(self, ports: Sequence[int], kind: IpidClass, last_ipid: int, *, start_group: int = START_GROUP,
                 min_group: int = MIN_GROUP, max_group: int = MAX_GROUP, max_tries: int = 9,
                 max_silent: int = 4, confirm: int = 2) -> None:
        self.kind = kind
        self.last_ipid: int | None = last_ipid
        self.min_group = max(1, min_group)
        self.max_group = max(self.min_group, max_group)
        self.group = float(min(self.max_group, max(self.min_group, start_group)))
        self.max_tries = max_tries
        self.max_silent = max_silent
        self.confirm = max(1, confirm)
        self.silent = 0
        self.rounds = 0
        self.inconsistent = 0
        self._pending = deque(ports)
        self._tasks: deque[_Task] = deque()
        self._current: _Task | None = None

    @property
    def finished(self) -> bool:
        return not self._pending and not self._tasks and self._current is None

    def next_round(self) -> Round | None:
        """The round to run now; None when every port is decided."""
        if self.last_ipid is None:
            return Round(())
        if self._current is None:
            if not self._tasks:
                if not self._pending:
                    return None
                size = min(len(self._pending), int(self.group))
                self._tasks.append(_Task(tuple(self._pending.popleft() for _ in range(size))))
            self._current = self._tasks.popleft()
        ports = self._current.ports
        return Round(ports, LEAF_COPIES if len(ports) == 1 else 1)

    def record(self, round_: Round, ipid: int | None) -> list[PortFound]:
        """The zombie's IP ID after ``round_`` (None: the probe went unanswered); the ports it decides."""
        self.rounds += 1
        if ipid is None:
            self.silent += 1
            self.last_ipid = None
            if self.silent >= self.max_silent:
                raise ZombieLost(f"the zombie stopped answering after {self.silent} probes in a row")
            return []
        self.silent = 0
        before, self.last_ipid = self.last_ipid, ipid
        if before is None or not round_.ports or self._current is None:
            return []  # a baseline re-read
        task, self._current = self._current, None
        count = ipid_distance(self.kind, before, ipid) - 1  # our probe's own RST took one
        if len(task.ports) == 1:
            return self._leaf(task, count)
        return self._judge(task, count)

    def _judge(self, task: _Task, count: int) -> list[PortFound]:
        size = len(task.ports)
        if count < 0 or count > size:
            return self._retry(task)
        if count == 0:
            self._consistent(task, count)
            return [PortFound(port, False) for port in task.ports]
        self._consistent(task, count)
        split = _Split(count)
        half = (size + 1) // 2
        self._tasks.extendleft([_Task(task.ports[half:], split), _Task(task.ports[:half], split)])
        return []

    def _leaf(self, task: _Task, count: int) -> list[PortFound]:
        """A single port sent ``LEAF_COPIES`` SYNs: fewer increments than that is closed|filtered for
        certain; ``confirm`` rounds with at least that many make it open."""
        if count < LEAF_COPIES:
            self._consistent(task, 0)
            return [PortFound(task.ports[0], False)]
        task.positives += 1
        if task.positives >= self.confirm:
            self._consistent(task, 1)
            return [PortFound(task.ports[0], True)]
        if count > LEAF_COPIES:
            self._adjust(False)  # noise on top: worth a note, not a verdict
        self._tasks.appendleft(task)
        return []

    def _retry(self, task: _Task) -> list[PortFound]:
        """A count the group cannot explain: noise at the zombie.  Measure again, in smaller groups."""
        self._adjust(False)
        task.tries += 1
        if task.tries > self.max_tries:
            if len(task.ports) == 1:
                return [PortFound(task.ports[0], task.positives > task.zeros)]
            half = (len(task.ports) + 1) // 2
            self._tasks.extendleft([_Task(task.ports[half:]), _Task(task.ports[:half])])
            return []
        self._tasks.appendleft(task)
        return []

    def _consistent(self, task: _Task, count: int) -> None:
        """Grow the group after a round that fits; shrink when halves disagree with their parent."""
        parent = task.parent
        if parent is not None:
            parent.counts.append(count)
            if len(parent.counts) == 2 and sum(parent.counts) != parent.count:
                self._adjust(False)
                return
        self._adjust(True)

    def _adjust(self, consistent: bool) -> None:
        if consistent:
            self.group = min(float(self.max_group), self.group * _GROW)
        else:
            self.inconsistent += 1
            self.group = max(float(self.min_group), self.group * _SHRINK)
