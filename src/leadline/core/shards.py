"""Shards: the I-th of N disjoint parts of a target stream, chosen by a keyed permutation.

A host's place in the target stream (its index, counted as the stream
yields it) goes through a keyed bijection of ``[0, size)``; the host
belongs to shard ``I`` when the permuted index is ``I-1`` modulo ``N``.
Invariants kept here:

* The permutation is a bijection of ``[0, size)``: a balanced Feistel
  network over the smallest even number of bits covering ``size``, with
  cycle walking (re-encrypt until the value falls inside the range), so
  no table is built and a /8 never sits in memory.
* Shards of one (seed, N) are disjoint and together cover every index:
  each index has exactly one permuted value, and that value exactly one
  residue modulo N.
* Same seed, same targets, same shards: runs on different machines agree
  without talking to each other (as masscan's and ZMap's ``--shards``).
* No I/O, no clock, no global random state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["KeyedPermutation", "Shard", "parse_shard", "shard_stream"]

_ROUNDS = 4  # Luby-Rackoff: four rounds make a strong pseudo-random permutation
_MUL = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1

T = TypeVar("T")


class KeyedPermutation:
    """A keyed bijection of ``[0, size)`` in O(1) memory."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("a permutation needs at least one element")
        self.size = size
        bits = max(2, (size - 1).bit_length())
        bits += bits & 1  # two equal halves
        self.half = bits // 2
        self.half_mask = (1 << self.half) - 1
        digest = hashlib.blake2b(seed.to_bytes(16, "big", signed=True), digest_size=8 * _ROUNDS).digest()
        self.keys = tuple(int.from_bytes(digest[8 * r: 8 * r + 8], "big") for r in range(_ROUNDS))

    def _round(self, value: int, key: int) -> int:
        """The round function: a keyed 64-bit mix (splitmix-style) cut to half a block."""
        z = ((value + key) * _MUL) & _MASK64
        z ^= z >> 31
        z = (z * 0xBF58476D1CE4E5B9) & _MASK64
        return (z ^ (z >> 29)) & self.half_mask

    def _encrypt(self, value: int) -> int:
        left, right = value >> self.half, value & self.half_mask
        for key in self.keys:
            left, right = right, left ^ self._round(right, key)
        return (left << self.half) | right

    def __call__(self, index: int) -> int:
        """The permuted index; cycle walking keeps it inside ``[0, size)``."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside [0, {self.size})")
        value = self._encrypt(index)
        while value >= self.size:
            value = self._encrypt(value)
        return value


@dataclass(frozen=True)
class Shard:
    """``--shards I/N`` with ``--seed``: which of N parts this run scans (``index`` is 1-based)."""

    index: int
    count: int
    seed: int

    def members(self, size: int) -> Iterator[int]:
        """The stream indices of ``[0, size)`` in this shard, in stream order."""
        permutation = KeyedPermutation(size, self.seed)
        wanted = self.index - 1
        return (i for i in range(size) if permutation(i) % self.count == wanted)


def parse_shard(text: str, seed: int | None) -> Shard:
    """``I/N`` as the user typed it; raises ValueError with one line saying what is wrong."""
    first, slash, second = text.partition("/")
    if not (slash and first.isdigit() and second.isdigit()):
        raise ValueError(f"--shards takes I/N (for example 1/3), not '{text}'")
    index, count = int(first), int(second)
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shards {text}: I must be from 1 to N, and N at least 1")
    if seed is None:
        raise ValueError("--shards needs --seed N, the same on every shard, so the shards agree on the permutation")
    return Shard(index, count, seed)


def shard_stream(items: Iterable[T], shard: Shard, size: int) -> Iterator[T]:
    """The items of ``items`` (at most ``size`` of them) that fall in ``shard``, lazily."""
    permutation = KeyedPermutation(max(size, 1), shard.seed)
    wanted = shard.index - 1
    for position, item in enumerate(items):
        if position >= permutation.size:
            raise ValueError(f"the target stream is longer than its bound of {permutation.size}")
        if permutation(position) % shard.count == wanted:
            yield item
