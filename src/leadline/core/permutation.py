"""A keyed shuffle of ``range(n)`` that never builds a list.

Randomising the order of ports, hosts or (host, port) pairs must not cost
memory proportional to the scan: a /8 times 65536 ports is ~2**40 pairs.
A Feistel network over the smallest even-width power of two that covers
``n`` is a bijection on that power of two; "cycle walking" (re-encrypting
until the value falls below ``n``) restricts it to a bijection on
``range(n)``.  The domain is at most four times ``n``, so a lookup takes
under four encryptions on average.

Promises: for every ``n >= 0`` and integer key, ``Permutation(n, key)``
is a bijection on ``range(n)``; the same ``(n, key)`` always gives the
same order; memory use does not depend on ``n``.  This is a shuffle, not
cryptography: it hides nothing from someone who sees the order.
"""

from __future__ import annotations

from collections.abc import Iterator

_ROUNDS = 4
_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """A 64-bit finaliser (splitmix64's): every input bit flips half the output bits."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


class Permutation:
    """A bijection on ``range(n)`` chosen by ``key``; index it like a sequence."""

    __slots__ = ("_n", "_half_bits", "_half_mask", "_round_keys")

    def __init__(self, n: int, key: int) -> None:
        if n < 0:
            raise ValueError(f"permutation size must be >= 0, got {n}")
        self._n = n
        bits = max(2, (n - 1).bit_length()) if n > 1 else 2
        self._half_bits = (bits + 1) // 2
        self._half_mask = (1 << self._half_bits) - 1
        seed = _mix64(key ^ (key >> 64) ^ 0x9E3779B97F4A7C15)
        self._round_keys = tuple(_mix64(seed + round_index * 0x9E3779B97F4A7C15) for round_index in range(_ROUNDS))

    def __len__(self) -> int:
        return self._n

    def _encrypt(self, value: int) -> int:
        half_bits = self._half_bits
        half_mask = self._half_mask
        left = value >> half_bits
        right = value & half_mask
        for round_key in self._round_keys:
            # Round function: multiply-xorshift of the right half under the round key.
            mixed = ((right ^ round_key) * 0xBF58476D1CE4E5B9) & _MASK64
            left, right = right, left ^ ((mixed ^ (mixed >> 31)) & half_mask)
        return (left << half_bits) | right

    def __getitem__(self, index: int) -> int:
        n = self._n
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"permutation index {index} out of range for size {n}")
        value = self._encrypt(index)
        while value >= n:
            value = self._encrypt(value)
        return value

    def __iter__(self) -> Iterator[int]:
        for index in range(self._n):
            yield self[index]
