"""One reader of the nmap-os-db format, for nmap's database and for ours.

The format (nmap's documentation, "Understanding an Nmap Fingerprint"):
``MatchPoints`` and its test lines give each attribute's weight; then
records, separated by blank lines::

    # comment
    Fingerprint Linux 5.0 - 5.14
    Class Linux | Linux | 5.X | general purpose
    CPE cpe:/o:linux:linux_kernel:5 auto
    SEQ(SP=F9-111%GCD=1-6%ISR=108-11A%TI=Z%CI=Z%II=I%TS=A)
    T2(R=N)

A test whose only value is ``R=N`` means "no answer"; a test with values
and no R means R=Y.  Values are expressions (``matchexpr``) compiled by
``detect.os.expr``.  nmap's own file is read at run time from where nmap
is installed (``/usr/share/nmap/nmap-os-db``); leadline ships its own,
written from the lab's hosts and the stacks' documented behaviour.

A file that does not parse is refused with one line naming the file,
the line number and what is wrong.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from leadline.detect.os.fingerprint import ATTRIBUTES

__all__ = ["NMAP_OS_DB", "OsDatabase", "Reference", "ReferenceClass", "load_os_db", "parse_os_db"]

NMAP_OS_DB = "/usr/share/nmap/nmap-os-db"


@dataclass(frozen=True, slots=True)
class ReferenceClass:
    """A Class line (and the CPE lines under it)."""

    vendor: str
    family: str
    generation: str | None
    device_type: str
    cpes: tuple[str, ...] = ()


@dataclass(slots=True)
class Reference:
    """One Fingerprint record: its name, where it is, its classes and its tests (values are expressions)."""

    name: str
    line: int
    classes: list[ReferenceClass] = field(default_factory=list)
    tests: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class OsDatabase:
    """The weights and the records of one file."""

    path: str
    points: dict[str, dict[str, int]]
    references: list[Reference]


class _Error(ValueError):
    pass


def _parse_points(text: str) -> tuple[str, dict[str, int]]:
    test, values = _split_test(text)
    if test not in ATTRIBUTES:
        raise _Error(f"unknown test {test!r} in MatchPoints")
    points: dict[str, int] = {}
    for name, value in values.items():
        if name not in ATTRIBUTES[test] or not value.isdigit() or int(value) <= 0:
            raise _Error(f"bad weight {name}={value} for {test}")
        points[name] = int(value)
    return test, points


def _split_test(text: str) -> tuple[str, dict[str, str]]:
    """``T1(R=Y%DF=N)`` -> ("T1", {"R": "Y", "DF": "N"}); an empty value stays "" (``Q=``)."""
    open_at = text.find("(")
    if open_at <= 0 or not text.endswith(")"):
        raise _Error(f"not a test line: {text!r}")
    name, body = text[:open_at], text[open_at + 1:-1]
    values: dict[str, str] = {}
    if body:
        for part in body.split("%"):
            key, eq, value = part.partition("=")
            if not eq or not key or key in values:
                raise _Error(f"bad attribute {part!r} in {name}")
            values[key] = value
    return name, values


def _reference_test(text: str) -> tuple[str, dict[str, str]]:
    test, values = _split_test(text)
    attributes = ATTRIBUTES.get(test)
    if attributes is None:
        raise _Error(f"unknown test {test!r}")
    if "R" not in attributes and values == {"R": "N"}:
        return test, {}  # no answer to a test that has no R: nothing to compare
    unknown = [k for k in values if k not in attributes]
    if unknown:
        raise _Error(f"unknown attribute {unknown[0]!r} in {test}")
    if "R" in attributes:
        if set(values) <= {"R"}:
            values = {"R": "N"}
        elif "R" not in values:
            values = {"R": "Y", **values}
        elif "Y" not in values["R"]:
            raise _Error(f"{test} has values but R={values['R']}")
    return test, values


def _class_line(text: str) -> ReferenceClass:
    parts = text[len("Class "):].split("|")
    if len(parts) != 4:
        raise _Error("a Class line has four fields: vendor | family | generation | device type")
    vendor, family, generation, device = (p.strip() for p in parts)
    return ReferenceClass(vendor, family, generation or None, device)


def parse_os_db(text: str, path: str = "<string>") -> OsDatabase:
    """Parse the text of an nmap-os-db file; ValueError names the line that is wrong."""
    points: dict[str, dict[str, int]] | None = None
    references: list[Reference] = []
    current: Reference | None = None
    in_points = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        try:
            if not line or line.startswith("#") or line.startswith("This nmap-os-db"):
                if not line:
                    in_points = False
                continue
            if line == "MatchPoints":
                if points is not None:
                    raise _Error("a second MatchPoints")
                points, in_points, current = {}, True, None
            elif line.startswith("Fingerprint "):
                in_points = False
                current = Reference(line[len("Fingerprint "):].split("#")[0].strip(), number)
                references.append(current)
            elif in_points and points is not None:
                test, weights = _parse_points(line)
                points[test] = weights
            elif current is None:
                raise _Error("a line outside any Fingerprint record")
            elif line.startswith("Class "):
                current.classes.append(_class_line(line))
            elif line.startswith("CPE "):
                if not current.classes:
                    raise _Error("a CPE line before any Class line")
                last = current.classes[-1]
                cpe = line[4:].split()[0]
                current.classes[-1] = ReferenceClass(last.vendor, last.family, last.generation, last.device_type,
                                                     (*last.cpes, cpe))
            else:
                test, values = _reference_test(line)
                current.tests[test] = values
        except _Error as e:
            raise ValueError(f"{path}, line {number}: {e}") from None
    if points is None:
        raise ValueError(f"{path}: no MatchPoints section, so not an nmap-os-db file")
    return OsDatabase(path, points, references)


def _ours() -> str:
    return resources.files("leadline.data").joinpath("leadline-os-db").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=4)
def load_os_db(path: str | None = None) -> OsDatabase:
    """``--osdb``: "nmap" (nmap's file, which must be installed), "leadline" (ours), a path, or None.

    None prefers nmap's file when nmap is installed, as -sV prefers
    nmap's probe file, and falls back to ours.
    """
    if path in (None, "nmap") and os.path.exists(NMAP_OS_DB):
        return _read(NMAP_OS_DB)
    if path == "nmap":
        raise ValueError(f"--osdb nmap: {NMAP_OS_DB} is not installed")
    if path in (None, "leadline"):
        return parse_os_db(_ours(), "leadline-os-db")
    assert path is not None
    return _read(path)


def _read(path: str) -> OsDatabase:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"cannot read the OS database {path}: {e.strerror}") from None
    return parse_os_db(text, path)
