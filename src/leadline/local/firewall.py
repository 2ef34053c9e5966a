"""Naming the firewall rule that keeps a probe from a listening port.

The rules are read as their own tools print them: ``iptables-save`` and
``ip6tables-save`` (rule family "iptables", whichever backend they use),
then ``nft list ruleset`` for rules written with nft itself (family
"nftables").  A rule matches when it drops or rejects and its protocol
and destination port cover the probe; failing that, a chain policy of
DROP is named.  The reading is textual and best-effort: a rule the
patterns do not understand is simply not named, and the label stays
"filtered" on the scan's evidence alone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Rule", "Rules", "find_rule", "read_rules"]

_TIMEOUT = 10.0
_VERDICT = re.compile(r"-j (DROP|REJECT)\b")
_IPT_PROTO = re.compile(r"-p (tcp|udp)\b")
_IPT_DPORT = re.compile(r"--dports? (\S+)")
_NFT_PORTS = re.compile(r"\b(tcp|udp|th) dport (\{[^}]*\}|\S+)")
_NFT_VERDICT = re.compile(r"\b(drop|reject)\b")


@dataclass(frozen=True)
class Rule:
    """A rule that stops a probe, as its tool prints it."""

    family: str  # "iptables" or "nftables"
    text: str


@dataclass(frozen=True)
class Rules:
    """Every rule line read, per family."""

    iptables: tuple[str, ...]  # iptables-save and ip6tables-save lines
    nftables: tuple[str, ...]  # nft list ruleset lines


def _run(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def read_rules(run: Callable[[Sequence[str]], str] = _run) -> Rules:
    """This namespace's rules, as far as they can be read (empty when the tools are missing or we are not root)."""
    ipt = (run(["iptables-save", "-t", "filter"]) + run(["ip6tables-save", "-t", "filter"])).splitlines()
    nft = run(["nft", "list", "ruleset"]).splitlines()
    return Rules(tuple(line.strip() for line in ipt if line.strip()), tuple(line.strip() for line in nft if line.strip()))


def _covers(spec: str, port: int, separator: str) -> bool:
    """Does a port list ("80,443", "8000:8100" for iptables, "{ 80, 8000-8100 }" for nft) cover the port?"""
    for piece in spec.strip("{} ").replace(" ", "").split(","):
        low, _, high = piece.partition(separator)
        if low.isdigit() and (high.isdigit() or not high) and int(low) <= port <= int(high or low):
            return True
    return False


def _iptables_rule(lines: Sequence[str], protocol: str, port: int) -> str | None:
    for line in lines:
        if not line.startswith("-A ") or not _VERDICT.search(line):
            continue
        proto = _IPT_PROTO.search(line)
        ports = _IPT_DPORT.search(line)
        if proto and proto.group(1) == protocol and ports and _covers(ports.group(1), port, ":"):
            return line
    for line in lines:  # a chain that drops everything not let in before
        if line.startswith(":INPUT DROP"):
            return line
    return None


def _nft_rule(lines: Sequence[str], protocol: str, port: int) -> str | None:
    for line in lines:
        if not _NFT_VERDICT.search(line):
            continue
        match = _NFT_PORTS.search(line)
        if match and match.group(1) in (protocol, "th") and _covers(match.group(2), port, "-"):
            return line
    for line in lines:
        if "hook input" in line and "policy drop" in line:
            return line
    return None


def find_rule(rules: Rules, protocol: str, port: int) -> Rule | None:
    """The rule that best explains why a probe to port/protocol did not get through."""
    found = _iptables_rule(rules.iptables, protocol, port)
    if found is not None:
        return Rule("iptables", found)
    found = _nft_rule(rules.nftables, protocol, port)
    return Rule("nftables", found) if found is not None else None
