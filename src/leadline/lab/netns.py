"""Primitives over iproute2, iptables and sysctl, run as subprocesses.

Each function does one system change or query and turns a failure into a
LabError whose single line names the command and the kernel's complaint.
Namespaces are the named ones of ``ip netns`` (files under /run/netns).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from leadline.errors import LabError

__all__ = [
    "add_namespaces",
    "addresses",
    "delete_namespaces",
    "in_namespace",
    "ip_batch",
    "iptables",
    "link_states",
    "namespace_inode",
    "namespaces",
    "restore_filter_table",
    "run_command",
    "set_sysctls",
    "tagged_rules",
]

NETNS_DIR = "/run/netns"
COMMAND_TIMEOUT = 30.0


def run_command(argv: Sequence[str], stdin_text: str | None = None,
                timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a setup command; return its stdout or raise LabError with its stderr."""
    try:
        done = subprocess.run(list(argv), input=stdin_text, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{shlex.join(argv)} did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        complaint = (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]
        raise LabError(f"{shlex.join(argv)}: {complaint}")
    return done.stdout


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs argv inside a namespace (same pid: ip execs it)."""
    return ["ip", "netns", "exec", namespace, *argv]


def namespaces() -> set[str]:
    """Names of every namespace ``ip netns`` knows."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def namespace_inode(namespace: str) -> int | None:
    """The inode that identifies a namespace in /proc/<pid>/ns/net, or None."""
    try:
        return os.stat(os.path.join(NETNS_DIR, namespace)).st_ino
    except FileNotFoundError:
        return None


def ip_batch(lines: Iterable[str], namespace: str | None = None) -> None:
    """Run many ``ip`` commands in one process, stopping at the first failure."""
    script = "\n".join(lines)
    if not script:
        return
    argv = ["ip"] + (["-n", namespace] if namespace else []) + ["-batch", "-"]
    run_command(argv, stdin_text=script + "\n")


def add_namespaces(names: Iterable[str]) -> None:
    ip_batch(f"netns add {name}" for name in names)


def delete_namespaces(names: Iterable[str]) -> None:
    """Delete those of the named namespaces that exist."""
    present = namespaces()
    ip_batch(f"netns delete {name}" for name in names if name in present)


def set_sysctls(namespace: str, values: Mapping[str, str]) -> None:
    """Write sysctls inside a namespace, in the given order."""
    if values:
        settings = [f"{key}={value}" for key, value in values.items()]
        run_command(in_namespace(namespace, ["sysctl", "-q", "-w", *settings]))


def restore_filter_table(namespace: str, rules: Sequence[tuple[str, str]], family: int = 4) -> None:
    """Replace a namespace's IPv4 (or IPv6) filter table by (chain, spec) rules, all policies ACCEPT."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A {chain} {spec}" for chain, spec in rules]
    lines.append("COMMIT")
    program = "ip6tables-restore" if family == 6 else "iptables-restore"
    run_command(in_namespace(namespace, [program]), stdin_text="\n".join(lines) + "\n")


def iptables(namespace: str, arguments: Sequence[str], family: int = 4) -> str:
    """One iptables (or, for family 6, ip6tables) call inside a namespace."""
    program = "ip6tables" if family == 6 else "iptables"
    return run_command(in_namespace(namespace, [program, "-w", "5", *arguments]))


def tagged_rules(namespace: str, comment: str) -> list[list[str]]:
    """The filter-table rules carrying a comment, as ``iptables -S`` arguments."""
    found = []
    for line in iptables(namespace, ["-S"]).splitlines():
        words = shlex.split(line)
        if words[:1] == ["-A"] and _comment_of(words) == comment:
            found.append(words)
    return found


def _comment_of(words: list[str]) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[index + 1]
    return None


def addresses(namespace: str, family: int = 4) -> dict[str, list[str]]:
    """Interface name -> its IPv4 (or IPv6) addresses with prefix length, as the kernel has them."""
    table: dict[str, list[str]] = {}
    word = "inet6" if family == 6 else "inet"
    for line in run_command(["ip", "-n", namespace, f"-{family}", "-o", "addr", "show"]).splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == word:
            table.setdefault(words[1], []).append(words[3])
    return table


def link_states(namespace: str) -> dict[str, tuple[str, str | None]]:
    """Interface name -> (operstate, bridge port state or None) inside a namespace."""
    links = json.loads(run_command(["ip", "-n", namespace, "-d", "-j", "link", "show"]) or "[]")
    return {link["ifname"]: (link.get("operstate", ""),
                             link.get("linkinfo", {}).get("info_slave_data", {}).get("state"))
            for link in links}
