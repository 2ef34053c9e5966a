"""Starting and stopping the lab's daemons: nginx and socat from the system.

A daemon is remembered by pid *and* start time (field 22 of /proc/<pid>/stat),
so stopping a lab after a crash or a reboot never signals an unrelated process
that happens to reuse a pid.  Readiness is read from /proc/<pid>/net, which
shows the sockets of the daemon's own namespace, so no probe leaves it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from leadline.errors import LabError
from leadline.lab.netns import in_namespace
from leadline.lab.topology import Service, ServiceKind

__all__ = [
    "RunningDaemon",
    "is_alive",
    "processes_in_namespace",
    "start_daemon",
    "start_time_of",
    "stop_processes",
    "wait_until_listening",
]

_TCP_LISTEN_STATE = "0A"
_UDP_UNCONNECTED_STATE = "07"


@dataclass(frozen=True, slots=True)
class RunningDaemon:
    """What `lab down` needs to stop a daemon and `lab status` to show it."""

    host: str
    kind: str
    port: int
    pid: int
    start_time: int
    program: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RunningDaemon:
        return cls(str(data["host"]), str(data["kind"]), int(str(data["port"])),
                   int(str(data["pid"])), int(str(data["start_time"])), str(data["program"]))


def start_time_of(pid: int) -> int | None:
    """The kernel's start time of a process in clock ticks, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields_after_name = stat.rsplit(")", 1)[1].split()
    if fields_after_name[0] == "Z":
        return None
    return int(fields_after_name[19])


def is_alive(daemon: RunningDaemon) -> bool:
    return start_time_of(daemon.pid) == daemon.start_time


def nginx_config(state_dir: Path, host: str, port: int, dual_stack: bool = False) -> Path:
    """Write an nginx configuration whose every path lies in the lab's state dir."""
    base = state_dir / f"nginx-{host}-{port}"
    base.mkdir(parents=True, exist_ok=True)
    page = f"leadline practice lab: {host}\\n"
    listen6 = f"\n        listen [::]:{port} reuseport ipv6only=on;" if dual_stack else ""
    text = f"""\
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    server_tokens on;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi;
    scgi_temp_path {base}/scgi;
    server {{
        listen {port} reuseport;{listen6}
        default_type text/plain;
        location / {{ return 200 "{page}"; }}
    }}
}}
"""
    path = base / "nginx.conf"
    path.write_text(text)
    return path


def banner_script(state_dir: Path, host: str, port: int, banner: str) -> Path:
    """A script that greets with one CRLF-ended line and then reads until the client leaves.

    A file keeps the banner away from socat's own parsing of quotes and colons.
    """
    path = state_dir / f"banner-{host}-{port}.sh"
    path.write_text(f"#!/bin/sh\nprintf '%s\\r\\n' {shlex.quote(banner)}\nexec cat >/dev/null\n")
    path.chmod(0o755)
    return path


def daemon_argv(service: Service, state_dir: Path, host: str, dual_stack: bool = False) -> list[str]:
    """The command line of the real program that provides a service.

    On a host with IPv6 addresses the service answers on both families
    (one IPv6 socket that also takes IPv4), as a real server would.
    """
    port = service.port
    tcp = f"TCP6-LISTEN:{port},ipv6only=0" if dual_stack else f"TCP4-LISTEN:{port}"
    udp = f"UDP6-RECVFROM:{port},ipv6only=0" if dual_stack else f"UDP4-RECVFROM:{port}"
    udp_recv = f"UDP6-RECV:{port},ipv6only=0" if dual_stack else f"UDP4-RECV:{port}"
    match service.kind:
        case ServiceKind.HTTP:
            config = nginx_config(state_dir, host, port, dual_stack)
            return ["nginx", "-p", str(config.parent), "-e", str(config.parent / "error.log"),
                    "-c", str(config), "-g", "daemon off;"]
        case ServiceKind.TCP_ECHO:
            return ["socat", f"{tcp},fork,reuseaddr", "PIPE"]
        case ServiceKind.TCP_OPEN:
            return ["socat", "-u", f"{tcp},fork,reuseaddr", "OPEN:/dev/null"]
        case ServiceKind.TCP_BANNER:
            script = banner_script(state_dir, host, port, service.banner)
            return ["socat", f"{tcp},fork,reuseaddr", f"EXEC:{script}"]
        case ServiceKind.UDP_ECHO:
            return ["socat", "-T", "1", f"{udp},fork", "PIPE"]
        case ServiceKind.UDP_LISTEN:
            return ["socat", "-u", udp_recv, "OPEN:/dev/null"]
        case ServiceKind.FTP_BOUNCE | ServiceKind.FTP_STRICT:
            from leadline.lab.ftpd import vsftpd_argv

            return vsftpd_argv(state_dir, host, port, service.kind is ServiceKind.FTP_BOUNCE)
        case ServiceKind.LEGACY_STACK:
            from leadline.lab.legacy import responder_argv

            return responder_argv(state_dir)
    from leadline.lab.udpservices import udp_daemon_argv

    argv = udp_daemon_argv(service, state_dir, host, dual_stack)
    if argv is not None:
        return argv
    raise LabError(f"unknown service kind {service.kind!r}")


def start_daemon(
    namespace: str, host: str, service: Service, state_dir: Path, dual_stack: bool = False
) -> RunningDaemon:
    """Start one daemon in the background inside a namespace."""
    argv = daemon_argv(service, state_dir, host, dual_stack)
    pid = spawn_detached(in_namespace(namespace, argv),
                         state_dir / f"{host}-{service.kind.value}-{service.port}.log")
    start = start_time_of(pid)
    if start is None:
        raise LabError(f"{argv[0]} for {host}:{service.port} exited at once")
    return RunningDaemon(host, service.kind.value, service.port, pid, start, program_name(argv))


def program_name(argv: list[str]) -> str:
    """The name /proc gives the daemon: for ``sh -c '... exec PROGRAM ...'``, the program exec'd."""
    if argv[:2] == ["sh", "-c"] and "exec " in argv[2]:
        return Path(shlex.split(argv[2].rsplit("exec ", 1)[1])[0]).name
    return Path(argv[0]).name


def spawn_detached(argv: list[str], log_path: Path) -> int:
    """Start argv as an orphan in its own session and return its pid.

    The lab outlives the process that built it, so daemons must not be our
    children: a shell starts them in the background, prints the pid and exits.
    """
    log = shlex.quote(str(log_path))
    script = f"{shlex.join(argv)} </dev/null >{log} 2>&1 & echo $!"
    done = subprocess.run(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL, start_new_session=True, check=False,
                          timeout=10)
    try:
        return int(done.stdout.decode().strip())
    except ValueError:
        raise LabError(f"could not start {argv[-1] if argv else 'a daemon'}") from None


def is_listening(daemon: RunningDaemon, protocol: str) -> bool:
    """Whether the daemon's namespace has a socket bound to the daemon's port.

    The legacy responder binds no port: it is ready once its packet socket exists.
    """
    if daemon.kind == ServiceKind.LEGACY_STACK.value:
        try:
            return len(Path(f"/proc/{daemon.pid}/net/packet").read_text().splitlines()) > 1
        except (FileNotFoundError, ProcessLookupError):
            return False
    table = "tcp" if protocol == "tcp" else "udp"
    wanted_state = _TCP_LISTEN_STATE if protocol == "tcp" else _UDP_UNCONNECTED_STATE
    lines: list[str] = []
    for suffix in ("", "6"):  # a dual-stack daemon's socket is listed in the IPv6 table
        try:
            lines += Path(f"/proc/{daemon.pid}/net/{table}{suffix}").read_text().splitlines()[1:]
        except (FileNotFoundError, ProcessLookupError):
            pass
    for line in lines:
        words = line.split()
        local_port = int(words[1].rsplit(":", 1)[1], 16)
        if local_port == daemon.port and words[3] == wanted_state:
            return True
    return False


def wait_until_listening(daemons: list[RunningDaemon], timeout: float = 5.0) -> None:
    """Wait, bounded, until every daemon has bound its port; LabError names a laggard."""
    waiting = list(daemons)
    deadline = time.monotonic() + timeout
    while waiting:
        waiting = [d for d in waiting if not is_listening(d, ServiceKind(d.kind).protocol)]
        for daemon in waiting:
            if not is_alive(daemon):
                raise LabError(f"{daemon.program} for {daemon.host}:{daemon.port} died at start "
                               "(see its log in the lab's state dir)")
        if waiting and time.monotonic() > deadline:
            first = waiting[0]
            raise LabError(f"{first.program} for {first.host}:{first.port} is not listening "
                           f"after {timeout:g} s")
        if waiting:
            time.sleep(0.02)


def stop_processes(targets: list[tuple[int, int]], grace: float = 2.0) -> None:
    """Stop (pid, start time) pairs: SIGTERM, a bounded wait, then SIGKILL."""
    living = [(pid, start) for pid, start in targets if start_time_of(pid) == start]
    for pid, _ in living:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while living and time.monotonic() < deadline:
        time.sleep(0.02)
        living = [(pid, start) for pid, start in living if start_time_of(pid) == start]
    for pid, _ in living:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def processes_in_namespace(inode: int) -> list[tuple[int, int]]:
    """(pid, start time) of every process whose network namespace has this inode."""
    wanted = f"net:[{inode}]"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") != wanted:
                continue
        except OSError:
            continue
        start = start_time_of(int(entry))
        if start is not None:
            found.append((int(entry), start))
    return found
