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
from typing import TYPE_CHECKING, NamedTuple

from leadline.local.model import LISTENING_STATES, LocalSocket, Owner

if TYPE_CHECKING:
    from leadline.core.ports import PortList

__all__ = ["Selection", "port_sets", "select"]


class Selection(NamedTuple):
    """The filters of one listing; the defaults keep everything."""

    listening: bool = False
    established: bool = False
    ports: Mapping[str, frozenset[int]] | None = None  # protocol -> ports; see port_sets
    process: str | None = None
    families: frozenset[int] = frozenset({4, 6})


def port_sets(ports: PortList) -> dict[str, frozenset[int]]:
    """A parsed ``-p`` as sets, so matching 10,000 sockets against ``-p-`` stays cheap."""
    return {"tcp": frozenset(ports.tcp), "udp": frozenset(ports.udp)}


def _owned_by(pattern: str, owners: dict[int, Owner]) -> set[int]:
    """The pids a ``--process`` value names: a pid, or the processes whose name matches."""
    if pattern.isdigit():
        return {int(pattern)}
    return {pid for pid, owner in owners.items() if fnmatch.fnmatchcase(owner.name, pattern)}


def select(sockets: Iterable[LocalSocket], selection: Selection, owners: dict[int, Owner]) -> list[LocalSocket]:
    """The sockets the selection keeps, in the order given.

    One pass per filter that is set, each a plain comprehension: on a host
    with ten thousand sockets this is the difference that shows.
    """
    items = list(sockets)
    if selection.families != frozenset({4, 6}):
        items = [item for item in items if item.family in selection.families]
    if selection.listening or selection.established:
        listening, established = selection.listening, selection.established
        items = [item for item in items
                 if (listening and item.state in LISTENING_STATES) or (established and item.state == "ESTAB")]
    if selection.ports is not None:
        empty: frozenset[int] = frozenset()
        tcp, udp = selection.ports.get("tcp", empty), selection.ports.get("udp", empty)
        items = [item for item in items
                 if item.local_port in (tcp if item.protocol == "tcp" else udp)
                 or (item.state not in LISTENING_STATES and item.remote_port in (tcp if item.protocol == "tcp" else udp))]
    if selection.process is not None:
        pids = _owned_by(selection.process, owners)
        items = [item for item in items if item.pid in pids]
    return items
