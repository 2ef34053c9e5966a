"""The terminal view: a table per kind of socket, then one line per program.

The table's columns follow ``ss -tulpn`` (``Netid``, ``State``, local and
peer ``Address:Port``), with the service name and the process in words;
the closing lines group what each program holds, with runs of ports
folded (``20000-24999/tcp``) so ten thousand sockets still read in a
glance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from leadline.local.model import LISTENING_STATES, LocalSocket, Owner, Snapshot

__all__ = ["endpoint", "fold", "format_listing", "owner_text", "program_lines", "sort_key"]


def endpoint(address: str | None, port: int | None, family: int) -> str:
    """``127.0.0.1:53``, ``[::1]:53``; a peer that is not there is ``*``, as ss shows it."""
    if address is None or port is None:
        return "0.0.0.0:*" if family == 4 else "[::]:*"
    return f"[{address}]:{port}" if family == 6 else f"{address}:{port}"


def owner_text(pid: int | None, owners: dict[int, Owner]) -> str:
    """``sshd (pid 610, root)``; ``-`` when the owner is not visible."""
    if pid is None:
        return "-"
    owner = owners.get(pid)
    if owner is None:
        return f"pid {pid}"
    return f"{owner.name} (pid {pid}, {owner.user or 'uid ?'})"


def sort_key(item: LocalSocket) -> tuple[object, ...]:
    """Listeners first, then by protocol, port, family and addresses: the order of every output."""
    # By index, not by name: this runs once per socket, 10,000 times on a busy host.
    return (item[2] not in LISTENING_STATES, item[0], item[4], item[1], item[3], item[5] or "", item[6] or 0,
            item[7] or 0)


def fold(ports: Iterable[int]) -> str:
    """Runs of ports as ``a-b``: ``20000-24999,25001`` (what ``leadline.core.ports.compact`` writes).

    Written here rather than imported: ``core.ports`` imports ``dataclasses``,
    which a listing does not otherwise need (docs/local.md, Performance).
    """
    pieces: list[str] = []
    start = end = -2
    for port in sorted(set(ports)):
        if port != end + 1:
            if start >= 0:
                pieces.append(str(start) if start == end else f"{start}-{end}")
            start = port
        end = port
    if start >= 0:
        pieces.append(str(start) if start == end else f"{start}-{end}")
    return ",".join(pieces)


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _held(items: Sequence[LocalSocket]) -> str:
    """``53/udp, 53/tcp on 127.0.0.1 and ::1; 8080/tcp on 0.0.0.0``."""
    addresses: dict[tuple[str, int], set[str]] = defaultdict(set)
    for item in items:
        addresses[(item[0], item[4])].add(item[3])
    by_place: dict[tuple[str, ...], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for (protocol, port), bound in addresses.items():
        place = tuple(bound) if len(bound) == 1 else tuple(sorted(bound, key=lambda a: (":" in a, a)))
        by_place[place][protocol].append(port)
    parts = []
    for place, ports in sorted(by_place.items(), key=lambda kv: min(min(p) for p in kv[1].values())):
        held = ", ".join(f"{fold(ports[proto])}/{proto}" for proto in ("tcp", "udp") if proto in ports)
        parts.append(f"{held} on {_and(list(place))}")
    return "; ".join(parts)


def program_lines(items: Iterable[LocalSocket], owners: dict[int, Owner]) -> list[str]:
    """One line per process: what it listens on and how many connections it has."""
    listening: dict[int | None, list[LocalSocket]] = defaultdict(list)
    connected: dict[int | None, int] = defaultdict(int)
    for item in items:
        if item[2] in LISTENING_STATES:
            listening[item[7]].append(item)
        else:
            connected[item[7]] += 1
    lines = []
    for pid in sorted(set(listening) | set(connected), key=lambda p: (p is None, owners[p].name if p in owners else "", p or 0)):
        owner = owners.get(pid) if pid is not None else None
        who = "owner not visible" if pid is None else f"{owner.name} (pid {pid})" if owner else f"pid {pid}"
        held = _held(listening[pid]) if listening.get(pid) else "no listening socket"
        count = connected.get(pid, 0)
        tail = f"; {count} connection{'s' if count != 1 else ''}" if count else ""
        lines.append(f"{who}: {held}{tail}")
    return lines


def _rows(items: Sequence[LocalSocket], owners: dict[int, Owner]) -> list[tuple[str, ...]]:
    """The table's rows, header first; ``endpoint`` inlined, as this runs once per socket."""
    rows: list[tuple[str, ...]] = [("Netid", "State", "Local Address:Port", "Peer Address:Port", "Service", "Process")]
    append = rows.append
    named: dict[int | None, str] = {}
    for protocol, family, state, address, port, peer, peer_port, pid, _, service, _ in items:
        who = named.get(pid)
        if who is None:
            who = named[pid] = owner_text(pid, owners)
        if family == 6:
            local = f"[{address}]:{port}"
            remote = "[::]:*" if peer is None or peer_port is None else f"[{peer}]:{peer_port}"
        else:
            local = f"{address}:{port}"
            remote = "0.0.0.0:*" if peer is None or peer_port is None else f"{peer}:{peer_port}"
        append((protocol, state, local, remote, service or "-", who))
    return rows


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; the last one unpadded."""
    widths = [max(map(len, column)) for column in zip(*rows)][:-1]
    pattern = "".join(f"%-{width}s  " for width in widths) + "%s"
    return [(pattern % tuple(row)).rstrip() for row in rows]


def format_listing(snapshot: Snapshot, items: Sequence[LocalSocket], *, exposure: bool = False) -> str:
    """The whole terminal listing of the selected sockets."""
    ordered = sorted(items, key=sort_key)
    split = next((at for at, item in enumerate(ordered) if item[2] not in LISTENING_STATES), len(ordered))
    listening, connections = ordered[:split], ordered[split:]  # listeners sort first
    out = [f"leadline local: {len(listening)} listening, {len(connections)} connected or closing"]
    if snapshot.note:
        out.append(snapshot.note)
    if listening:
        rows = _rows(listening, snapshot.owners)
        if exposure:
            rows[0] += ("Exposure",)
            for at, item in enumerate(listening, 1):
                seen = item.exposure
                rows[at] += (f"{seen.label} ({seen.detail})" if seen else "-",)
        out += ["", *_table(rows)]
    if connections:
        out += ["", *_table(_rows(connections, snapshot.owners))]
    lines = program_lines(ordered, snapshot.owners)
    if lines:
        out += ["", *lines]
    return "\n".join(out) + "\n"
