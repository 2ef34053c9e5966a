"""The idle scan's sans-I/O core: zombie verdicts and the group inference, from IP ID sequences.

``_Zombie`` replays what a zombie's counter does: one number for each RST it
sends (to our probe, and to each SYN/ACK an open port sends it), plus the
extra packets a busy zombie sends on its own.  The sequences in
``RECORDED`` are of the shapes the lab's legacy device and Linux hosts give.
"""

from __future__ import annotations

import random

import pytest

from leadline.core.idle import (
    IdleSession,
    PortFound,
    ZombieLost,
    ipid_distance,
    judge_spoof_test,
    judge_zombie,
)
from leadline.core.ipid import IpidClass

RECORDED = {
    # the lab's legacy device, idle: our six SYN/ACKs answered by RSTs
    "legacy": [2319, 2320, 2321, 2322, 2323, 2324],
    # the same device with background traffic at 5 packets a second
    "legacy-busy": [812, 813, 815, 816, 817, 819],
    # a modern Linux host: RSTs carry ID 0
    "linux": [0, 0, 0, 0, 0, 0],
    # a host with a random ID per packet
    "random": [5021, 60331, 1188, 43210, 29, 33333],
    "by-two": [4000, 4002, 4004, 4006, 4008, 4010],
    "little-endian": [0x1100, 0x1200, 0x1300, 0x1400, 0x1500, 0x1600],
}


class _Zombie:
    """A global counter: +1 per RST; ``noise`` extra packets with that probability per round."""

    def __init__(self, open_ports: set[int], kind: IpidClass = IpidClass.INCREMENTAL, start: int = 65500,
                 noise: float = 0.0, seed: int = 1, answers: int | None = None) -> None:
        self.open = open_ports
        self.kind = kind
        self.count = start
        self.noise = noise
        self.random = random.Random(seed)
        self.answers = answers  # None: answers forever; else this many probes, then silence

    def ipid(self) -> int:
        if self.kind is IpidClass.INCREMENTAL_BY_2:
            return (self.count * 2) % 65536
        if self.kind is IpidClass.BROKEN_INCREMENTAL:
            value = self.count % 65536
            return ((value & 0xFF) << 8) | (value >> 8)
        return self.count % 65536

    def round(self, ports: tuple[int, ...], copies: int = 1) -> int | None:
        self.count += copies * sum(1 for port in ports if port in self.open)
        if self.random.random() < self.noise:
            self.count += self.random.randint(1, 3)
        if self.answers is not None:
            if self.answers == 0:
                return None
            self.answers -= 1
        self.count += 1  # its RST to our probe
        return self.ipid()


def _scan(ports: list[int], zombie: _Zombie, **options: int) -> tuple[dict[int, bool], IdleSession]:
    session = IdleSession(ports, zombie.kind, zombie.ipid(), **options)
    found: dict[int, bool] = {}
    for _ in range(5000):
        round_ = session.next_round()
        if round_ is None:
            break
        for decided in session.record(round_, zombie.round(round_.ports, round_.copies)):
            assert decided.port not in found, "a port decided twice"
            found[decided.port] = decided.open
    assert session.finished
    return found, session


@pytest.mark.parametrize(("name", "usable", "kind"), [
    ("legacy", True, IpidClass.INCREMENTAL),
    ("legacy-busy", True, IpidClass.INCREMENTAL),
    ("by-two", True, IpidClass.INCREMENTAL_BY_2),
    ("little-endian", True, IpidClass.BROKEN_INCREMENTAL),
    ("linux", False, IpidClass.ZERO),
    ("random", False, IpidClass.RANDOM),
])
def test_zombie_verdicts_from_recorded_sequences(name: str, usable: bool, kind: IpidClass) -> None:
    check = judge_zombie("legacy", "198.18.1.75", 80, RECORDED[name])
    assert (check.usable, check.kind) == (usable, kind)
    assert "\n" not in check.message
    if usable:
        assert check.message.startswith("Idle scan using zombie legacy (198.18.1.75:80); Class: ")
    else:
        assert kind.description in check.message and "Incremental" in check.message


def test_a_silent_zombie_is_refused_in_one_line() -> None:
    check = judge_zombie("198.18.1.99", "198.18.1.99", 80, [])
    assert not check.usable and "has not returned any of our 6 probes" in check.message


def test_distance_in_each_class() -> None:
    assert ipid_distance(IpidClass.INCREMENTAL, 65535, 3) == 4
    assert ipid_distance(IpidClass.INCREMENTAL_BY_2, 65534, 4) == 3
    assert ipid_distance(IpidClass.BROKEN_INCREMENTAL, 0xFF00, 0x0201) == 3  # 0x00ff -> 0x0102


def test_per_destination_counter_is_refused() -> None:
    where = "198.18.1.11 port 80"
    assert judge_spoof_test(IpidClass.INCREMENTAL, 100, 105, where) is None
    refusal = judge_spoof_test(IpidClass.INCREMENTAL, 100, 101, where)
    assert refusal is not None and "each destination separately" in refusal
    assert judge_spoof_test(IpidClass.INCREMENTAL, 100, None, where) is not None


OPEN = {22, 80, 443, 50007, 50008}
PORTS = list(range(1, 1001)) + [50007, 50008]


@pytest.mark.parametrize("kind", [IpidClass.INCREMENTAL, IpidClass.INCREMENTAL_BY_2, IpidClass.BROKEN_INCREMENTAL])
def test_quiet_zombie_finds_exactly_the_open_ports(kind: IpidClass) -> None:
    found, session = _scan(PORTS, _Zombie(OPEN, kind))
    assert set(found) == set(PORTS)
    assert {p for p, is_open in found.items() if is_open} == OPEN
    assert session.inconsistent == 0
    assert session.rounds < 150


@pytest.mark.parametrize("seed", range(40))
def test_noisy_zombie_still_gives_the_exact_answer(seed: int) -> None:
    found, session = _scan(PORTS, _Zombie(OPEN, noise=0.15, seed=seed))
    assert {p for p, is_open in found.items() if is_open} == OPEN
    assert len(found) == len(PORTS)


def test_noise_shrinks_the_group_and_quiet_grows_it_within_bounds() -> None:
    _, quiet = _scan(PORTS, _Zombie(OPEN))
    assert quiet.group == 100.0
    session = IdleSession([1, 2, 3, 4], IpidClass.INCREMENTAL, 10)
    round_ = session.next_round()
    assert round_ is not None and round_.ports == (1, 2, 3, 4)
    session.record(round_, 10 + 1 + 9)  # nine increments for four ports: impossible
    assert session.group == 24.0 and session.inconsistent == 1
    for _ in range(30):
        session._adjust(False)
    assert session.group == 4.0


def test_groups_start_at_thirty() -> None:
    session = IdleSession(list(range(1, 200)), IpidClass.INCREMENTAL, 10)
    round_ = session.next_round()
    assert round_ is not None and len(round_.ports) == 30


def test_a_single_port_gets_four_syns_and_needs_two_full_rounds() -> None:
    session = IdleSession([7], IpidClass.INCREMENTAL, 100)
    first = session.next_round()
    assert first is not None and first.ports == (7,) and first.copies == 4
    assert session.record(first, 105) == []  # four increments beyond our probe's: open, or noise
    again = session.next_round()
    assert again is not None and again.ports == (7,)
    assert session.record(again, 109) == [PortFound(7, False)]  # three: an open port gives at least four
    session = IdleSession([8], IpidClass.INCREMENTAL, 100)
    for ipid, decided in ((105, []), (111, [PortFound(8, True)])):
        round_ = session.next_round()
        assert round_ is not None
        assert session.record(round_, ipid) == decided


@pytest.mark.parametrize("seed", range(20))
def test_a_busy_zombie_noisy_in_four_rounds_of_ten_still_gives_the_exact_answer(seed: int) -> None:
    found, _ = _scan(PORTS, _Zombie(OPEN, noise=0.4, seed=seed))
    assert {p for p, is_open in found.items() if is_open} == OPEN


def test_a_zombie_that_stops_answering_ends_the_scan() -> None:
    zombie = _Zombie(OPEN, answers=12)
    with pytest.raises(ZombieLost):
        _scan(PORTS, zombie)


def test_one_lost_probe_only_costs_a_baseline_read() -> None:
    session = IdleSession([1, 2], IpidClass.INCREMENTAL, 50)
    round_ = session.next_round()
    assert round_ is not None
    assert session.record(round_, None) == []
    baseline = session.next_round()
    assert baseline is not None and baseline.ports == ()
    session.record(baseline, 60)
    again = session.next_round()
    assert again is not None and again.ports == (1, 2)
    assert session.record(again, 61) == [PortFound(1, False), PortFound(2, False)]
    assert session.next_round() is None
