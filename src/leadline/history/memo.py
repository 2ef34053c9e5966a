"""Bounded tables for the parts hosts share: each distinct part is worked on once.

The hosts of one run repeat most of what they hold (the same ports
answering the same way, the same OS guess), and the result model is
immutable, so the readers hand out one object for many hosts and the
writers work on each such object once.  ``Parts`` keys by an object's
identity (and holds the object, so no id is reused while its entry
lives); ``remember`` fills a table keyed by value.  Every table is
emptied at ``LIMIT`` entries, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["LIMIT", "Parts", "remember"]

LIMIT = 4096
_K = TypeVar("_K")
_P = TypeVar("_P")
_V = TypeVar("_V")


def remember(table: dict[_K, _V], key: _K, value: _V) -> _V:
    """``value``, stored under ``key`` (the table emptied first when full)."""
    if len(table) >= LIMIT:
        table.clear()
    table[key] = value
    return value


class Parts:
    """What ``build`` made of each part, by the part's identity."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[object, Any]] = {}

    def get(self, part: _P, build: Callable[[_P], _V]) -> _V:
        hit = self.entries.get(id(part))
        if hit is not None and hit[0] is part:
            return cast(_V, hit[1])
        return cast(_V, remember(self.entries, id(part), (part, build(part)))[1])
