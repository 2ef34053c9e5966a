"""What ``leadline local`` knows about this machine's sockets, as plain frozen data.

Every record is a NamedTuple, not a dataclass: a listing must start fast,
and importing ``dataclasses`` (with ``inspect`` and ``ast``) and building
the classes cost about 10 ms, a twentieth of a 10,000-socket listing.

A :class:`LocalSocket` is one process's hold on one socket: a socket
shared by a forked server's processes is listed once per holder, as ``ss
-p`` lists it.  States use ``ss``'s words (``LISTEN``,
``UNCONN``, ``ESTAB``, ``TIME-WAIT``...), so the listing reads like the
tool the course teaches.  Nothing here does I/O.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = ["EXPOSURE_LABELS", "LISTENING_STATES", "Exposure", "LocalSocket", "Owner", "ServiceNames", "Snapshot"]

LISTENING_STATES = frozenset({"LISTEN", "UNCONN"})
# exposed: the scan from outside reached it; filtered: a firewall dropped or
# rejected the probe; local-only: bound to loopback, nothing outside can reach
# it; untested: no probe could be sent (an IPv6-only socket: the probe
# namespace speaks IPv4 only).
EXPOSURE_LABELS = ("exposed", "filtered", "local-only", "untested")


class Owner(NamedTuple):
    """A process that holds sockets: what ``ss -p`` names, and more."""

    pid: int
    name: str
    user: str | None
    cmdline: tuple[str, ...]
    started: float | None  # epoch seconds; the kernel keeps no creation time per socket


class Exposure(NamedTuple):
    """What a scan from outside found for one listening socket."""

    label: str  # one of EXPOSURE_LABELS
    detail: str  # the evidence in a few words: "syn-ack", "no-response", "bound to 127.0.0.1"
    rule_family: str | None = None  # "iptables" or "nftables" when a matching rule was read
    rule: str | None = None  # the rule itself, as that tool prints it


class LocalSocket(NamedTuple):
    """One socket as one process holds it (pid None: owner not visible to us).

    A NamedTuple rather than a dataclass: a busy host has tens of
    thousands of these, and a tuple is built several times faster.
    """

    protocol: str  # "tcp" or "udp"
    family: int  # 4 or 6
    state: str  # ss's words
    local_address: str
    local_port: int
    remote_address: str | None = None
    remote_port: int | None = None
    pid: int | None = None
    fd: int | None = None
    service: str | None = None
    exposure: Exposure | None = None

    @property
    def listening(self) -> bool:
        return self.state in LISTENING_STATES

    @property
    def wildcard(self) -> bool:
        """Bound to every address of its family (0.0.0.0 or ::)."""
        return self.local_address in ("0.0.0.0", "::")

    @property
    def loopback(self) -> bool:
        """Bound to a loopback address, so only this host (namespace) can reach it."""
        import ipaddress  # here, not at the top: a plain listing never asks, and the import costs a millisecond

        try:
            address = ipaddress.ip_address(self.local_address.split("%")[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return bool((mapped or address).is_loopback)

    @property
    def port_label(self) -> str:
        return f"{self.local_port}/{self.protocol}"


class Snapshot(NamedTuple):
    """Every socket visible at one moment, with the processes that hold them."""

    sockets: tuple[LocalSocket, ...]
    owners: dict[int, Owner]
    privileged: bool = True  # False: other users' processes are hidden from us
    taken: float = 0.0  # epoch seconds
    note: str | None = None  # one line for the reader, e.g. why owners are missing


class ServiceNames(Protocol):
    """What naming needs from a services table (leadline.services.ServiceTable has it)."""

    def names(self, proto: str) -> dict[int, str]: ...
