"""The IP ID sequence classes, from sequences as real stacks produce them."""

from __future__ import annotations

import random

import pytest

from leadline.core.ipid import IpidClass, classify_ipids, ipid_steps, is_zombie_class


@pytest.mark.parametrize(("ipids", "expected"), [
    ([0, 0, 0, 0, 0, 0], IpidClass.ZERO),                      # Linux, DF set
    ([4660, 4660, 4660, 4660], IpidClass.CONSTANT),
    ([100, 101, 102, 104, 105, 107], IpidClass.INCREMENTAL),   # a legacy stack with a little traffic
    ([100, 102, 104, 106, 108, 110], IpidClass.INCREMENTAL_BY_2),
    ([0x0100, 0x0200, 0x0300, 0x0500, 0x0600, 0x0700], IpidClass.BROKEN_INCREMENTAL),  # old Windows
    ([1000, 3500, 5100, 9000, 11000, 14000], IpidClass.RANDOM_INCREMENTS),
    ([5, 40000, 123, 61000, 300, 22000], IpidClass.RANDOM),
    ([100, 150, 175, 176, 177, 178], IpidClass.UNKNOWN),       # steps of 10..1000: a busy counter
    ([7], IpidClass.UNKNOWN),
    ([], IpidClass.UNKNOWN),
])
def test_classes(ipids: list[int], expected: IpidClass) -> None:
    assert classify_ipids(ipids) is expected


def test_a_counter_wrapping_between_samples_is_still_incremental() -> None:
    assert ipid_steps([65534, 65535, 0, 1]) == [1, 1, 1]
    assert classify_ipids([65534, 65535, 0, 1, 2, 3]) is IpidClass.INCREMENTAL


def test_ipv6_identifications_use_32_bits() -> None:
    assert classify_ipids([0xFFFFFFFE, 0xFFFFFFFF, 0, 1], bits=32) is IpidClass.INCREMENTAL
    assert classify_ipids([1, 70000, 140000, 210000], bits=32) is IpidClass.RANDOM


def test_two_samples_never_read_as_random() -> None:
    # With one step there is nothing to compare: a large step is random increments, not random.
    assert classify_ipids([5, 40000]) is IpidClass.RANDOM_INCREMENTS


def test_multiples_of_256_from_25600_are_random_increments() -> None:
    assert classify_ipids([0, 25600]) is IpidClass.RANDOM_INCREMENTS
    assert classify_ipids([0, 5120, 10240]) is IpidClass.BROKEN_INCREMENTAL


def test_localhost_discounts_our_own_reset() -> None:
    assert classify_ipids([10, 12, 14, 16, 18], localhost=True) is IpidClass.INCREMENTAL
    assert classify_ipids([10, 12, 14, 16, 18]) is IpidClass.INCREMENTAL_BY_2


def test_only_shared_counters_serve_as_zombies() -> None:
    usable = {kind for kind in IpidClass if is_zombie_class(kind)}
    assert usable == {IpidClass.INCREMENTAL, IpidClass.INCREMENTAL_BY_2, IpidClass.BROKEN_INCREMENTAL}


def test_descriptions_are_what_reports_print() -> None:
    assert IpidClass.ZERO.description == "All zeros"
    assert IpidClass.INCREMENTAL.description == "Incremental"


def test_random_samples_never_raise() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        ipids = [rng.randrange(1 << 16) for _ in range(rng.randrange(0, 8))]
        assert isinstance(classify_ipids(ipids, localhost=rng.random() < 0.5), IpidClass)
