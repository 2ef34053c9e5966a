"""Typed scan configuration: what the CLI parses into and the API accepts.

Values carry nmap's meanings.  Timing fields left as ``None`` take the
value of the chosen ``-T`` template, so an explicit flag always wins
over the template, as in nmap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadline.scantypes import ScanType

__all__ = ["TIMING_TEMPLATES", "DiscoveryProbe", "OutputSpec", "ScanConfig", "ScanType", "Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """Timing knobs; seconds throughout.  ``None`` means "no limit"."""

    initial_rtt_timeout: float
    min_rtt_timeout: float
    max_rtt_timeout: float
    max_retries: int
    scan_delay: float
    max_scan_delay: float
    min_parallelism: int
    max_parallelism: int | None
    host_timeout: float | None
    min_rate: float | None = None
    max_rate: float | None = None
    min_hostgroup: int = 1
    max_hostgroup: int | None = None


# nmap's documented -T template values (nmap(1), "Timing and performance").
TIMING_TEMPLATES: dict[int, Timing] = {
    0: Timing(300.0, 0.1, 10.0, 10, 300.0, 300.0, 1, 1, None),
    1: Timing(15.0, 0.1, 10.0, 10, 15.0, 15.0, 1, 1, None),
    2: Timing(1.0, 0.1, 10.0, 10, 0.4, 1.0, 1, 1, None),
    3: Timing(1.0, 0.1, 10.0, 10, 0.0, 1.0, 1, None, None),
    4: Timing(0.5, 0.1, 1.25, 6, 0.0, 0.01, 1, None, None),
    5: Timing(0.25, 0.05, 0.3, 2, 0.0, 0.005, 1, None, 900.0),
}

@dataclass(frozen=True, slots=True)
class OutputSpec:
    normal: str | None = None  # -oN
    xml: str | None = None  # -oX
    grepable: str | None = None  # -oG
    json: str | None = None  # -oJ
    save: bool = False  # --save (or --db, or LEADLINE_DB set): record the run in the scan history
    db: str | None = None  # --db URL; None: LEADLINE_DB, else the user's SQLite file
    diff_last: bool = False  # --diff-last: after the run, print what changed since the last run over the same targets


@dataclass(frozen=True, slots=True)
class DiscoveryProbe:
    """One host-discovery probe: kind in {"echo", "timestamp", "netmask", "syn", "ack", "udp", "arp", "nd", "connect"}."""

    kind: str
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScanConfig:
    """Everything that decides what a scan does."""

    targets: tuple[str, ...] = ()
    input_file: str | None = None  # -iL
    exclude: tuple[str, ...] = ()
    exclude_file: str | None = None
    ports: str | None = None  # -p, nmap syntax; None = default list
    top_ports: int | None = None  # --top-ports; -F sets 100
    exclude_ports: str | None = None
    sequential_ports: bool = False  # -r
    randomize_hosts: bool = False  # --randomize-hosts: shuffled in blocks of RANDOMIZE_BLOCK
    scan_types: tuple[ScanType, ...] = ()  # empty: the default for our privileges
    scanflags: int | None = None  # --scanflags, as TCP flag bits
    idle_zombie: str | None = None  # -sI ZOMBIE[:PROBEPORT]
    bounce_server: str | None = None  # -b [USER[:PASS]@]SERVER[:PORT]
    ping_only: bool = False  # -sn
    list_only: bool = False  # -sL
    skip_discovery: bool = False  # -Pn
    discovery_probes: tuple[DiscoveryProbe, ...] = ()  # empty: the default set
    disable_arp_ping: bool = False
    send_ip: bool = False
    dns: str = "default"  # "never" (-n) | "always" (-R) | "default"
    ipv6: bool = False  # -6
    privileged: bool | None = None  # None: decide from our uid; --privileged/--unprivileged set it
    template: int = 3
    timing: Timing = field(default_factory=lambda: TIMING_TEMPLATES[3])
    reason: bool = False
    open_only: bool = False
    verbosity: int = 0
    debugging: int = 0
    packet_trace: bool = False
    explain: bool = False
    pcap: str | None = None
    output: OutputSpec = field(default_factory=OutputSpec)
    args: str = ""  # the command line as typed, for output headers
    interactive: bool = False  # stdout is a terminal: show the progress line
    version_detection: bool = False  # -sV (and -A)
    version_intensity: int = 7  # --version-intensity; --version-light 2, --version-all 9
    version_trace: bool = False  # --version-trace
    versiondb: str | None = None  # --versiondb PATH (or "nmap"); None: leadline's own probe file
    scripts: tuple[str, ...] = ()  # --script expressions; -sC is ("default",)
    script_args: tuple[tuple[str, str], ...] = ()  # --script-args, in the order given
    os_detection: bool = False  # -O (and -A as root)
    aggressive: bool = False  # -A: OS detection and traceroute only where root allows them, as nmap does
    osscan_guess: bool = False  # --osscan-guess: show guesses even when the fingerprint is fit for an exact match
    osscan_limit: bool = False  # --osscan-limit: skip hosts without one open and one closed TCP port
    max_os_tries: int = 5  # --max-os-tries: rounds of OS probes per host at most
    osdb: str | None = None  # --osdb PATH|nmap|leadline; None: nmap's nmap-os-db when installed, else ours
    script_timeout: float | None = None  # --script-timeout: each script run's deadline (None: the phase's default)
    traceroute: bool = False  # --traceroute (and -A): the route to each host after the scan
    udp_data: bytes | None = None  # --data / --data-string / --data-length: every UDP probe carries these bytes
    nmap_payloads: bool = True  # read nmap's UDP payloads at run time when nmap is installed (--no-nmap-payloads: ours only)
    defeat_icmp_ratelimit: bool = False  # --defeat-icmp-ratelimit: unanswered UDP ports are closed|filtered, no waiting
    source_pool: tuple[str, ...] = ()  # --source-pool: our addresses to spread UDP probes over (ICMP limits are per source)
    shard: tuple[int, int, int] | None = None  # --shards I/N --seed S as (I, N, S): scan the I-th of N parts
    seed: int | None = None  # --seed: the key of the host permutation shards are cut from
    resume: str | None = None  # --resume FILE: continue the run whose XML or JSON output FILE is
    cluster: str | None = None  # --cluster tcp://HOST:PORT | local:N: scan on a Dask cluster
