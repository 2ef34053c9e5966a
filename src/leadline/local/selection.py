"""Which sockets a listing shows: ``--listening``, ``--established``, ``-p``, ``--process``, ``-4``/``-6``.

Filters combine with AND, except ``--listening`` and ``--established``,
which together mean either.  ``-p`` takes leadline's port syntax
(``22,80``, ``1-1024``, ``U:53``, ``http*``) and matches a listener's port,
or either end of a connection.  ``--process`` matches a process name
(shell wildcards allowed, as in ``nginx*``) or a pid.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from leadline.core.ports import PortList
from leadline.local.model import LocalSocket, Owner

__all__ = ["Selection", "port_sets", "select"]


@dataclass(frozen=True)
class Selection:
    """The filters of one listing; the defaults keep everything."""

    listening: bool = False
    established: bool = False
    ports: Mapping[str, frozenset[int]] | None = None  # protocol -> ports; see port_sets
    process: str | None = None
    families: frozenset[int] = frozenset({4, 6})

    def _state_ok(self, item: LocalSocket) -> bool:
        if not (self.listening or self.established):
            return True
        return (self.listening and item.listening) or (self.established and item.state == "ESTAB")

    def _ports_ok(self, item: LocalSocket) -> bool:
        if self.ports is None:
            return True
        wanted = self.ports.get(item.protocol, frozenset())
        if item.local_port in wanted:
            return True
        return not item.listening and item.remote_port in wanted

    def _process_ok(self, item: LocalSocket, owners: dict[int, Owner]) -> bool:
        if self.process is None:
            return True
        if item.pid is None:
            return False
        if self.process.isdigit():
            return item.pid == int(self.process)
        owner = owners.get(item.pid)
        return owner is not None and fnmatch.fnmatchcase(owner.name, self.process)

    def keeps(self, item: LocalSocket, owners: dict[int, Owner]) -> bool:
        return (item.family in self.families and self._state_ok(item) and self._ports_ok(item)
                and self._process_ok(item, owners))


def port_sets(ports: PortList) -> dict[str, frozenset[int]]:
    """A parsed ``-p`` as sets, so matching 10,000 sockets against ``-p-`` stays cheap."""
    return {"tcp": frozenset(ports.tcp), "udp": frozenset(ports.udp)}


def select(sockets: Iterable[LocalSocket], selection: Selection, owners: dict[int, Owner]) -> list[LocalSocket]:
    """The sockets the selection keeps, in the order given."""
    return [item for item in sockets if selection.keeps(item, owners)]
