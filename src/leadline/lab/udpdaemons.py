"""Command lines of the UDP server's discovery, routing, VPN and VoIP daemons.

Each is a real Debian package's daemon answering one of the UDP payloads
(``core/udppayloads.py``): dnsmasq's DHCP (static mode, it leases
nothing), rpcbind, samba's nmbd, ngtcp2's example QUIC server, strongSwan's
charon, FRR's ripd with zebra, miniupnpd, kamailio and avahi-daemon.

Everything they read or write is in the lab's state directory.  Three of
them (rpcbind, charon, avahi-daemon) keep a pid file or a control socket
at a fixed place under /run that no option moves, so two labs, or a copy
running on the machine, would refuse each other: they run with a
directory of the state dir mounted over /run.  ``ip netns exec`` gives
every process of a lab its own mount namespace whose mounts never reach
the machine's, so the mount is seen by that daemon alone.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from leadline.errors import LabError
from leadline.lab.topology import Service, ServiceKind

__all__ = ["RIP_ROUTE", "discovery_daemon_argv"]

# The route ripd offers.  Split horizon keeps a router from telling a neighbour
# about the network it shares with that neighbour, so without a route of its own
# ripd's answer to a request from the LAN would be empty, and it sends none.
RIP_ROUTE = "198.18.251.0/24"
_NIC = "eth0"  # the UDP server's one interface (the lab names a host's interfaces eth0, eth1, ...)


def _dir(state_dir: Path, name: str) -> Path:
    path = state_dir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _own_run(root: Path, argv: list[str], env: str = "") -> list[str]:
    """argv run with ``root`` mounted over /run (inside the daemon's own mount namespace).

    The shell ends in ``exec``, so the daemon keeps the pid the lab records
    (``lab/daemons.py`` names it after the program exec'd).
    """
    export = f"export {env} && " if env else ""
    return ["sh", "-c", f"mount --bind {shlex.quote(str(root))} /run && {export}exec {shlex.join(argv)}"]


def _dhcp(port: int, state_dir: Path, tag: str, address: str) -> list[str]:
    # "static": DHCP only for configured hosts (there are none), so it leases no address,
    # but it answers a DHCPINFORM from any host on the subnet of ``address``.
    return ["dnsmasq", "-k", "-C", "/dev/null", "--port=0", f"--dhcp-range={address},static",
            f"--dhcp-alternate-port={port},68", f"--dhcp-leasefile={state_dir / f'dhcp-{tag}.leases'}",
            f"--pid-file={state_dir / f'dhcp-{tag}.pid'}", "--user=root"]


def _rpcbind(state_dir: Path, tag: str) -> list[str]:
    return _own_run(_dir(state_dir, f"rpcbind-{tag}"), ["rpcbind", "-f"])


def _nmbd(port: int, state_dir: Path, tag: str, host: str) -> list[str]:
    base = _dir(state_dir, f"nmbd-{tag}")
    dirs = {name: _dir(base, name) for name in ("lock", "state", "cache", "pid", "private")}
    config = base / "smb.conf"
    config.write_text(
        f"[global]\nworkgroup = LEADLINE\nnetbios name = {host.upper()}\n"
        "local master = no\npreferred master = no\ndomain master = no\n"
        f"lock directory = {dirs['lock']}\nstate directory = {dirs['state']}\n"
        f"cache directory = {dirs['cache']}\npid directory = {dirs['pid']}\n"
        f"private dir = {dirs['private']}\nlog file = {base / 'log.%m'}\n")
    return ["nmbd", "--foreground", "--debug-stdout", "--no-process-group", f"--port={port}", "-s", str(config)]


def _quic(port: int, state_dir: Path, tag: str, host: str) -> list[str]:
    # A throwaway certificate: version negotiation happens before any TLS, but the server needs one to start.
    base = _dir(state_dir, f"quic-{tag}")
    key, cert = shlex.quote(str(base / "key.pem")), shlex.quote(str(base / "cert.pem"))
    script = (f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
              f"-subj /CN={host} -keyout {key} -out {cert} 2>/dev/null && "
              f"exec gtlsserver --quiet '*' {port} {key} {cert}")
    return ["sh", "-c", script]


def _charon(port: int, state_dir: Path, tag: str) -> list[str]:
    # No connection is configured: charon answers any IKE_SA proposal with NO_PROPOSAL_CHOSEN.
    root = _dir(state_dir, f"charon-{tag}")
    (root / "strongswan.conf").write_text(
        f"charon {{\n  port = {port}\n  install_routes = no\n"
        "  filelog {\n    stderr {\n      default = 1\n    }\n  }\n}\n")
    return _own_run(root, ["/usr/lib/ipsec/charon"], env="STRONGSWAN_CONF=/run/strongswan.conf")


def _ripd(port: int, state_dir: Path, tag: str) -> list[str]:
    # ripd learns the host's interfaces from zebra, so zebra starts first (and stays, in the background).
    # A passive interface would silence the answers too, so the periodic update is slowed to once an hour
    # instead: the lab's LAN hears ripd's multicast update at start and then rarely.
    base = _dir(state_dir, f"frr-{tag}")
    (base / "zebra.conf").write_text("")
    (base / "ripd.conf").write_text(
        f"router rip\n network {_NIC}\n route {RIP_ROUTE}\n timers basic 3600 10800 7200\n")
    try:
        for path in (base, base / "zebra.conf", base / "ripd.conf"):
            shutil.chown(path, "frr", "frr")  # FRR's daemons drop to the frr user
    except LookupError:
        raise LabError("FRR is not installed (no frr user): apt-get install frr") from None
    api = shlex.quote(str(base / "zserv.api"))
    common = f"-z {api} --vty_socket {shlex.quote(str(base))} -P 0 -u frr -g frr"
    zebra = f"/usr/lib/frr/zebra -d -f {base / 'zebra.conf'} -i {base / 'zebra.pid'} {common}"
    ripd = f"/usr/lib/frr/ripd -f {base / 'ripd.conf'} -i {base / 'ripd.pid'} {common}"
    wait = f"for i in $(seq 200); do [ -S {api} ] && break; sleep 0.05; done"
    return ["sh", "-c", f"{zebra} && {wait}; exec {ripd}"]


def _miniupnpd(state_dir: Path, tag: str) -> list[str]:
    # SSDP is always port 1900.  No port mapping is allowed; the HTTP port is fixed so scans see the same host twice.
    config = state_dir / f"miniupnpd-{tag}.conf"
    config.write_text(
        f"ext_ifname=lo\nlistening_ip={_NIC}\nhttp_port=2869\nenable_natpmp=no\nsecure_mode=yes\n"
        "notify_interval=900\nuuid=4c4c0000-0000-4000-8000-000000000065\n"
        "deny 0-65535 0.0.0.0/0 0-65535\n")
    return ["miniupnpd", "-d", "-f", str(config), "-P", str(state_dir / f"miniupnpd-{tag}.pid")]


def _kamailio(port: int, state_dir: Path, tag: str) -> list[str]:
    base = _dir(state_dir, f"kamailio-{tag}")
    config = base / "kamailio.cfg"
    config.write_text(
        "#!KAMAILIO\ndebug=1\nlog_stderror=yes\nchildren=1\ndisable_tcp=yes\n"
        f"listen=udp:0.0.0.0:{port}\nloadmodule \"sl.so\"\n"
        "request_route {\n"
        "    if (method == \"OPTIONS\") { sl_send_reply(\"200\", \"OK\"); exit; }\n"
        "    sl_send_reply(\"501\", \"Not Implemented\");\n}\n")
    return ["kamailio", "-DD", "-E", "-f", str(config), "-P", str(base / "kamailio.pid"), "-Y", str(base),
            "-m", "16", "-M", "4"]


def _avahi(state_dir: Path, tag: str, host: str, dual_stack: bool) -> list[str]:
    # A responder answers only for names it has: the workstation service gives
    # the DNS-SD enumeration (_services._dns-sd._udp.local) one answer.
    root = _dir(state_dir, f"avahi-{tag}")
    (root / "avahi-daemon.conf").write_text(
        f"[server]\nhost-name={host}\nuse-ipv4=yes\nuse-ipv6={'yes' if dual_stack else 'no'}\n"
        "enable-dbus=no\n[publish]\npublish-workstation=yes\n")
    return _own_run(root, ["avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits",
                           "-f", "/run/avahi-daemon.conf"])


def discovery_daemon_argv(service: Service, state_dir: Path, host: str, address: str,
                          dual_stack: bool) -> list[str] | None:
    """The command line of one of this module's kinds; None for others."""
    port, tag = service.port, f"{host}-{service.port}"
    match service.kind:
        case ServiceKind.UDP_DHCP:
            return _dhcp(port, state_dir, tag, address)
        case ServiceKind.UDP_RPCBIND:
            return _rpcbind(state_dir, tag)
        case ServiceKind.UDP_NETBIOS:
            return _nmbd(port, state_dir, tag, host)
        case ServiceKind.UDP_QUIC:
            return _quic(port, state_dir, tag, host)
        case ServiceKind.UDP_IKE:
            return _charon(port, state_dir, tag)
        case ServiceKind.UDP_RIP:
            return _ripd(port, state_dir, tag)
        case ServiceKind.UDP_SSDP:
            return _miniupnpd(state_dir, tag)
        case ServiceKind.UDP_SIP:
            return _kamailio(port, state_dir, tag)
        case ServiceKind.UDP_MDNS:
            return _avahi(state_dir, tag, host, dual_stack)
    return None
