"""The keyed permutation must be a bijection for every size, stable per key, and vary with the key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.core.permutation import Permutation


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 1000, 65535, 65536, 2**20])
def test_is_a_bijection_on_range_n(n: int) -> None:
    seen = bytearray(n)
    count = 0
    for value in Permutation(n, key=0xC0FFEE):
        assert 0 <= value < n
        assert not seen[value], f"{value} produced twice"
        seen[value] = 1
        count += 1
    assert count == n


@given(n=st.integers(min_value=0, max_value=3000), key=st.integers(min_value=-(2**70), max_value=2**70))
@settings(max_examples=60, deadline=None)
def test_bijection_for_any_size_and_key(n: int, key: int) -> None:
    assert sorted(Permutation(n, key)) == list(range(n))


def test_same_key_same_order() -> None:
    assert list(Permutation(5000, 7)) == list(Permutation(5000, 7))


def test_different_keys_give_different_orders() -> None:
    orders = {tuple(Permutation(1000, key)) for key in range(20)}
    assert len(orders) == 20


def test_order_is_actually_shuffled() -> None:
    order = list(Permutation(1000, 3))
    fixed_points = sum(1 for index, value in enumerate(order) if index == value)
    assert fixed_points < 20
    assert order != sorted(order)


def test_indexing_matches_iteration_and_supports_negative_indices() -> None:
    permutation = Permutation(777, 99)
    as_list = list(permutation)
    assert [permutation[index] for index in range(777)] == as_list
    assert permutation[-1] == as_list[-1]
    assert len(permutation) == 777


def test_huge_domain_needs_no_materialisation() -> None:
    permutation = Permutation(2**40, 1)
    first = [permutation[index] for index in range(100)]
    assert len(set(first)) == 100
    assert all(0 <= value < 2**40 for value in first)


@pytest.mark.parametrize("index", [5, -6, 100])
def test_out_of_range_index_raises(index: int) -> None:
    with pytest.raises(IndexError):
        Permutation(5, 1)[index]


def test_negative_size_rejected() -> None:
    with pytest.raises(ValueError):
        Permutation(-1, 0)
