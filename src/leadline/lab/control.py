"""A lab as one object: build it, inspect it, run things in it, change its rules, remove it.

Everything a lab creates is named ``<prefix>-<host>`` and recorded under its
state dir (/run/leadline-lab/<prefix>/ unless told otherwise), so labs with
different prefixes live side by side and `down` removes exactly what `up`
made, even from another process or after a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from leadline.errors import LabError, PrivilegeError
from leadline.lab import builder, daemons, netns, state
from leadline.lab.practice import practice_topology
from leadline.lab.state import HostRecord, LabRecord
from leadline.lab.topology import Topology

__all__ = ["DaemonStatus", "HostStatus", "Lab", "LabStatus", "STATE_ROOT", "require_root"]

STATE_ROOT = "/run/leadline-lab"
NEEDS_ROOT = "the practice lab needs root (network namespaces); run as root"
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def require_root() -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(NEEDS_ROOT)


@dataclass(frozen=True, slots=True)
class HostStatus:
    name: str
    namespace: str
    role: str
    present: bool  # the namespace exists
    addresses: tuple[str, ...]  # as the kernel has them now


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    host: str
    kind: str
    port: int
    pid: int
    program: str
    alive: bool


@dataclass(frozen=True, slots=True)
class LabStatus:
    prefix: str
    state_dir: str
    topology: str  # "" when no lab is recorded
    complete: bool  # `up` finished
    hosts: tuple[HostStatus, ...]
    daemons: tuple[DaemonStatus, ...]

    @property
    def is_up(self) -> bool:
        """Built completely, every namespace present and every daemon alive."""
        return (self.complete and all(h.present for h in self.hosts)
                and all(d.alive for d in self.daemons))


class Lab:
    """One lab, identified by its prefix."""

    def __init__(self, prefix: str = "ll", state_dir: str | None = None) -> None:
        if not _PREFIX.match(prefix):
            raise LabError(f"bad lab prefix {prefix!r}: use 1-8 of [a-z0-9], starting with a letter")
        self.prefix = prefix
        self.state_dir = Path(state_dir) if state_dir else Path(STATE_ROOT) / prefix

    def namespace(self, host: str) -> str:
        return builder.namespace_name(self.prefix, host)

    @property
    def scanner(self) -> str:
        """The host scans run on."""
        record = state.load(self.state_dir)
        return record.scanner if record else "scanner"

    def up(self, topology: Topology | None = None) -> bool:
        """Build the lab; False when this topology is already up and healthy."""
        require_root()
        topology = topology or practice_topology()
        topology.validate()
        previous = state.load(self.state_dir)
        if previous is not None:
            if _same_build(previous, topology) and self.status().is_up:
                return False
            self.down()
        wanted = builder.all_namespaces(topology, self.prefix)
        clash = sorted(set(wanted) & netns.namespaces())
        if clash:
            raise LabError(f"namespace {clash[0]} exists but is not part of lab {self.prefix!r}; "
                           f"remove it with 'ip netns delete {clash[0]}'")
        record = LabRecord(
            self.prefix, topology.name, topology.scanner, wanted,
            [HostRecord(h.name, self.namespace(h.name), h.role,
                        tuple(i.address for i in h.interfaces)) for h in topology.hosts])
        state.save(self.state_dir, record)
        try:
            builder.create_namespaces(topology, self.prefix)
            builder.create_links(topology, self.prefix)
            builder.configure(topology, self.prefix)
            builder.wait_until_forwarding(topology, self.prefix)
            self._start_daemons(topology, record)
        except BaseException:
            self.down()
            raise
        record.complete = True
        state.save(self.state_dir, record)
        return True

    def _start_daemons(self, topology: Topology, record: LabRecord) -> None:
        for host in topology.hosts:
            for service in host.services:
                dual_stack = any(i.address6 for i in host.interfaces)
                daemon = daemons.start_daemon(self.namespace(host.name), host.name, service,
                                              self.state_dir, dual_stack)
                record.daemons.append(daemon)
                state.save(self.state_dir, record)
        daemons.wait_until_listening(record.daemons)

    def down(self) -> bool:
        """Remove the lab: its daemons, any process left in its namespaces, the namespaces.

        False when there was nothing to remove.  Safe to repeat.
        """
        require_root()
        record = state.load(self.state_dir)
        if record is None:
            return False
        daemons.stop_processes([(d.pid, d.start_time) for d in record.daemons])
        inodes = [netns.namespace_inode(name) for name in record.namespaces]
        stragglers = [p for inode in inodes if inode is not None
                      for p in daemons.processes_in_namespace(inode)]
        daemons.stop_processes(stragglers, grace=1.0)
        netns.delete_namespaces(record.namespaces)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return True

    def status(self) -> LabStatus:
        require_root()
        record = state.load(self.state_dir)
        if record is None:
            return LabStatus(self.prefix, str(self.state_dir), "", False, (), ())
        present = netns.namespaces()
        hosts = []
        for host in record.hosts:
            exists = host.namespace in present
            found = netns.addresses(host.namespace) if exists else {}
            current = tuple(a for name in sorted(found) if name != "lo" for a in found[name])
            hosts.append(HostStatus(host.name, host.namespace, host.role, exists, current))
        running = tuple(DaemonStatus(d.host, d.kind, d.port, d.pid, d.program, daemons.is_alive(d))
                        for d in record.daemons)
        return LabStatus(self.prefix, str(self.state_dir), record.topology, record.complete,
                         tuple(hosts), running)

    def _existing_namespace(self, host: str) -> str:
        namespace = self.namespace(host)
        if namespace not in netns.namespaces():
            raise LabError(f"lab {self.prefix!r} has no host {host!r} (is the lab up?)")
        return namespace

    def run(self, host: str, argv: list[str], timeout: float = 30.0,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command in a host's namespace and capture its output (text)."""
        namespace = self._existing_namespace(host)
        return subprocess.run(netns.in_namespace(namespace, argv), capture_output=True, text=True,
                              timeout=timeout, check=check, stdin=subprocess.DEVNULL)

    def popen(self, host: str, argv: list[str], **options: object) -> subprocess.Popen[bytes]:
        """Start a command in a host's namespace; the caller waits for it."""
        namespace = self._existing_namespace(host)
        return subprocess.Popen(netns.in_namespace(namespace, argv), **options)  # type: ignore[call-overload]

    def set_sysctls(self, host: str, values: dict[str, str]) -> None:
        """Change a host's per-namespace sysctls, e.g. {"net.ipv4.icmp_ratelimit": "1000"}."""
        netns.set_sysctls(self._existing_namespace(host), values)

    # Firewall changes at run time.  Every rule carries the comment
    # "leadline:<tag>" so clear_rules can take back exactly what was added.

    def add_rule(self, host: str, chain: str, spec: list[str], tag: str, position: int = 1) -> None:
        """Insert one filter-table rule at a position of a chain (1: first)."""
        if not _TAG.match(tag):
            raise LabError(f"bad rule tag {tag!r}")
        namespace = self._existing_namespace(host)
        netns.iptables(namespace, ["-I", chain, str(position), *spec,
                                   "-m", "comment", "--comment", f"leadline:{tag}"])

    def drop_random(self, host: str, probability: float, chain: str = "INPUT",
                    tag: str = "loss") -> None:
        """Drop a random share of the packets through a chain: emulated packet loss."""
        if not 0.0 <= probability <= 1.0:
            raise LabError(f"bad drop probability {probability!r}: use 0..1")
        self.add_rule(host, chain, ["-m", "statistic", "--mode", "random",
                                    "--probability", f"{probability:.6f}", "-j", "DROP"], tag)

    def limit_rst(self, host: str, per_second: int, tag: str = "rst-limit") -> None:
        """Let a host send at most per_second TCP resets, as many real stacks do."""
        if per_second < 1:
            raise LabError(f"bad reset rate {per_second!r}: use at least 1 per second")
        rst = ["-p", "tcp", "--tcp-flags", "RST", "RST"]
        self.add_rule(host, "OUTPUT", [*rst, "-j", "DROP"], tag, position=1)
        self.add_rule(host, "OUTPUT", [*rst, "-m", "limit", "--limit", f"{per_second}/second",
                                       "--limit-burst", str(per_second), "-j", "ACCEPT"],
                      tag, position=1)

    def clear_rules(self, host: str, tag: str) -> int:
        """Delete the rules added with this tag; return how many there were."""
        namespace = self._existing_namespace(host)
        rules = netns.tagged_rules(namespace, f"leadline:{tag}")
        for words in rules:
            netns.iptables(namespace, ["-D", *words[1:]])
        return len(rules)


def _same_build(previous: LabRecord, topology: Topology) -> bool:
    """Whether a lab built earlier is this topology: same name, hosts, addresses and daemons.

    A topology that gained a host or a service since (a newer checkout) is rebuilt, not reused.
    """
    hosts = [(h.name, tuple(i.address for i in h.interfaces)) for h in topology.hosts]
    built = [(h.name, tuple(h.addresses)) for h in previous.hosts]
    services = {(h.name, s.kind.value, s.port) for h in topology.hosts for s in h.services}
    running = {(d.host, d.kind, d.port) for d in previous.daemons}
    return previous.topology == topology.name and hosts == built and services == running
