"""Target specifications: parse what the user typed, expand it lazily.

Accepted forms are nmap's: host names, IPv4 and IPv6 literals, CIDR
blocks (``198.18.0.0/15``, ``name/30``, ``2001:db8::/120``) and IPv4
octet ranges (``198.18.0-3.1-254``, ``198.18.0,3-5.1``, ``198.18.0.-``).

Invariants kept here:

* Expansion is lazy and O(1) in memory: ``0.0.0.0/0`` is four tuples of
  at most 256 octet values, never a list of addresses.  Any address of a
  block is reachable by index (``address_at``) without expanding it.
* Blocks include their network and broadcast addresses, as nmap does.
* Membership (``contains``) is O(1) per block, so exclusions never
  expand.
* No I/O: name resolution is a function the caller passes in.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from leadline.errors import TargetSpecError

__all__ = [
    "HostnameSpec",
    "Ipv4Ranges",
    "Ipv6Block",
    "Target",
    "TargetSpec",
    "in_share",
    "iter_targets",
    "parse_target_spec",
    "read_target_file",
    "reply_class",
]

Resolver = Callable[[str, int], list[str]]


def reply_class(address: str, count: int) -> int:
    """The share of ``count`` an address falls in: its value modulo ``count``.

    Work split by host (cluster tasks, raw-scan workers) gives each share its
    own capture, whose BPF filter computes the same for IPv4 sources.  Once
    per host of a big scan: inet_aton costs a tenth of ipaddress.
    """
    try:
        value = int.from_bytes(socket.inet_aton(address), "big")
    except OSError:
        value = int(ipaddress.ip_address(address.partition("%")[0]))
    return value % count


def in_share(address: str, share: tuple[int, int]) -> bool:
    """Whether ``address`` is in share ``share[0]`` of ``share[1]`` (see ``reply_class``)."""
    return reply_class(address, share[1]) == share[0]

_IPV4_RANGE_CHARS = re.compile(r"[0-9.,\-]+")
_HOSTNAME_CHARS = re.compile(r"[A-Za-z0-9._\-]+")
_OCTET_ITEM = re.compile(r"(\d+)|(\d*)-(\d*)")
_MAX_HOSTNAME = 253
_MAX_LABEL = 63


class Target(NamedTuple):
    """One address to scan; ``hostname`` is set when the user gave a name.

    A named tuple, not a dataclass: a list scan of a /8 makes 16.7 million
    of these, and a tuple is built in less than half the time.
    """

    address: str
    family: int  # 4 | 6
    hostname: str | None = None
    other_addresses: tuple[str, ...] = ()  # resolved for ``hostname`` but not scanned


_SHOWN_MAX = 80  # characters of a bad token echoed into the error line


def _fail(text: str, why: str) -> TargetSpecError:
    shown = text.encode("unicode_escape").decode("ascii")  # keep the message on one line
    if len(shown) > _SHOWN_MAX:
        shown = f"{shown[:_SHOWN_MAX]}... ({len(text)} characters)"
    return TargetSpecError(f"invalid target specification '{shown}': {why}")


def _octet_number(digits: str) -> int:
    """The digits as an octet value; anything longer than three digits maps past 255."""
    return int(digits) if len(digits) <= 3 else 256


class TargetSpec:
    """One parsed target token; ``count()`` tells how many addresses it covers."""

    text: str
    family: int

    def count(self) -> int:
        raise NotImplementedError


class Ipv4Ranges(TargetSpec):
    """IPv4 addresses as the product of four octet sets.

    A plain address, a CIDR block and an nmap octet range are all this
    shape, so one type covers every IPv4 form and membership is four set
    look-ups.
    """

    family = 4

    def __init__(self, text: str, octets: tuple[tuple[int, ...], ...]) -> None:
        self.text = text
        self.octets = octets  # four sorted tuples of distinct values 0..255
        self._octet_sets = tuple(frozenset(values) for values in octets)

    def count(self) -> int:
        total = 1
        for values in self.octets:
            total *= len(values)
        return total

    def addresses(self) -> Iterator[str]:
        """Every address in order, first octet slowest, as nmap lists them.

        The first three octets are formatted once per 256 addresses, the
        last from a table: this loop is most of a large list scan's work.
        """
        first, second, third, fourth = self.octets
        last = [str(d) for d in fourth]
        for a in first:
            for b in second:
                for c in third:
                    prefix = f"{a}.{b}.{c}."
                    yield from [prefix + d for d in last]

    def address_at(self, index: int) -> str:
        """The ``index``-th address of :meth:`addresses` without walking to it."""
        if not 0 <= index < self.count():
            raise IndexError(f"address index {index} out of range for '{self.text}'")
        parts: list[int] = []
        for values in reversed(self.octets):
            index, position = divmod(index, len(values))
            parts.append(values[position])
        return ".".join(str(part) for part in reversed(parts))

    def contains(self, address: str) -> bool:
        try:
            value = int(ipaddress.IPv4Address(address))
        except ValueError:
            return False
        return self.contains_value(value)

    def contains_value(self, value: int) -> bool:
        """Membership of an address given as an integer: four set look-ups."""
        first, second, third, fourth = self._octet_sets
        return (
            (value >> 24) & 0xFF in first
            and (value >> 16) & 0xFF in second
            and (value >> 8) & 0xFF in third
            and value & 0xFF in fourth
        )

    def values(self) -> Iterator[int]:
        """The addresses of :meth:`addresses` as integers."""
        for a, b, c, d in itertools.product(*self.octets):
            yield (a << 24) | (b << 16) | (c << 8) | d

    def __repr__(self) -> str:
        return f"Ipv4Ranges({self.text!r})"


class Ipv6Block(TargetSpec):
    """A contiguous IPv6 block: one address or a prefix."""

    family = 6

    def __init__(self, text: str, first: int, size: int, zone: str = "") -> None:
        self.text = text
        self.first = first
        self.size = size
        self.zone = zone  # "%eth0" for link-local literals, else ""

    def count(self) -> int:
        return self.size

    def addresses(self) -> Iterator[str]:
        for index in range(self.size):
            yield self.address_at(index)

    def address_at(self, index: int) -> str:
        if not 0 <= index < self.size:
            raise IndexError(f"address index {index} out of range for '{self.text}'")
        return f"{ipaddress.IPv6Address(self.first + index)}{self.zone}"

    def contains(self, address: str) -> bool:
        try:
            value = int(ipaddress.IPv6Address(address.partition("%")[0]))
        except ValueError:
            return False
        return self.contains_value(value)

    def contains_value(self, value: int) -> bool:
        return self.first <= value < self.first + self.size

    def values(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.size))

    def __repr__(self) -> str:
        return f"Ipv6Block({self.text!r})"


NetworkSpec = Ipv4Ranges | Ipv6Block


class HostnameSpec(TargetSpec):
    """A name, optionally with a prefix length; its addresses exist only after resolution."""

    def __init__(self, text: str, name: str, prefix: int | None, family: int) -> None:
        self.text = text
        self.name = name
        self.prefix = prefix
        self.family = family

    def count(self) -> int:
        if self.prefix is None:
            return 1
        return 1 << ((32 if self.family == 4 else 128) - self.prefix)

    def block(self, address: str) -> NetworkSpec:
        """The addresses this spec means once ``name`` resolved to ``address``."""
        if self.family == 4:
            return _ipv4_ranges(self.text, str(ipaddress.IPv4Address(address)), self.prefix)
        return _ipv6_block(self.text, address, self.prefix)

    def __repr__(self) -> str:
        return f"HostnameSpec({self.text!r})"


def _octet_values(text: str, part: str) -> tuple[int, ...]:
    """One octet of a range spec: ``5``, ``1-254``, ``-9``, ``250-``, ``-`` or a comma list of these."""
    chosen: set[int] = set()
    for item in part.split(","):
        match = _OCTET_ITEM.fullmatch(item)
        if not item or match is None:
            raise _fail(text, f"bad octet '{part}'")
        single, low_text, high_text = match.groups()
        if single is not None:
            low = high = _octet_number(single)
        else:
            low = _octet_number(low_text) if low_text else 0
            high = _octet_number(high_text) if high_text else 255
        if low > 255 or high > 255:
            raise _fail(text, f"octet '{item}' is above 255")
        if low > high:
            raise _fail(text, f"octet range '{item}' runs backwards")
        chosen.update(range(low, high + 1))
    return tuple(sorted(chosen))


def _widen(values: tuple[int, ...], host_bits: int) -> tuple[int, ...]:
    """Apply the host part of a netmask to one octet: each value becomes its whole sub-block."""
    if host_bits <= 0:
        return values
    if host_bits >= 8:
        return tuple(range(256))
    span = 1 << host_bits
    widened: set[int] = set()
    for value in values:
        base = value & ~(span - 1) & 0xFF
        widened.update(range(base, base + span))
    return tuple(sorted(widened))


def _parse_prefix(text: str, prefix_text: str, family: int) -> int:
    limit = 32 if family == 4 else 128
    if not (prefix_text.isascii() and prefix_text.isdigit()) or len(prefix_text) > 3 or int(prefix_text) > limit:
        raise _fail(text, f"netmask '/{prefix_text}' must be a number from 0 to {limit}")
    return int(prefix_text)


def _ipv4_ranges(text: str, body: str, prefix: int | None) -> Ipv4Ranges:
    parts = body.split(".")
    if len(parts) != 4:
        raise _fail(text, "an IPv4 address needs four dot-separated octets")
    octets = [_octet_values(text, part) for part in parts]
    if prefix is not None:
        host_bits = 32 - prefix
        for position in range(4):
            bits_in_octet = host_bits - 8 * (3 - position)
            octets[position] = _widen(octets[position], min(8, bits_in_octet))
    return Ipv4Ranges(text, tuple(octets))


def _ipv6_block(text: str, body: str, prefix: int | None) -> Ipv6Block:
    address_text, percent, zone = body.partition("%")
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise _fail(text, "not a valid IPv6 address") from None
    if percent and not zone:
        raise _fail(text, "empty IPv6 zone after '%'")
    zone_suffix = f"%{zone}" if percent else ""
    if prefix is None:
        return Ipv6Block(text, int(address), 1, zone_suffix)
    host_bits = 128 - prefix
    first = (int(address) >> host_bits) << host_bits
    return Ipv6Block(text, first, 1 << host_bits, zone_suffix)


def _check_hostname(text: str, name: str) -> None:
    if _HOSTNAME_CHARS.fullmatch(name) is None:
        bad = next(char for char in name if _HOSTNAME_CHARS.fullmatch(char) is None)
        raise _fail(text, f"character {bad!r} cannot appear in a host name")
    if len(name.rstrip(".")) > _MAX_HOSTNAME:
        raise _fail(text, f"host name longer than {_MAX_HOSTNAME} characters")
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    for label in labels:
        if not label:
            raise _fail(text, "empty label in host name")
        if len(label) > _MAX_LABEL:
            raise _fail(text, f"host name label longer than {_MAX_LABEL} characters")
    if len(labels) > 1 and labels[-1].isdigit():
        # No top-level domain is all digits (RFC 3696 s2), so this is a mistyped address or range.
        raise _fail(text, "not an IPv4 address, range or host name")


def parse_target_spec(text: str, *, ipv6: bool = False) -> TargetSpec:
    """Parse one target token.

    ``ipv6`` says which family a host name will resolve to, which sets the
    allowed prefix length on names; literals keep their own family and
    :func:`iter_targets` reports a family mismatch.
    """
    token = text.strip()
    if not token:
        raise _fail(text, "empty")
    body, slash, prefix_text = token.partition("/")
    if slash and not body:
        raise _fail(text, "nothing before '/'")
    if ":" in body:
        prefix = _parse_prefix(text, prefix_text, 6) if slash else None
        return _ipv6_block(text, body, prefix)
    if _IPV4_RANGE_CHARS.fullmatch(body):
        prefix = _parse_prefix(text, prefix_text, 4) if slash else None
        return _ipv4_ranges(text, body, prefix)
    _check_hostname(text, body)
    family = 6 if ipv6 else 4
    prefix = _parse_prefix(text, prefix_text, family) if slash else None
    return HostnameSpec(text, body, prefix, family)


def read_target_file(text: str) -> Iterator[str]:
    """Split ``-iL`` contents into tokens: whitespace-separated, ``#`` starts a comment."""
    for line in text.splitlines():
        yield from line.partition("#")[0].split()


def _family_mismatch_warning(spec: TargetSpec) -> list[str]:
    if spec.family == 6:
        return [f"{spec.text} looks like an IPv6 target specification -- you have to use the -6 option."]
    return [
        f"Warning: Hostname {spec.text} resolves, but not to any IPv6 address. Try scanning without -6",
        f'Failed to resolve "{spec.text}".',
    ]


def _resolve(name: str, family: int, resolve: Resolver, warn: Callable[[str], None]) -> list[str]:
    """Addresses of ``family`` for ``name``, normalised; warns as nmap does when there are none."""
    try:
        answers = resolve(name, family)
    except OSError:
        answers = []
    addresses: list[str] = []
    for answer in answers:
        bare, percent, zone = answer.partition("%")
        try:
            parsed = ipaddress.ip_address(bare)
        except ValueError:
            continue
        if parsed.version == family:
            addresses.append(f"{parsed}{percent}{zone}")
    if not addresses:
        if _resolves_in_the_other_family(name, family, resolve):
            wanted, hint = ("IPv6", "Try scanning without -6") if family == 6 else ("IPv4", "Try scanning with -6")
            warn(f"Warning: Hostname {name} resolves, but not to any {wanted} address. {hint}")
        warn(f'Failed to resolve "{name}".')
    return addresses


def _resolves_in_the_other_family(name: str, family: int, resolve: Resolver) -> bool:
    try:
        return bool(resolve(name, 4 if family == 6 else 6))
    except OSError:
        return False


def _load_exclusions(
    exclude: Iterable[str], family: int, resolve: Resolver, warn: Callable[[str], None]
) -> list[NetworkSpec]:
    blocks: list[NetworkSpec] = []
    for text in exclude:
        spec = parse_target_spec(text, ipv6=family == 6)
        if isinstance(spec, HostnameSpec):
            blocks.extend(spec.block(address) for address in _resolve(spec.name, family, resolve, warn))
        elif isinstance(spec, (Ipv4Ranges, Ipv6Block)) and spec.family == family:
            blocks.append(spec)
    return blocks


def iter_targets(
    specs: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    resolve: Resolver,
    ipv6: bool = False,
    warn: Callable[[str], None],
) -> Iterator[Target]:
    """Expand target tokens into :class:`Target` objects, lazily, in the order given.

    Exclusions are parsed (and their names resolved) now, so a bad
    ``--exclude`` fails before anything is scanned; the targets themselves
    are parsed and resolved only as the iterator reaches them.  A name
    that does not resolve is a warning, not an error, as in nmap.
    """
    family = 6 if ipv6 else 4
    exclusions = _load_exclusions(exclude, family, resolve, warn)
    return _expand(specs, exclusions, family, resolve, warn)


def _expand(
    specs: Iterable[str],
    exclusions: list[NetworkSpec],
    family: int,
    resolve: Resolver,
    warn: Callable[[str], None],
) -> Iterator[Target]:
    def kept(block: NetworkSpec) -> Iterator[str]:
        """The block's addresses minus the exclusions, tested as integers so no string is built for a skipped one."""
        if not exclusions:
            yield from block.addresses()
            return
        relevant = [exclusion for exclusion in exclusions if exclusion.family == block.family]
        format_address = _ipv6_formatter(block) if isinstance(block, Ipv6Block) else _format_ipv4
        for value in block.values():
            if not any(exclusion.contains_value(value) for exclusion in relevant):
                yield format_address(value)

    for text in specs:
        spec = parse_target_spec(text, ipv6=family == 6)
        if isinstance(spec, HostnameSpec):
            resolved = _resolve(spec.name, family, resolve, warn)
            if not resolved:
                continue
            first, others = resolved[0], tuple(resolved[1:])
            for address in kept(spec.block(first)):
                if address == first:
                    yield Target(address, family, hostname=spec.name, other_addresses=others)
                else:
                    yield Target(address, family)
            continue
        if spec.family != family:
            for line in _family_mismatch_warning(spec):
                warn(line)
            continue
        assert isinstance(spec, (Ipv4Ranges, Ipv6Block))
        for address in kept(spec):
            yield Target(address, family)


def _format_ipv4(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 0xFF}.{(value >> 8) & 0xFF}.{value & 0xFF}"


def _ipv6_formatter(block: Ipv6Block) -> Callable[[int], str]:
    return lambda value: f"{ipaddress.IPv6Address(value)}{block.zone}"


RANDOMIZE_BLOCK = 16384  # nmap's --randomize-hosts shuffles this many hosts at a time


def shuffled_in_blocks(targets: Iterable[Target], rng: random.Random, block: int = RANDOMIZE_BLOCK) -> Iterator[Target]:
    """``--randomize-hosts``: the targets in random order, read ``block`` at a time,
    so a /8 is shuffled without ever being held whole."""
    iterator = iter(targets)
    while chunk := list(itertools.islice(iterator, block)):
        rng.shuffle(chunk)
        yield from chunk

