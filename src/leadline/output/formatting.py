"""Text pieces shared by the output sinks, so every format agrees.

Which ports a report folds into "Not shown", how a latency or a date is
spelled, how a port list is compressed: each is decided once here, with
nmap's rules, and the normal, grepable and XML sinks only lay it out.
"""

from __future__ import annotations

import math
import operator
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leadline.model import HostResult, Hostname, PortResult, PortState, RunStats

__all__ = [
    "FoldedGroup",
    "PortFolding",
    "clock_time",
    "compress_ports",
    "counted",
    "ctime_string",
    "display_name",
    "done_summary",
    "duration",
    "fold_ports",
    "fold_threshold",
    "has_possibly_open",
    "long_date",
    "named_address",
    "not_shown_line",
    "port_sort_key",
    "ptr_name",
    "reason_text",
    "scanning_text",
    "short_date",
    "sig_digits",
    "sort_ports",
    "user_name",
]

PROTOCOL_ORDER = {"tcp": 0, "udp": 1, "sctp": 2, "ip": 3}

# nmap's internal order of port states; ties between folded groups keep it.
STATE_ORDER = {
    PortState.CLOSED: 0,
    PortState.OPEN: 1,
    PortState.FILTERED: 2,
    PortState.UNFILTERED: 3,
    PortState.OPEN_FILTERED: 4,
    PortState.CLOSED_FILTERED: 5,
}

# A state with more ports than this is folded into "Not shown" (nmap's rule);
# each level of -v and three per level of -d multiply it.
FOLD_THRESHOLD = 25

# With --open only these states are listed; every other one is folded.
POSSIBLY_OPEN = frozenset({PortState.OPEN, PortState.OPEN_FILTERED, PortState.UNFILTERED})


def sig_digits(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` significant digits, as nmap prints latencies.

    0.00018 -> "0.00018", 0.000009 -> "0.0000090", 12.3 -> "12".
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def ctime_string(epoch: float) -> str:
    """nmap's long date, C's ctime() in local time: "Sun Nov 22 05:05:32 2026"."""
    return time.asctime(time.localtime(epoch))


def short_date(epoch: float) -> str:
    """The "Starting" line's date: "2026-11-22 05:05 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(epoch))


def long_date(epoch: float) -> str:
    """The "Scanned at" date: "2026-11-22 05:05:32 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def clock_time(epoch: float) -> str:
    """Hours and minutes, for "Initiating ... at 05:05"."""
    return time.strftime("%H:%M", time.localtime(epoch))


def duration(seconds: float) -> str:
    """H:MM:SS, as nmap's Stats and ETC lines spell a span."""
    whole = max(0, int(round(seconds)))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """"1 IP address" / "2 IP addresses"."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def done_summary(stats: RunStats) -> str:
    """"1 IP address (1 host up) scanned in 0.52 seconds", shared by all formats."""
    return (
        f"{counted(stats.hosts_total, 'IP address', 'IP addresses')} "
        f"({counted(stats.hosts_up, 'host')} up) scanned in {stats.elapsed:.2f} seconds"
    )


def compress_ports(ports: Iterable[int]) -> str:
    """Sorted ranges: [1, 2, 3, 5] -> "1-3,5"."""
    ordered = sorted(set(ports))
    pieces: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        pieces.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(pieces)


_PORT_NUMBER = operator.attrgetter("port")
_PROTOCOL = operator.attrgetter("protocol")
_STATE = operator.attrgetter("state")


def sort_ports(ports: Iterable[PortResult]) -> list[PortResult]:
    """Ports in nmap's order (see ``port_sort_key``), the common one-protocol case at C speed."""
    ordered = sorted(ports, key=_PORT_NUMBER)
    if len(set(map(_PROTOCOL, ordered))) > 1:
        ordered.sort(key=port_sort_key)
    return ordered


def port_sort_key(port: PortResult) -> int:
    """nmap lists TCP ports first, then UDP, then SCTP, each by number.

    One int, not a (protocol, port) tuple: a -p- scan sorts 65535 of these.
    """
    return PROTOCOL_ORDER.get(port.protocol, len(PROTOCOL_ORDER)) << 16 | port.port


def reason_text(reason: object, ttl: int | None) -> str:
    """"syn-ack" or "syn-ack ttl 64": connect scans, ARP and localhost have no TTL to show."""
    # A TTL of 0 is what the model holds for answers without one (ARP, localhost):
    # nmap leaves it out of the text, though its XML carries reason_ttl="0".
    return f"{reason} ttl {ttl}" if ttl else str(reason)


def user_name(host: HostResult) -> str | None:
    return _first_name(host.hostnames, "user")


def ptr_name(host: HostResult) -> str | None:
    return _first_name(host.hostnames, "PTR")


def _first_name(names: Sequence[Hostname], kind: str) -> str | None:
    for name in names:
        if name.kind == kind:
            return name.name
    return None


def display_name(host: HostResult) -> str:
    """"name (ip)" when the host has a name (the one typed wins), else the IP."""
    return named_address(user_name(host) or ptr_name(host), host.address)


def named_address(name: str | None, address: str) -> str:
    """"name (ip)", or the bare IP when there is no name."""
    return f"{name} ({address})" if name else address


def scanning_text(names: Sequence[str], per_host: int) -> str:
    """What -v prints under an "Initiating ... Scan" line, in nmap's words:
    "198.18.1.10 [1000 ports]", "localhost (127.0.0.1) [1 port]", "3 hosts [4 ports/host]".
    Discovery counts its probes per host as ports, as nmap does."""
    unit = f"port{'' if per_host == 1 else 's'}"
    if len(names) == 1:
        return f"{names[0]} [{per_host} {unit}]"
    return f"{len(names)} hosts [{per_host} {unit}/host]"


@dataclass(frozen=True, slots=True)
class FoldedGroup:
    """Ports of one state, protocol and reason that a report does not list."""

    state: PortState
    protocol: str
    reason: str
    ports: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ports)


@dataclass(frozen=True, slots=True)
class PortFolding:
    """How one host's ports split into listed rows and folded groups."""

    shown: tuple[PortResult, ...]
    folded: tuple[FoldedGroup, ...]  # largest group first
    total: int

    @property
    def folded_count(self) -> int:
        return sum(g.count for g in self.folded)

    def folded_states(self) -> list[tuple[PortState, int, list[FoldedGroup]]]:
        """Folded groups gathered by state, the state with most ports first."""
        by_state: dict[PortState, list[FoldedGroup]] = {}
        for group in self.folded:
            by_state.setdefault(group.state, []).append(group)
        gathered = [(state, sum(g.count for g in groups), groups) for state, groups in by_state.items()]
        gathered.sort(key=lambda item: (-item[1], STATE_ORDER[item[0]]))
        return gathered


def fold_threshold(verbosity: int, debugging: int = 0) -> int:
    """How many ports a state may have before it is folded."""
    if verbosity or debugging:
        return FOLD_THRESHOLD * (verbosity + 3 * debugging)
    return FOLD_THRESHOLD


_last_folding: tuple[object, tuple[bool, int, int], PortFolding] | None = None


def fold_ports(ports: Sequence[PortResult], *, open_only: bool = False, verbosity: int = 0, debugging: int = 0) -> PortFolding:
    """Split ports the way nmap does.

    Every sink folds the same host's ports in turn, so the last answer is
    kept and reused when the very same port tuple comes again with the
    same options (a -p- host has 65535 ports to fold).
    """
    global _last_folding
    options = (open_only, verbosity, debugging)
    if _last_folding is not None and _last_folding[0] is ports and _last_folding[1] == options:
        return _last_folding[2]
    folding = _fold_ports(ports, open_only=open_only, verbosity=verbosity, debugging=debugging)
    if isinstance(ports, tuple):  # immutable, so identity means the same contents
        _last_folding = (ports, options, folding)
    return folding


def _fold_ports(ports: Sequence[PortResult], *, open_only: bool, verbosity: int, debugging: int) -> PortFolding:
    """Split ports the way nmap does.

    Open ports are always listed.  With ``open_only`` every state but
    open, open|filtered and unfiltered is folded; otherwise a state is
    folded when it has more ports than :func:`fold_threshold`.  Above
    debugging level 2 nothing is folded.
    """
    ordered = sort_ports(ports)
    per_state = Counter(map(_STATE, ordered))
    limit = fold_threshold(verbosity, debugging)

    def folded(state: PortState) -> bool:
        if state is PortState.OPEN or debugging > 2:
            return False
        if open_only:
            return state not in POSSIBLY_OPEN
        return per_state[state] > limit

    fold = {state: folded(state) for state in per_state}  # decided once per state, not per port
    shown = tuple(p for p in ordered if not fold[p.state])
    groups: dict[tuple[PortState, str, str], list[int]] = {}
    for p in ordered:
        if fold[p.state]:
            groups.setdefault((p.state, p.protocol, p.reason.value), []).append(p.port)
    folded_groups = [FoldedGroup(state, proto, reason, tuple(nums)) for (state, proto, reason), nums in groups.items()]
    # nmap lists folded states by their port counts over all protocols (PortList::nextIgnoredState),
    # then a state's reasons by count, where its merge sort puts the later of two equal counts
    # first: for groups met in port order (TCP before UDP), the order by (-count, -first seen).
    first_seen = {id(g): index for index, g in enumerate(folded_groups)}
    folded_groups.sort(key=lambda g: (-per_state[g.state], STATE_ORDER[g.state], -g.count, -first_seen[id(g)]))
    return PortFolding(shown=shown, folded=tuple(folded_groups), total=len(ordered))


def not_shown_line(folding: PortFolding) -> str:
    """"Not shown: 97 closed tcp ports (conn-refused), 1 filtered tcp port (no-response)"."""
    parts = [f"{counted(g.count, f'{g.state} {g.protocol} port')} ({g.reason})" for g in folding.folded]
    return "Not shown: " + ", ".join(parts)


def has_possibly_open(host: HostResult) -> bool:
    """Whether --open lets this host into the report at all."""
    return any(p.state in POSSIBLY_OPEN for p in host.ports)
