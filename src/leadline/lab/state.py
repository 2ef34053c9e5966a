"""What a running lab remembers on disk, so any later process can inspect or remove it.

The record is written *before* each step that creates something, so a lab
that crashed half-way still lists every namespace and daemon it may have
left behind, and `lab down` can remove exactly those.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from leadline.errors import LabError
from leadline.lab.daemons import RunningDaemon

__all__ = ["HostRecord", "LabRecord", "STATE_FILE", "load", "save"]

STATE_FILE = "state.json"


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host as built: enough for `lab status` without re-reading the topology."""

    name: str
    namespace: str
    role: str
    addresses: tuple[str, ...]


@dataclass(slots=True)
class LabRecord:
    prefix: str
    topology: str
    scanner: str
    namespaces: list[str]
    hosts: list[HostRecord]
    daemons: list[RunningDaemon] = field(default_factory=list)
    complete: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "prefix": self.prefix,
            "topology": self.topology,
            "scanner": self.scanner,
            "namespaces": self.namespaces,
            "hosts": [{"name": h.name, "namespace": h.namespace, "role": h.role,
                       "addresses": list(h.addresses)} for h in self.hosts],
            "daemons": [d.to_json() for d in self.daemons],
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LabRecord:
        hosts = [HostRecord(str(h["name"]), str(h["namespace"]), str(h["role"]),
                            tuple(str(a) for a in h["addresses"]))
                 for h in data["hosts"]]  # type: ignore[attr-defined]
        daemons = [RunningDaemon.from_json(d) for d in data["daemons"]]  # type: ignore[attr-defined]
        return cls(str(data["prefix"]), str(data["topology"]), str(data["scanner"]),
                   [str(n) for n in data["namespaces"]], hosts, daemons,  # type: ignore[attr-defined]
                   bool(data["complete"]))


def save(state_dir: Path, record: LabRecord) -> None:
    """Replace the record atomically, so a reader never sees half of it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(record.to_json(), indent=1))
    os.replace(temporary, state_dir / STATE_FILE)


def load(state_dir: Path) -> LabRecord | None:
    """The record of the lab in state_dir, or None when no lab was built there."""
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return LabRecord.from_json(data)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise LabError(f"{path} is damaged; remove the lab's namespaces with 'ip netns delete' "
                       "and then that directory") from None
