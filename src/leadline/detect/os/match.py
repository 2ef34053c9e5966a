"""Scoring a fingerprint against a database, as nmap scores it.

For each reference record, every attribute present both in the record
and in the fingerprint is worth its ``MatchPoints`` weight; accuracy is
the points matched over the points possible.  Records from 85% up
(``GUESS_THRESHOLD``) are kept, best first (a tie keeps the file's
order), one per name, at most 36; 100% ones are perfect matches, and
more than 36 of those is "too many to tell".

The classes of the kept records, deduplicated (vendor, family,
generation, device type), each with its best record's accuracy, are what
the "Device type", "Running" and "OS CPE" lines are made of; once there
is a perfect match, only classes of perfect matches count.

Expressions repeat across thousands of records, so each (test, attribute,
expression) is judged once per fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from leadline.detect.os.database import OsDatabase, Reference, ReferenceClass
from leadline.detect.os.expr import expr_match

__all__ = ["GUESS_THRESHOLD", "MAX_RESULTS", "MatchResult", "accuracy", "match_fingerprint", "prepare"]

GUESS_THRESHOLD = 0.85
MAX_RESULTS = 36


@dataclass(slots=True)
class MatchResult:
    """Records from the threshold up, best first, and the classes they name."""

    matches: list[tuple[Reference, float]] = field(default_factory=list)
    perfect: int = 0
    too_many: bool = False
    classes: list[tuple[ReferenceClass, float]] = field(default_factory=list)
    class_perfect: int = 0

    @property
    def best(self) -> float:
        return self.matches[0][1] if self.matches else 0.0


def accuracy(reference: Reference, observed: Mapping[str, Mapping[str, str]], points: Mapping[str, Mapping[str, int]],
             cache: dict[tuple[str, str, str, str], bool] | None = None) -> float:
    """Points matched over points possible (0 when nothing is comparable)."""
    possible = matched = 0
    memo = cache if cache is not None else {}
    for test, ref_values in reference.tests.items():
        seen = observed.get(test)
        if seen is None:
            continue
        weights = points.get(test, {})
        for attr, expr in ref_values.items():
            value = seen.get(attr)
            if value is None:
                continue
            weight = weights.get(attr, 0)
            possible += weight
            key = (test, attr, expr, value)
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = expr_match(value, expr, nested=test == "OPS" or attr == "O")
            if hit:
                matched += weight
    return matched / possible if possible else 0.0


def _flat(db: OsDatabase) -> list[tuple[Reference, tuple[tuple[str, str, str, int], ...], int]]:
    """Each record's attributes as (test, attribute, expression, weight), and its points in all."""
    cached = _FLAT.get(id(db))
    if cached is not None and cached[0] is db:
        return cached[1]
    flat = []
    for reference in db.references:
        rows = tuple((test, attr, expr, db.points.get(test, {}).get(attr, 0))
                     for test, values in reference.tests.items() for attr, expr in values.items())
        flat.append((reference, rows, sum(row[3] for row in rows)))
    _FLAT[id(db)] = (db, flat)
    return flat


def prepare(db: OsDatabase) -> None:
    """Do the per-database work of matching now (e.g. in the background, before the first fingerprint)."""
    _flat(db)


_FLAT: dict[int, tuple[OsDatabase, list[tuple[Reference, tuple[tuple[str, str, str, int], ...], int]]]] = {}


def _score(rows: tuple[tuple[str, str, str, int], ...], observed: Mapping[str, Mapping[str, str]],
           memo: dict[tuple[str, str, str, str], bool], give_up: float) -> float:
    """Accuracy of one record; -1 once more points than ``give_up`` are lost (it cannot reach the threshold)."""
    possible = matched = 0
    for test, attr, expr, weight in rows:
        seen = observed.get(test)
        if seen is None:
            continue
        value = seen.get(attr)
        if value is None:
            continue
        possible += weight
        key = (test, attr, expr, value)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = expr_match(value, expr, nested=test == "OPS" or attr == "O")
        if hit:
            matched += weight
        elif possible - matched > give_up:
            return -1.0
    return matched / possible if possible else 0.0


def match_fingerprint(observed: Mapping[str, Mapping[str, str]], db: OsDatabase,
                      threshold: float = GUESS_THRESHOLD) -> MatchResult:
    """Every record from ``threshold`` up, scored as nmap scores them, and their classes.

    As nmap does, a record is given up once it has lost more than
    (1 - threshold) of all its points: it can no longer reach the threshold.
    """
    memo: dict[tuple[str, str, str, str], bool] = {}
    best: dict[str, tuple[int, Reference, float]] = {}
    for order, (reference, rows, total) in enumerate(_flat(db)):
        acc = _score(rows, observed, memo, (1.0 - threshold) * total)
        if acc < threshold and acc != 1.0:
            continue
        known = best.get(reference.name)
        if known is not None and known[2] >= acc:
            continue
        best[reference.name] = (order, reference, acc)
    ranked = sorted(best.values(), key=lambda item: (-item[2], item[0]))
    result = MatchResult()
    result.perfect = sum(1 for _, _, acc in ranked if acc == 1.0)
    if result.perfect > MAX_RESULTS:
        result.too_many = True
        result.perfect = MAX_RESULTS
    result.matches = [(reference, acc) for _, reference, acc in ranked[:MAX_RESULTS]]
    _classify(result)
    return result


def _classify(result: MatchResult) -> None:
    seen: set[tuple[str, str, str | None, str]] = set()
    for index, (reference, acc) in enumerate(result.matches):
        for cls in reference.classes:
            key = (cls.vendor, cls.family, cls.generation, cls.device_type)
            if key in seen:
                continue
            if result.class_perfect > 0 and index >= result.perfect:
                return
            seen.add(key)
            result.classes.append((cls, acc))
            if index < result.perfect:
                result.class_perfect += 1
