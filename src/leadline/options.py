"""nmap's command line, parsed into a ScanConfig.

nmap's syntax does not fit argparse: scan types are glued to ``-s``
(``-sT``), discovery probes carry their ports glued on (``-PS22,80``),
``-T4`` and ``-v3`` take glued values, and long options may be written
with one dash (``-top-ports``).  So the grammar lives in one table here
and every error names the token that caused it in one line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Callable

from leadline.config import (
    TIMING_TEMPLATES,
    DiscoveryProbe,
    OutputSpec,
    ScanConfig,
    ScanType,
    Timing,
)
from leadline.errors import UsageError
from leadline.scantypes import kind_by_letter

TEMPLATE_WORDS = {"paranoid": 0, "sneaky": 1, "polite": 2, "normal": 3, "aggressive": 4, "insane": 5}

TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20, "ECE": 0x40, "CWR": 0x80}


@dataclass
class Parsed:
    """The result of parsing: the scan config plus CLI-only switches."""

    config: ScanConfig
    show_help: bool = False
    show_version: bool = False
    stats_every: float | None = None
    noninteractive: bool = False  # --noninteractive: no keyboard reading
    warnings: list[str] = field(default_factory=list)


def parse_time(token: str, option: str) -> float:
    """nmap's time values: seconds by default, or with ms/s/m/h suffix."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", token.strip())
    if not m:
        raise UsageError(f"invalid time '{token}' for {option}: use e.g. 500ms, 2s, 5m, 1h")
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def parse_int(token: str, option: str, low: int = 0, high: int | None = None) -> int:
    if not re.fullmatch(r"\d+", token.strip()):
        raise UsageError(f"invalid number '{token}' for {option}")
    value = int(token)
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise UsageError(f"value {value} for {option} is out of range ({bound})")
    return value


def parse_rate(token: str, option: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise UsageError(f"invalid rate '{token}' for {option}: packets per second expected") from None
    if value <= 0:
        raise UsageError(f"rate for {option} must be greater than 0, not '{token}'")
    return value


def parse_scanflags(token: str) -> int:
    """``--scanflags``: a number (``9``, ``0x12``) or flag names run together (``URGACKPSH``)."""
    t = token.strip().upper()
    if re.fullmatch(r"0X[0-9A-F]+|\d+", t):
        value = int(t, 0)
        if value > 0xFF:
            raise UsageError(f"invalid --scanflags '{token}': more than 8 bits")
        return value
    value = 0
    rest = t
    while rest:
        for name, bit in TCP_FLAG_BITS.items():
            if rest.startswith(name):
                value |= bit
                rest = rest[len(name):]
                break
        else:
            raise UsageError(f"invalid --scanflags '{token}': use flag names like SYNFIN or a number")
    return value


def parse_probe_ports(text: str, option: str) -> tuple[int, ...]:
    ports: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"invalid port list '{text}' for {option}")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if lo > hi or hi > 65535:
            raise UsageError(f"invalid port list '{text}' for {option}")
        ports.extend(range(lo, hi + 1))
    return tuple(ports)


# Options that take a value: long name -> handler(state, value).
Handler = Callable[["_State", str], None]


class _State:
    def __init__(self) -> None:
        self.cfg: dict[str, object] = {}
        self.timing: dict[str, object] = {}
        self.scan_types: list[ScanType] = []
        self.probes: list[DiscoveryProbe] = []
        self.targets: list[str] = []
        self.exclude: list[str] = []
        self.outputs: dict[str, str] = {}
        self.verbosity = 0
        self.debugging = 0
        self.template = 3
        self.fast = False  # -F, which nmap refuses without a port scan (--top-ports it allows)
        self.parsed = Parsed(config=ScanConfig())

    def fast_scan(self) -> None:
        """-F: the 100 most common ports."""
        self.cfg["top_ports"] = 100
        self.fast = True


def _set(key: str, convert: Callable[[str, str], object] | None = None) -> Handler:
    def handler(st: _State, value: str, _key: str = key) -> None:
        st.cfg[_key] = convert(value, "--" + _key.replace("_", "-")) if convert else value

    return handler


def _timing(key: str, convert: Callable[[str, str], object]) -> Handler:
    def handler(st: _State, value: str) -> None:
        st.timing[key] = convert(value, "--" + key.replace("_", "-"))

    return handler


def _template(st: _State, value: str) -> None:
    v = value.lower()
    if v in TEMPLATE_WORDS:
        st.template = TEMPLATE_WORDS[v]
    elif re.fullmatch(r"[0-5]", v):
        st.template = int(v)
    else:
        raise UsageError(f"invalid timing template '-T{value}': use -T0 .. -T5 or a name like aggressive")


def _output(kind: str) -> Handler:
    def handler(st: _State, value: str) -> None:
        if not value:
            raise UsageError(f"-o{kind} needs a file name ('-' for standard output)")
        if kind == "A":
            if value == "-":
                raise UsageError("-oA needs a base file name, not '-'")
            st.outputs.update({"N": value + ".nmap", "X": value + ".xml", "G": value + ".gnmap"})
        else:
            st.outputs[kind] = value

    return handler


def _ports(st: _State, value: str) -> None:
    _check_port_spec(value)
    st.cfg["ports"] = value


def _exclude(st: _State, value: str) -> None:
    st.exclude.extend(p for p in value.split(",") if p)


def _top_ports(st: _State, value: str) -> None:
    st.cfg["top_ports"] = parse_int(value, "--top-ports", 1, 65535)


def _stats_every(st: _State, value: str) -> None:
    st.parsed.stats_every = parse_time(value, "--stats-every")


def _scanflags(st: _State, value: str) -> None:
    st.cfg["scanflags"] = parse_scanflags(value)


def _idle_zombie(st: _State, value: str) -> None:
    """-sI ZOMBIE[:PROBEPORT]: the one scan letter that takes a value."""
    st.cfg["idle_zombie"] = value
    st.scan_types.append(ScanType.IDLE)


def _bounce_server(st: _State, value: str) -> None:
    """-b [USER[:PASS]@]SERVER[:PORT]: the FTP bounce scan through that server."""
    st.cfg["bounce_server"] = value
    st.scan_types.append(ScanType.BOUNCE)


def _scripts(st: _State, value: str) -> None:
    """--script (and -sC, as "default"): expressions add up; they are checked when the scan is planned."""
    before = st.cfg.get("scripts", ())
    st.cfg["scripts"] = (*(before if isinstance(before, tuple) else ()), value)


def _script_args(st: _State, value: str) -> None:
    from leadline.detect.scripts.select import parse_script_args

    before = st.cfg.get("script_args", ())
    args = dict(before if isinstance(before, tuple) else ())
    args.update(parse_script_args(value))
    st.cfg["script_args"] = tuple(args.items())


def _data_hex(st: _State, value: str) -> None:
    """--data: hex bytes, written 0xdeadbeef, deadbeef or \\xde\\xad (nmap's forms)."""
    text = value.strip()
    digits = text[2:] if text[:2].lower() == "0x" else text.replace("\\x", "").replace("\\X", "")
    if not digits or len(digits) % 2 or not re.fullmatch(r"[0-9a-fA-F]+", digits):
        raise UsageError(f"invalid --data '{value}': give hex bytes such as 0xdeadbeef or \\xde\\xad\\xbe\\xef")
    _set_data(st, bytes.fromhex(digits), "--data")


def _data_string(st: _State, value: str) -> None:
    _set_data(st, value.encode("utf-8"), "--data-string")


def _data_length(st: _State, value: str) -> None:
    length = parse_int(value, "--data-length", 0, 65400)
    import os

    _set_data(st, os.urandom(length), "--data-length")


def _set_data(st: _State, data: bytes, option: str) -> None:
    if len(data) > 65400:
        raise UsageError(f"{option} gives {len(data)} bytes; at most 65400 fit in a datagram")
    if "udp_data" in st.cfg:
        raise UsageError("only one of --data, --data-string and --data-length may be given")
    st.cfg["udp_data"] = data


def _source_pool(st: _State, value: str) -> None:
    """--source-pool ADDR,ADDR... or a CIDR block: our own addresses to spread UDP probes over."""
    import ipaddress

    addresses: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        try:
            if "/" in part:
                network = ipaddress.ip_network(part, strict=False)
                if network.num_addresses > 4096:
                    raise UsageError(f"--source-pool block '{part}' holds more than 4096 addresses")
                hosts = list(network.hosts()) or [network.network_address]
                addresses.extend(str(a) for a in hosts)
            else:
                addresses.append(str(ipaddress.ip_address(part)))
        except ValueError:
            raise UsageError(f"invalid --source-pool entry '{part}': give addresses or a CIDR block") from None
    st.cfg["source_pool"] = tuple(dict.fromkeys(addresses))


VALUE_OPTIONS: dict[str, Handler] = {
    "sI": _idle_zombie,
    "b": _bounce_server,
    "p": lambda st, value: _ports(st, value),
    "exclude-ports": _set("exclude_ports"),
    "top-ports": _top_ports,
    "iL": _set("input_file"),
    "exclude": _exclude,
    "excludefile": _set("exclude_file"),
    "T": _template,
    "min-rate": _timing("min_rate", parse_rate),
    "max-rate": _timing("max_rate", parse_rate),
    "max-retries": _timing("max_retries", lambda v, o: parse_int(v, o, 0, 50)),
    "host-timeout": _timing("host_timeout", parse_time),
    "scan-delay": _timing("scan_delay", parse_time),
    "max-scan-delay": _timing("max_scan_delay", parse_time),
    "min-parallelism": _timing("min_parallelism", lambda v, o: parse_int(v, o, 1, 100000)),
    "max-parallelism": _timing("max_parallelism", lambda v, o: parse_int(v, o, 1, 100000)),
    "min-rtt-timeout": _timing("min_rtt_timeout", parse_time),
    "max-rtt-timeout": _timing("max_rtt_timeout", parse_time),
    "initial-rtt-timeout": _timing("initial_rtt_timeout", parse_time),
    "min-hostgroup": _timing("min_hostgroup", lambda v, o: parse_int(v, o, 1, 1 << 20)),
    "max-hostgroup": _timing("max_hostgroup", lambda v, o: parse_int(v, o, 1, 1 << 20)),
    "oN": _output("N"),
    "oX": _output("X"),
    "oG": _output("G"),
    "oJ": _output("J"),
    "oA": _output("A"),
    "stats-every": _stats_every,
    "scanflags": _scanflags,
    "pcap": _set("pcap"),
    "version-intensity": lambda st, value: st.cfg.__setitem__(
        "version_intensity", parse_int(value, "--version-intensity", 0, 9)),
    "versiondb": _set("versiondb"),
    "script": _scripts,
    "script-args": _script_args,
    "script-timeout": _set("script_timeout", parse_time),
    "data": _data_hex,
    "data-string": _data_string,
    "data-length": _data_length,
    "source-pool": _source_pool,
    "db": lambda st, value: st.outputs.__setitem__("db", value),
    "max-os-tries": lambda st, value: st.cfg.__setitem__("max_os_tries", parse_int(value, "--max-os-tries", 1, 50)),
    "osdb": _set("osdb"),
    "shards": _set("shards_text"),
    "seed": lambda st, value: st.cfg.__setitem__("seed", parse_int(value, "--seed", 0, (1 << 63) - 1)),
    "resume": _set("resume"),
    "cluster": _set("cluster"),
}

FLAG_OPTIONS: dict[str, Callable[[_State], None]] = {
    "Pn": lambda st: st.cfg.__setitem__("skip_discovery", True),
    "sn": lambda st: st.cfg.__setitem__("ping_only", True),
    "sP": lambda st: st.cfg.__setitem__("ping_only", True),
    "sL": lambda st: st.cfg.__setitem__("list_only", True),
    "F": lambda st: st.fast_scan(),
    "r": lambda st: st.cfg.__setitem__("sequential_ports", True),
    "randomize-hosts": lambda st: st.cfg.__setitem__("randomize_hosts", True),
    "n": lambda st: st.cfg.__setitem__("dns", "never"),
    "R": lambda st: st.cfg.__setitem__("dns", "always"),
    "6": lambda st: st.cfg.__setitem__("ipv6", True),
    "reason": lambda st: st.cfg.__setitem__("reason", True),
    "open": lambda st: st.cfg.__setitem__("open_only", True),
    "packet-trace": lambda st: st.cfg.__setitem__("packet_trace", True),
    "explain": lambda st: st.cfg.__setitem__("explain", True),
    "privileged": lambda st: st.cfg.__setitem__("privileged", True),
    "unprivileged": lambda st: st.cfg.__setitem__("privileged", False),
    "disable-arp-ping": lambda st: st.cfg.__setitem__("disable_arp_ping", True),
    "send-ip": lambda st: st.cfg.__setitem__("send_ip", True),
    "send-eth": lambda st: None,
    "h": lambda st: setattr(st.parsed, "show_help", True),
    "help": lambda st: setattr(st.parsed, "show_help", True),
    "V": lambda st: setattr(st.parsed, "show_version", True),
    "version": lambda st: setattr(st.parsed, "show_version", True),
    "system-dns": lambda st: None,
    "noninteractive": lambda st: setattr(st.parsed, "noninteractive", True),
    "version-light": lambda st: st.cfg.__setitem__("version_intensity", 2),
    "version-all": lambda st: st.cfg.__setitem__("version_intensity", 9),
    "version-trace": lambda st: st.cfg.__setitem__("version_trace", True),
    "A": lambda st: _aggressive(st),
    "traceroute": lambda st: st.cfg.__setitem__("traceroute", True),
    "defeat-icmp-ratelimit": lambda st: st.cfg.__setitem__("defeat_icmp_ratelimit", True),
    "no-nmap-payloads": lambda st: st.cfg.__setitem__("nmap_payloads", False),
    "save": lambda st: st.outputs.__setitem__("save", "1"),
    "diff-last": lambda st: st.outputs.__setitem__("diff_last", "1"),
    "O": lambda st: st.cfg.__setitem__("os_detection", True),
    "osscan-guess": lambda st: st.cfg.__setitem__("osscan_guess", True),
    "fuzzy": lambda st: st.cfg.__setitem__("osscan_guess", True),
    "osscan-limit": lambda st: st.cfg.__setitem__("osscan_limit", True),
}


def _aggressive(st: _State) -> None:
    """-A: -sV -sC -O --traceroute (-O and --traceroute need root; the plan drops them without)."""
    st.cfg["version_detection"] = True
    st.cfg["os_detection"] = True
    st.cfg["aggressive"] = True
    st.cfg["scripts"] = ("default",)
    st.cfg["traceroute"] = True


# Dashes that are not '-' (en dash, em dash, minus sign, ...), as pasted from documents.
UNICODE_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")

# nmap's refusals, word for word, so a search for the message finds nmap's documentation.
NOT_WITH_SCAN_TYPES = "-sL and -sn (skip port scan) are not valid with any other scan types"
NO_PORTS_WITHOUT_SCAN = "You cannot use -F (fast scan) or -p (explicit port selection) when not doing a port scan"
ILLEGAL_PORTS = ("Your port specifications are illegal.  Example of proper form: "
                 '"-100,200-1024,T:3000-4000,U:60000-"')

# Discovery probe prefixes: -PS22,80 -PA80 -PU53 take optional glued ports.
PROBE_KINDS = {"E": "echo", "P": "timestamp", "M": "netmask", "S": "syn", "A": "ack", "U": "udp", "R": "arp", "Y": "sctp"}
DEFAULT_PROBE_PORTS = {"syn": (80,), "ack": (80,), "udp": (40125,)}


# nmap features a user may well type that leadline does not have yet: a line
# saying so beats "unrecognized option" for a flag nmap users know.
_WHAT_LEADLINE_DOES = ("leadline runs TCP port scans (-sT -sS -sF -sX -sN -sA -sW -sM), UDP scans (-sU), host discovery, "
                       "version detection (-sV), OS detection (-O), traceroute (--traceroute) and scripts (-sC, --script)")
NOT_YET_OPTIONS: dict[str, str] = {
}
NOT_YET_SCAN_LETTERS = {
    "O": "the IP protocol scan (-sO)",
    "Y": "the SCTP INIT scan (-sY)",
    "Z": "the SCTP COOKIE ECHO scan (-sZ)",
}


def _not_yet(what: str) -> UsageError:
    return UsageError(f"{what} is not implemented yet; {_WHAT_LEADLINE_DOES}")


def _scan_types(st: _State, letters: str, token: str) -> None:
    for ch in letters:
        kind = kind_by_letter(ch)
        if kind is not None:
            if not kind.implemented:
                raise _not_yet(f"the {kind.task.replace(' Scan', ' scan')} ({kind.flag})")
            if kind.scan_type is ScanType.IDLE:
                raise UsageError(f"'{token}': give the idle scan on its own, as -sI ZOMBIE[:PROBEPORT]")
            st.scan_types.append(kind.scan_type)
        elif ch == "V":
            st.cfg["version_detection"] = True
        elif ch == "C":  # -sC: the default scripts
            _scripts(st, "default")
        elif ch in ("n", "P"):
            st.cfg["ping_only"] = True
        elif ch == "L":
            st.cfg["list_only"] = True
        elif ch in NOT_YET_SCAN_LETTERS:
            raise _not_yet(NOT_YET_SCAN_LETTERS[ch])
        else:
            raise UsageError(f"unsupported scan type '{token}'")


def _discovery(st: _State, rest: str, token: str) -> None:
    kind = PROBE_KINDS.get(rest[:1])
    if kind is None or kind == "sctp":
        raise UsageError(f"unsupported host discovery option '{token}'")
    ports_text = rest[1:]
    if ports_text and kind in ("echo", "timestamp", "netmask", "arp"):
        raise UsageError(f"invalid host discovery option '{token}'")
    ports = parse_probe_ports(ports_text, token) if ports_text else DEFAULT_PROBE_PORTS.get(kind, ())
    st.probes.append(DiscoveryProbe(kind, ports))


def parse_args(argv: list[str]) -> Parsed:
    """Parse nmap-style arguments.  Raises UsageError with one line naming the bad token."""
    st = _State()
    i = 0
    only_targets = False
    while i < len(argv):
        token = argv[i]
        i += 1
        if not only_targets and token[:1] in UNICODE_DASHES:
            # A dash pasted from a handout or a word processor: nmap's own wording.
            raise UsageError(f"Unparseable option (dash, not '-') in argument {i}")
        if only_targets or not token.startswith("-") or token == "-":
            st.targets.append(token)
            continue
        if token == "--":
            only_targets = True
            continue
        body = token[2:] if token.startswith("--") else token[1:]
        name, eq, inline = body.partition("=")
        if not eq:
            inline = ""

        def take_value(opt: str) -> str:
            nonlocal i
            if eq:
                return inline
            if i >= len(argv):
                raise UsageError(f"option '{token}' needs a value")
            value = argv[i]
            i += 1
            return value

        if name in NOT_YET_OPTIONS:
            raise _not_yet(NOT_YET_OPTIONS[name])
        if name in FLAG_OPTIONS and not eq:
            FLAG_OPTIONS[name](st)
            continue
        if name in VALUE_OPTIONS:
            VALUE_OPTIONS[name](st, take_value(name))
            continue
        # Glued forms: -p22, -T4, -oNfile, -v3, -vv, -dd, -sT, -PS22
        if token.startswith("--"):
            raise UsageError(f"unrecognized option '{token}'")
        if body.startswith("s") and len(body) >= 2:
            _scan_types(st, body[1:], token)
            continue
        if body.startswith("P") and len(body) >= 2:
            _discovery(st, body[1:], token)
            continue
        if body.startswith("p") and len(body) > 1:
            _ports(st, body[1:])
            continue
        if body.startswith("T") and len(body) > 1:
            _template(st, body[1:])
            continue
        if body[:2] in ("oN", "oX", "oG", "oJ", "oA") and len(body) > 2:
            _output(body[1])(st, body[2:])
            continue
        if re.fullmatch(r"v+", body):
            st.verbosity += len(body)
            continue
        if re.fullmatch(r"v\d+", body):
            st.verbosity = int(body[1:])
            continue
        if re.fullmatch(r"d+", body):
            st.debugging += len(body)
            continue
        if re.fullmatch(r"d\d+", body):
            st.debugging = int(body[1:])
            continue
        if body.startswith("iL") and len(body) > 2:
            st.cfg["input_file"] = body[2:]
            continue
        # One-dash long options, as nmap allows (-top-ports 10, -reason).
        if name in FLAG_OPTIONS and not eq:
            FLAG_OPTIONS[name](st)
            continue
        raise UsageError(f"unrecognized option '{token}'")

    return _finish(st, argv)


def _check_hostgroups(timing: Timing) -> None:
    low, high = timing.min_hostgroup, timing.max_hostgroup
    if high is not None and low is not None and high < low:
        raise UsageError(f"Maximum host group size may not be set to less than the minimum size (currently {low})")


def _check_scan_combination(st: _State) -> None:
    """-sL and -sn exclude port scanning, as in nmap (same refusals, same words)."""
    cfg = st.cfg
    ping, listing = bool(cfg.get("ping_only")), bool(cfg.get("list_only"))
    if not (ping or listing):
        return
    if ping and listing:
        raise UsageError("-sn and -sL cannot be combined")
    if st.scan_types:
        raise UsageError(NOT_WITH_SCAN_TYPES)
    if cfg.get("ports") is not None or st.fast:
        raise UsageError(NO_PORTS_WITHOUT_SCAN)


def _check_shards(cfg: dict[str, object]) -> None:
    """--shards I/N needs --seed (as in ZMap): without it the shards of two machines would not agree."""
    text = cfg.pop("shards_text", None)
    if text is None:
        return
    from leadline.core.shards import parse_shard

    seed = cfg.get("seed")
    try:
        shard = parse_shard(str(text), seed if isinstance(seed, int) else None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cfg["shard"] = (shard.index, shard.count, shard.seed)


def _check_cluster(spec: object) -> None:
    """--cluster tcp://HOST:PORT (a running Dask scheduler) or local:N (N worker processes here)."""
    if spec is None:
        return
    text = str(spec)
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise UsageError(f"--cluster local:N needs N from 1 to 256, not '{count}'")
    elif not re.fullmatch(r"(tcp|tls)://[^\s/]+:\d+", text):
        raise UsageError(f"--cluster takes tcp://HOST:PORT or local:N, not '{text}'")


def _check_port_spec(spec: str) -> None:
    """A -p value that is plainly no port list (an address typed where the ports go): nmap's refusal.

    Names (``http``, ``http*``) are checked later against the services table.
    """
    if re.fullmatch(r"[\d.]+|[\da-fA-F:]*:[\da-fA-F:]*:[\da-fA-F:]*(/\d+)?|[\d.]+/\d+", spec) and (
        "." in spec or spec.count(":") >= 2
    ):
        raise UsageError(ILLEGAL_PORTS)


def port_warnings(config: ScanConfig, tcp_ports: int, udp_scan: bool) -> list[str]:
    """nmap's warnings about the ports chosen, once they are known (``tcp_ports`` many TCP ports)."""
    warnings: list[str] = []
    spec = config.ports or ""
    if re.search(r"(^|,)\s*U:", spec) and not udp_scan:
        warnings.append("WARNING: Your ports include \"U:\" but you haven't specified UDP scan with -sU.")
    port_scan = not (config.ping_only or config.list_only)
    tcp_scan = port_scan and (not config.scan_types or any(t.protocol == "tcp" for t in config.scan_types))
    if tcp_scan and tcp_ports == 0:
        warnings.append("WARNING: a TCP scan type was requested, but no tcp ports were specified.  Skipping this scan type.")
    return warnings


def _finish(st: _State, argv: list[str]) -> Parsed:
    timing = replace(TIMING_TEMPLATES[st.template], **st.timing)  # type: ignore[arg-type]
    if timing.min_rtt_timeout > timing.max_rtt_timeout:
        raise UsageError("--min-rtt-timeout is greater than --max-rtt-timeout")
    if timing.min_rate and timing.max_rate and timing.min_rate > timing.max_rate:
        raise UsageError("--min-rate is greater than --max-rate")
    if timing.max_parallelism is not None and timing.min_parallelism > timing.max_parallelism:
        raise UsageError("--min-parallelism is greater than --max-parallelism")
    if timing.initial_rtt_timeout < timing.min_rtt_timeout:
        timing = replace(timing, initial_rtt_timeout=timing.min_rtt_timeout)
    if timing.initial_rtt_timeout > timing.max_rtt_timeout:
        timing = replace(timing, initial_rtt_timeout=timing.max_rtt_timeout)
    _check_hostgroups(timing)
    cfg = st.cfg
    _check_shards(cfg)
    _check_cluster(cfg.get("cluster"))
    _check_scan_combination(st)
    if ScanType.IDLE in st.scan_types and not cfg.get("skip_discovery"):
        raise UsageError("the idle scan (-sI) needs -Pn, as in nmap: without it host discovery would probe "
                         "the target from your own address, which the idle scan exists to avoid")
    tcp_raw = [t for t in st.scan_types if t.protocol == "tcp" and t.needs_root]
    if ScanType.CONNECT in st.scan_types and tcp_raw:
        raise UsageError("only one TCP scan type may be given (-sT cannot be combined with raw TCP scans)")
    if len(set(tcp_raw)) > 1:
        raise UsageError("only one TCP scan type may be given at a time")
    if "scanflags" in cfg and not st.scan_types:
        st.scan_types.append(ScanType.SYN)
    if "scanflags" in cfg and ScanType.CONNECT in st.scan_types:
        st.parsed.warnings.append("You have specified some options that require raw socket access.\n"
                                  "These options will not be honored for TCP Connect scan.")
    outputs = OutputSpec(
        normal=st.outputs.get("N"), xml=st.outputs.get("X"), grepable=st.outputs.get("G"), json=st.outputs.get("J"),
        save=any(k in st.outputs for k in ("save", "db", "diff_last")), db=st.outputs.get("db"),
        diff_last="diff_last" in st.outputs,
    )
    if [v for k, v in st.outputs.items() if k in "NXGJ"].count("-") > 1:
        raise UsageError("only one output format may be written to standard output")
    config = ScanConfig(
        targets=tuple(st.targets),
        exclude=tuple(st.exclude),
        scan_types=tuple(dict.fromkeys(st.scan_types)),
        discovery_probes=tuple(st.probes),
        template=st.template,
        timing=timing,
        verbosity=st.verbosity,
        debugging=st.debugging,
        output=outputs,
        args=" ".join(["leadline", *(shlex.quote(a) for a in argv)]),
        **cfg,  # type: ignore[arg-type]
    )
    st.parsed.config = config
    return st.parsed
