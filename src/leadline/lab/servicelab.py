"""A lab of real daemons for version detection: OpenSSH, nginx (plain and TLS), lighttpd, vsftpd, Redis,
memcached, dnsmasq, Mosquitto, PostgreSQL, a hostile service, and a trap address that must never hear from us.

Four namespaces (``<prefix>-scan``, ``-svc``, ``-hos``, ``-trap``) on one bridge inside the scanner's
namespace, addresses in 198.19.90.0/24 (benchmarking space, no route out).  ``service_lab()`` builds it,
starts every daemon from the Debian packages with configuration files written into a temporary
directory (nothing under /etc is read or changed), waits until each listens, and removes it all again.
PostgreSQL refuses to run as root: its cluster is made in that directory and run as the ``postgres``
account the Debian package creates.

The prefix is the caller's; ``lab_prefix()`` derives one from ``LEADLINE_SERVICE_LAB`` or the test
suite's ``LEADLINE_TEST_LAB``, so two checkouts can each run a service lab at once.

To join the practice lab, each daemon here becomes a ``ServiceKind`` in ``lab/topology.py`` with its
command line in ``daemons.daemon_argv`` (the config writers below are written to be called from there),
on a new practice host (e.g. 198.18.1.40 "services"), and the hostile service and the trap on two more.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from leadline.errors import LabError
from leadline.lab.hostile import HOSTILE_PORTS
from leadline.lab.daemons import processes_in_namespace, spawn_detached, start_time_of, stop_processes
from leadline.lab.netns import add_namespaces, delete_namespaces, in_namespace, namespace_inode, run_command

__all__ = ["HOSTILE", "SCANNER", "SERVICES", "SERVICE_PORTS", "TRAP", "ServiceLab", "lab_prefix", "service_lab"]

SCANNER = "198.19.90.1"
SERVICES = "198.19.90.10"
HOSTILE = "198.19.90.11"
TRAP = "198.19.90.20"
# port -> (protocol, program): what the service host runs.
SERVICE_PORTS: dict[int, tuple[str, str]] = {
    21: ("tcp", "vsftpd"), 22: ("tcp", "sshd"), 53: ("tcp", "dnsmasq"), 80: ("tcp", "nginx"),
    443: ("tcp", "nginx"), 1883: ("tcp", "mosquitto"), 6379: ("tcp", "redis-server"),
    5432: ("tcp", "postgres"), 8080: ("tcp", "lighttpd"), 11211: ("tcp", "memcached"),
}


def lab_prefix(role: str = "v") -> str:
    """The namespace prefix for a service lab: ``LEADLINE_SERVICE_LAB``, else the test lab's prefix plus ``role``."""
    explicit = os.environ.get("LEADLINE_SERVICE_LAB")
    if explicit:
        return explicit + (role if role != "v" else "")
    return os.environ.get("LEADLINE_TEST_LAB", "ls") + role


@dataclass
class ServiceLab:
    prefix: str
    state: Path
    pids: list[tuple[int, int]] = field(default_factory=list)

    @property
    def scanner_ns(self) -> str:
        return f"{self.prefix}-scan"

    def namespaces(self) -> list[str]:
        return [f"{self.prefix}-{n}" for n in ("scan", "svc", "hos", "trap")]

    def run_in_scanner(self, argv: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(in_namespace(self.scanner_ns, argv), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def trap_packets(self) -> int:
        """Packets from the scanner that reached the trap address (its INPUT counter)."""
        out = run_command(in_namespace(f"{self.prefix}-trap", ["iptables", "-nvxL", "INPUT"]))
        for line in out.splitlines():
            words = line.split()
            if len(words) >= 8 and words[7] == SCANNER:
                return int(words[0])
        raise LabError("the trap's counting rule is missing")


def _network(lab: ServiceLab) -> None:
    scan = lab.scanner_ns
    add_namespaces(lab.namespaces())
    run_command(["ip", "-n", scan, "link", "add", "br0", "type", "bridge"])
    run_command(["ip", "-n", scan, "addr", "add", f"{SCANNER}/24", "dev", "br0"])
    for name in ("br0", "lo"):
        run_command(["ip", "-n", scan, "link", "set", name, "up"])
    for short, address in (("svc", SERVICES), ("hos", HOSTILE), ("trap", TRAP)):
        ns = f"{lab.prefix}-{short}"
        run_command(["ip", "-n", scan, "link", "add", f"v{short}", "type", "veth", "peer", "name", "eth0",
                     "netns", ns])
        run_command(["ip", "-n", scan, "link", "set", f"v{short}", "master", "br0", "up"])
        run_command(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        for name in ("eth0", "lo"):
            run_command(["ip", "-n", ns, "link", "set", name, "up"])
    run_command(in_namespace(f"{lab.prefix}-trap", ["iptables", "-A", "INPUT", "-s", SCANNER, "-j", "DROP"]))


def _configs(d: Path) -> dict[str, list[str]]:
    """Each daemon's command line, its configuration written under ``d``."""
    for t in ("ed25519", "ecdsa", "rsa"):
        run_command(["ssh-keygen", "-q", "-N", "", "-t", t, "-f", str(d / f"ssh_host_{t}_key")])
    (d / "sshd_config").write_text(
        f"Port 22\nListenAddress {SERVICES}\nUsePAM no\nPidFile {d}/sshd.pid\n"
        + "".join(f"HostKey {d}/ssh_host_{t}_key\n" for t in ("ed25519", "ecdsa", "rsa")))
    run_command(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "tls.key"),
                 "-out", str(d / "tls.crt"), "-days", "30", "-subj", "/CN=services.lab/O=leadline lab",
                 "-addext", "subjectAltName=DNS:services.lab"])
    temp = "".join(f"{k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "nginx.conf").write_text(
        f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n access_log off;\n server_tokens on;\n{temp}"
        f" server {{ listen {SERVICES}:80; location / {{ return 200 'services lab\\n'; }} }}\n"
        f" server {{ listen {SERVICES}:443 ssl; ssl_certificate {d}/tls.crt; ssl_certificate_key {d}/tls.key;\n"
        f"   location / {{ return 200 'services lab over TLS\\n'; }} }}\n}}\n")
    (d / "www").mkdir()
    (d / "www" / "index.html").write_text("<html><title>lighttpd lab</title></html>\n")
    (d / "lighttpd.conf").write_text(
        f'server.document-root = "{d}/www"\nserver.port = 8080\nserver.bind = "{SERVICES}"\n'
        f'server.pid-file = "{d}/lighttpd.pid"\nserver.username = "nobody"\nserver.groupname = "nogroup"\n')
    empty = d / "vsftpd-empty"
    empty.mkdir(mode=0o755)
    (d / "vsftpd.conf").write_text(
        f"listen=YES\nlisten_ipv6=NO\nlisten_address={SERVICES}\nlisten_port=21\nbackground=NO\n"
        f"anonymous_enable=YES\nanon_root={empty}\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\n"
        "local_enable=NO\nwrite_enable=NO\n")
    (d / "mosquitto.conf").write_text(f"listener 1883 {SERVICES}\nallow_anonymous true\npid_file {d}/mosquitto.pid\n"
                                      "user root\n")
    return {
        "postgres": _postgres(d),
        "sshd": ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
        "nginx": ["nginx", "-p", str(d), "-e", str(d / "nginx-error.log"), "-c", str(d / "nginx.conf"),
                  "-g", "daemon off;"],
        "lighttpd": ["lighttpd", "-D", "-f", str(d / "lighttpd.conf")],
        "vsftpd": ["vsftpd", str(d / "vsftpd.conf")],
        "redis-server": ["redis-server", "--port", "6379", "--bind", SERVICES, "--protected-mode", "no",
                         "--save", "", "--appendonly", "no", "--dir", str(d)],
        "memcached": ["memcached", "-u", "nobody", "-l", SERVICES, "-p", "11211", "-U", "0"],
        "dnsmasq": ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", f"--listen-address={SERVICES}",
                    "--bind-interfaces", "--port", "53", f"--pid-file={d}/dnsmasq.pid", "--user=root"],
        "mosquitto": ["mosquitto", "-c", str(d / "mosquitto.conf")],
    }


def _postgres(d: Path) -> list[str]:
    """A fresh cluster under ``d``, owned by the unprivileged ``postgres`` account; the server's command line."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found or shutil.which("runuser") is None:
        raise LabError("PostgreSQL is not installed (Debian package postgresql)")
    server = found[-1]
    data, sock = d / "pgdata", d / "pgsock"
    d.chmod(0o755)  # the postgres account walks through to its own directories
    for path in (data, sock):
        path.mkdir(mode=0o700)
        shutil.chown(path, "postgres", "postgres")
    run_command(["runuser", "-u", "postgres", "--", str(Path(server).with_name("initdb")), "-D", str(data),
                 "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
    return ["runuser", "-u", "postgres", "--", server, "-D", str(data), "-c", f"listen_addresses={SERVICES}",
            "-c", "port=5432", "-c", f"unix_socket_directories={sock}", "-c", "fsync=off"]


def _start(lab: ServiceLab, ns: str, name: str, argv: list[str]) -> None:
    pid = spawn_detached(in_namespace(ns, argv), lab.state / f"{name}.log")
    start = start_time_of(pid)
    if start is None:
        raise LabError(f"{name} exited at once (see {lab.state}/{name}.log)")
    lab.pids.append((pid, start))


def _listening(ns: str) -> set[int]:
    out = run_command(in_namespace(ns, ["ss", "-Hltn"]))
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}


def _wait(ns: str, ports: set[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ports <= _listening(ns):
        if time.monotonic() > deadline:
            raise LabError(f"not listening in {ns} after {timeout:g} s: {sorted(ports - _listening(ns))}")
        time.sleep(0.05)


def _teardown(lab: ServiceLab) -> None:
    stop_processes(lab.pids)
    for ns in lab.namespaces():  # workers and children the daemons started
        inode = namespace_inode(ns)
        if inode is not None:
            stop_processes(processes_in_namespace(inode))
    delete_namespaces(lab.namespaces())


@contextmanager
def service_lab(prefix: str | None = None) -> Iterator[ServiceLab]:
    """Build the lab, yield it, and remove it (daemons, namespaces, files) whatever happens."""
    prefix = prefix or lab_prefix()
    with tempfile.TemporaryDirectory(prefix=f"leadline-{prefix}-") as tmp:
        lab = ServiceLab(prefix, Path(tmp))
        delete_namespaces(lab.namespaces())  # a lab left behind by a killed run
        try:
            _network(lab)
            svc = f"{prefix}-svc"
            for name, argv in _configs(lab.state).items():
                _start(lab, svc, name, argv)
            _start(lab, f"{prefix}-hos", "hostile", [sys.executable, "-m", "leadline.lab.hostile", HOSTILE, TRAP])
            _wait(svc, set(SERVICE_PORTS))
            _wait(f"{prefix}-hos", set(HOSTILE_PORTS.values()))
            yield lab
        finally:
            _teardown(lab)
