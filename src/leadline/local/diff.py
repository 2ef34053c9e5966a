"""``--diff A.json B.json``: what changed between two listings, e.g. before and after a firewall change.

Listening sockets are matched by protocol, address and port (a restarted
daemon has a new pid but is the same listener).  A line is printed for
each listener that appeared, went away, or whose exposure label, rule or
owner changed; the last line counts the unchanged ones.  The exit code
follows ndiff: 0 when nothing changed, 1 when something did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "diff_listings", "format_diff"]

Key = tuple[str, str, int]


@dataclass(frozen=True)
class Change:
    """One listener that differs between the two files."""

    mark: str  # "+" appeared, "-" went away, "~" changed
    key: Key
    before: str
    after: str


def _program(entry: Mapping[str, Any], names: Mapping[int, str]) -> str:
    pid = entry.get("pid")
    return "owner not visible" if pid is None else f"{names.get(pid, '?')} (pid {pid})"


def _state(entry: Mapping[str, Any]) -> str:
    seen = entry.get("exposure")
    if not seen:
        return "listening"
    rule = f" [{seen['rule_family']}: {seen['rule']}]" if seen.get("rule") else ""
    return f"{seen['label']} ({seen['detail']}){rule}"


def _listeners(document: Mapping[str, Any]) -> dict[Key, tuple[str, str]]:
    names = {p["pid"]: p["name"] for p in document.get("processes", [])}
    found: dict[Key, tuple[str, str]] = {}
    for entry in document["sockets"]:
        if entry.get("state") in ("LISTEN", "UNCONN"):
            key = (entry["protocol"], entry["local_address"], int(entry["local_port"]))
            found.setdefault(key, (_program(entry, names), _state(entry)))
    return found


def diff_listings(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[list[Change], int]:
    """The changes between two documents, and how many listeners stayed as they were."""
    old, new = _listeners(before), _listeners(after)
    changes: list[Change] = []
    same = 0
    for key in sorted(set(old) | set(new), key=lambda k: (k[2], k[0], k[1])):
        if key not in new:
            changes.append(Change("-", key, " ".join(old[key]), ""))
        elif key not in old:
            changes.append(Change("+", key, "", " ".join(new[key])))
        elif old[key][1] != new[key][1] or old[key][0].split(" (pid")[0] != new[key][0].split(" (pid")[0]:
            changes.append(Change("~", key, " ".join(old[key]), " ".join(new[key])))
        else:
            same += 1
    return changes, same


def format_diff(changes: list[Change], same: int, names: tuple[str, str]) -> str:
    """The changes as lines marked ``~``, ``-``, ``+``, under the two file names."""
    lines = [f"--- {names[0]}", f"+++ {names[1]}"]
    for change in changes:
        protocol, address, port = change.key
        where = f"{port}/{protocol} on {address}"
        if change.mark == "-":
            lines.append(f"- {where}: gone (was {change.before})")
        elif change.mark == "+":
            lines.append(f"+ {where}: new, {change.after}")
        else:
            lines.append(f"~ {where}: {change.before} -> {change.after}")
    lines.append(f"{same} listener{'s' if same != 1 else ''} unchanged")
    return "\n".join(lines) + "\n"
