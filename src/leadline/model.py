"""The result model: what a scan found, in nmap's vocabulary.

Every engine produces these objects and every output reads only these
objects, so a new scan type or a new output format never needs to know
about the other side.  All types are frozen: a result, once emitted,
is a fact and is never edited in place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["HostResult", "HostStatus", "Hostname", "OsClass", "OsMatch", "OsResult", "OsSequences", "PortResult", "PortState", "Reason", "RunInfo", "RunStats", "ScanInfo", "ScanReport", "ScriptElement", "ScriptResult", "ServiceDetail", "Trace", "TraceHop"]


class PortState(str, enum.Enum):
    """The six port states nmap reports, spelled as nmap spells them."""

    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"
    UNFILTERED = "unfiltered"
    OPEN_FILTERED = "open|filtered"
    CLOSED_FILTERED = "closed|filtered"

    def __str__(self) -> str:
        return self.value


class Reason(str, enum.Enum):
    """Why a port or host got its state; the strings are nmap's ``reason`` values."""

    SYN_ACK = "syn-ack"
    SPLIT_HANDSHAKE_SYN = "split-handshake-syn"  # a bare SYN answered our SYN
    CONN_REFUSED = "conn-refused"
    RESET = "reset"
    NO_RESPONSE = "no-response"
    HOST_UNREACH = "host-unreach"
    NET_UNREACH = "net-unreach"
    PROTO_UNREACH = "proto-unreach"
    PORT_UNREACH = "port-unreach"
    ADMIN_PROHIBITED = "admin-prohibited"
    HOST_PROHIBITED = "host-prohibited"
    NET_PROHIBITED = "net-prohibited"
    NO_ROUTE = "no-route"  # ICMPv6 unreachable code 0
    BEYOND_SCOPE = "beyond-scope"  # ICMPv6 code 2
    REJECT_ROUTE = "reject-route"  # ICMPv6 code 6
    HOST_UNKNOWN = "host-unknown"
    NET_UNKNOWN = "net-unknown"
    ECHO_REPLY = "echo-reply"
    TIMESTAMP_REPLY = "timestamp-reply"
    MASK_REPLY = "addressmask-reply"
    ARP_RESPONSE = "arp-response"
    ND_RESPONSE = "nd-response"
    UDP_RESPONSE = "udp-response"
    TIME_EXCEEDED = "time-exceeded"
    USER_SET = "user-set"
    LOCALHOST = "localhost-response"
    UNKNOWN_RESPONSE = "unknown-response"
    IPID_CHANGE = "ipid-change"  # idle scan: the zombie's counter moved for this port
    NO_IPID_CHANGE = "no-ipid-change"  # idle scan: it did not

    def __str__(self) -> str:
        return self.value


class HostStatus(str, enum.Enum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PortResult:
    """The verdict for one port of one host.

    ``evidence`` holds human-readable lines describing the exchange that
    decided the state (used by ``--explain``); engines that keep no
    evidence leave it empty.
    """

    port: int
    protocol: str  # "tcp" | "udp" | "sctp"
    state: PortState
    reason: Reason
    reason_ttl: int | None = None
    service: str | None = None
    evidence: tuple[str, ...] = ()
    detail: ServiceDetail | None = None  # what version detection learned (-sV)
    scripts: tuple[ScriptResult, ...] = ()  # port scripts' results (-sC, --script)


@dataclass(frozen=True, slots=True)
class ServiceDetail:
    """Version detection's answer for one port, in the fields of nmap's ``<service>`` element."""

    name: str
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    hostname: str | None = None
    ostype: str | None = None
    devicetype: str | None = None
    tunnel: str | None = None  # "ssl" when the service spoke inside TLS
    method: str = "table"  # "probed" (a signature matched) | "table" (named from the port number)
    confidence: int = 3  # nmap's conf: 10 for a probed match, 3 from the table
    cpe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptElement:
    """One ``<elem key>`` (``value`` is text) or ``<table key>`` (``children``) of a script's structured output."""

    key: str | None
    value: str | None = None
    children: tuple[ScriptElement, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What one script reported: its text as shown under the port or host, and the same as a table."""

    id: str
    output: str
    elements: tuple[ScriptElement, ...] = ()


@dataclass(frozen=True, slots=True)
class OsClass:
    vendor: str
    family: str
    generation: str | None = None
    device_type: str | None = None
    accuracy: int = 0
    cpe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OsMatch:
    name: str
    accuracy: int  # percent
    classes: tuple[OsClass, ...] = ()
    line: int = 0  # where the record is in its database file


@dataclass(frozen=True, slots=True)
class OsSequences:
    """What OS detection learned about the host's sequences (nmap's "TCP Sequence Prediction" and friends)."""

    tcp_index: int | None = None  # difficulty index, from four SYN/ACKs
    tcp_difficulty: str | None = None  # "Good luck!", ...
    tcp_values: tuple[int, ...] = ()  # the ISNs
    ipid_class: str | None = None  # "All zeros", "Incremental", ...
    ipid_values: tuple[int, ...] = ()
    ts_class: str | None = None  # "1000HZ", "none returned (unsupported)", ...
    ts_values: tuple[int, ...] = ()
    lastboot: float | None = None  # epoch seconds, from the timestamp clock


@dataclass(frozen=True, slots=True)
class OsResult:
    """OS detection's guesses, best first, and the fingerprint they were made from.

    ``matches`` holds the perfect matches when there are some (``perfect``
    counts them), else the guesses within 10 points of the best.
    ``classes`` are the distinct classes behind them with their accuracy,
    ``class_perfect`` how many come from perfect matches.
    """

    matches: tuple[OsMatch, ...] = ()
    fingerprint: str | None = None  # nmap's OS:SCAN(...) form
    ports_used: tuple[PortResult, ...] = ()
    perfect: int = 0
    classes: tuple[OsClass, ...] = ()
    class_perfect: int = 0
    too_many: bool = False  # more perfect matches than can be told apart
    show_guesses: bool = False  # --osscan-guess, or conditions unfit for an exact match
    not_ideal: str | None = None  # why the fingerprint is not fit for an exact match (nmap's reasons)
    unreliable: bool = False  # no open and closed TCP port were found
    sequences: OsSequences | None = None
    ttl_hint: str | None = None  # leadline's hint from the initial TTL, e.g. "64 (Linux, macOS, BSD ...)"


@dataclass(frozen=True, slots=True)
class TraceHop:
    ttl: int
    address: str | None  # None: no answer at this TTL
    rtt: float | None = None  # seconds
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """The route to a host: the probe that was used and one hop per TTL.

    ``protocol`` is None for a host on our own link, which gets one hop and
    no probe (nmap's bare "TRACEROUTE" header).  Hops 1..``shared_hops``
    were learned while tracing ``shared_with`` and are the same for this
    host (nmap's "Hops 1-2 are the same as for ...").
    """

    protocol: str | None  # "tcp" | "udp" | "icmp" (ICMPv6 echo for an IPv6 host) | None
    port: int | None
    hops: tuple[TraceHop, ...] = ()
    shared_with: str | None = None
    shared_hops: int = 0


@dataclass(frozen=True, slots=True)
class Hostname:
    name: str
    kind: str  # "user" (given on the command line) | "PTR"


@dataclass(frozen=True, slots=True)
class HostResult:
    """Everything learned about one target address.

    ``ports`` lists every port scanned, whatever its state; outputs decide
    which to show and which to fold into a "Not shown" line.
    """

    address: str
    family: int  # 4 or 6
    status: HostStatus
    status_reason: Reason
    status_reason_ttl: int | None = None
    hostnames: tuple[Hostname, ...] = ()
    latency: float | None = None  # seconds, as measured by discovery or the scan
    ports: tuple[PortResult, ...] = ()
    mac: str | None = None
    mac_vendor: str | None = None
    start_time: float | None = None  # epoch seconds
    end_time: float | None = None
    other_addresses: tuple[str, ...] = ()  # resolved but not scanned
    timed_out: bool = False  # --host-timeout expired
    distance: int | None = None  # network hops, from OS detection or traceroute
    uptime: float | None = None  # seconds since boot, when OS detection could tell
    os: OsResult | None = None
    trace: Trace | None = None
    scripts: tuple[ScriptResult, ...] = ()  # host scripts' results
    warnings: tuple[str, ...] = ()
    interrupted: bool = False  # the run was interrupted before every port of this host was decided
    through: str | None = None  # the third party the ports were scanned through: nmap's line naming it
    scanned_by: str | None = None  # the cluster worker that scanned it (--cluster), e.g. "tcp://198.18.90.2:40211"

    @property
    def is_up(self) -> bool:
        return self.status is HostStatus.UP


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """One ``<scaninfo>`` line: which scan type covered which ports."""

    scan_type: str  # nmap's XML names: "connect", "syn", "fin", "xmas", "null", "ack", "window", "maimon", "udp"
    protocol: str  # "tcp" | "udp"
    numservices: int
    services: str  # nmap's compact spec, e.g. "1-1024,8080"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What is known when a run starts: enough to write every output's header."""

    args: str  # the command line as typed
    start_time: float  # epoch seconds
    version: str
    scaninfo: tuple[ScanInfo, ...] = ()
    verbosity: int = 0
    debugging: int = 0
    ping_only: bool = False  # -sn
    list_only: bool = False  # -sL
    service_scan: bool = False  # -sV ran: the VERSION column and nmap's closing note
    os_scan: bool = False  # -O ran: nmap's closing note


@dataclass(frozen=True, slots=True)
class RunStats:
    """What is known when a run ends."""

    end_time: float
    elapsed: float
    hosts_up: int
    hosts_down: int
    hosts_total: int
    exit: str = "success"  # "success" | "error" (interrupted)
    summary: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """A whole run, for API callers who want everything at once."""

    run: RunInfo
    hosts: tuple[HostResult, ...]
    stats: RunStats
    warnings: tuple[str, ...] = field(default=())

    def host(self, address: str) -> HostResult:
        for h in self.hosts:
            if h.address == address:
                return h
        raise KeyError(address)
