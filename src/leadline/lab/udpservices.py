"""The practice lab's UDP server: real Debian daemons answering real UDP requests.

Host ``udpsrv`` (198.18.1.65, fd18:4c11:0:1::65) runs dnsmasq (DNS),
chrony (NTP, never touching the clock: ``-x``), snmpd (community
"public"), memcached with UDP only, tftpd-hpa, libcoap's CoAP server,
xinetd's built-in echo, daytime and chargen, and two listeners that never
answer (syslog's and WireGuard's ports), so a -sU of it meets every case:
payloads answered, ports closed, silence that stays open|filtered.
``lab/udpdaemons.py`` adds the servers of the other payloads: dnsmasq's
DHCP, rpcbind, nmbd, a QUIC server, charon (IKE), ripd, miniupnpd (SSDP),
kamailio (SIP) and avahi-daemon (mDNS); every payload of
``core/udppayloads.py`` has a real server here.

Every configuration file is written into the lab's state directory;
nothing under /etc is read or changed.  ``udp_daemon_argv`` gives the
command line of one service; ``lab/daemons.py`` starts it like any other.
"""

from __future__ import annotations

from pathlib import Path

from leadline.lab.topology import Host, Interface, Route, Rule, Service, ServiceKind
from leadline.lab.udpdaemons import discovery_daemon_argv

__all__ = ["UDPSRV", "UDPSRV6", "UDPSRV_OPEN", "UDPSRV_SILENT", "UDPSRV_MAC", "udp_daemon_argv", "udp_server"]

UDPSRV = "198.18.1.65"
UDPSRV6 = "fd18:4c11:0:1::65"
UDPSRV_MAC = "02:4c:11:00:00:65"
# port -> the daemon that answers it with udp-response
UDPSRV_OPEN: dict[int, str] = {
    7: "xinetd echo", 13: "xinetd daytime", 19: "xinetd chargen", 53: "dnsmasq", 69: "tftpd-hpa",
    123: "chronyd", 161: "snmpd", 5683: "coap-server", 11211: "memcached",
    67: "dnsmasq (DHCP)", 111: "rpcbind", 137: "nmbd", 443: "gtlsserver (ngtcp2)", 500: "charon",
    520: "ripd", 1900: "miniupnpd", 5060: "kamailio", 5353: "avahi-daemon",
}
UDPSRV_SILENT = (514, 51820)  # listeners that never answer: open|filtered
_KINDS = {
    7: ServiceKind.UDP_INETD_ECHO, 13: ServiceKind.UDP_INETD_DAYTIME, 19: ServiceKind.UDP_INETD_CHARGEN,
    53: ServiceKind.UDP_DNS, 69: ServiceKind.UDP_TFTP, 123: ServiceKind.UDP_NTP, 161: ServiceKind.UDP_SNMP,
    5683: ServiceKind.UDP_COAP, 11211: ServiceKind.UDP_MEMCACHED,
    67: ServiceKind.UDP_DHCP, 111: ServiceKind.UDP_RPCBIND, 137: ServiceKind.UDP_NETBIOS, 443: ServiceKind.UDP_QUIC,
    500: ServiceKind.UDP_IKE, 520: ServiceKind.UDP_RIP, 1900: ServiceKind.UDP_SSDP, 5060: ServiceKind.UDP_SIP,
    5353: ServiceKind.UDP_MDNS,
}


# The discovery and routing daemons announce themselves unasked (mDNS and SSDP
# announcements, NetBIOS name registrations, RIP updates, IGMP joins); the lab's
# segments stay silent between scans, so whatever this host would send to a group
# or a broadcast address is dropped on the way out.  Every answer to a probe is
# unicast and passes.
_QUIET = (
    Rule("OUTPUT", "-p igmp -j DROP"),
    Rule("OUTPUT", "-m addrtype --dst-type MULTICAST,BROADCAST -j DROP"),
    Rule("OUTPUT", "-d ff00::/8 -p udp -j DROP", family=6),
)


def udp_server(router: str, router6: str) -> Host:
    """The UDP server host, routed like the LAN's other hosts."""
    services = tuple(Service(kind, port) for port, kind in _KINDS.items())
    silent = tuple(Service(ServiceKind.UDP_LISTEN, port) for port in UDPSRV_SILENT)
    return Host(
        "udpsrv",
        (Interface("lan", f"{UDPSRV}/24", UDPSRV_MAC, f"{UDPSRV6}/64"),),
        routes=(Route("198.18.0.0/15", via=router), Route("fd18:4c11::/48", via=router6)),
        firewall=_QUIET,
        services=services + silent,
        role="UDP services",
    )


def _write(state_dir: Path, name: str, text: str) -> Path:
    path = state_dir / name
    path.write_text(text)
    return path


def _xinetd(state_dir: Path, host: str, service: str, port: int) -> list[str]:
    config = _write(state_dir, f"xinetd-{host}-{service}.conf", (
        "defaults\n{\n}\n"
        f"service {service}\n{{\n    type = INTERNAL\n    id = {service}-dgram\n    socket_type = dgram\n"
        f"    protocol = udp\n    user = root\n    wait = yes\n    port = {port}\n}}\n"))
    return ["xinetd", "-dontfork", "-f", str(config), "-pidfile", str(state_dir / f"xinetd-{host}-{service}.pid"),
            "-filelog", str(state_dir / f"xinetd-{host}-{service}.log")]


def udp_daemon_argv(service: Service, state_dir: Path, host: str, dual_stack: bool) -> list[str] | None:
    """The command line for a UDP server kind; None for kinds this module does not run."""
    port = service.port
    tag = f"{host}-{port}"
    match service.kind:
        case ServiceKind.UDP_DNS:
            return ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--port", str(port),
                    f"--pid-file={state_dir / f'dnsmasq-{tag}.pid'}", "--user=root"]
        case ServiceKind.UDP_NTP:
            config = _write(state_dir, f"chrony-{tag}.conf", (
                f"port {port}\ncmdport 0\nallow all\nlocal stratum 10\n"
                f"pidfile {state_dir / f'chrony-{tag}.pid'}\n"))
            return ["chronyd", "-d", "-x", "-U", "-u", "root", "-f", str(config)]
        case ServiceKind.UDP_SNMP:
            config = _write(state_dir, f"snmpd-{tag}.conf", "rocommunity public\nrocommunity6 public\n")
            listen = f"udp:{port},udp6:{port}" if dual_stack else f"udp:{port}"
            return ["snmpd", "-f", "-Lo", "-C", "-c", str(config), "-p", str(state_dir / f"snmpd-{tag}.pid"), listen]
        case ServiceKind.UDP_MEMCACHED:
            return ["memcached", "-U", str(port), "-p", "0", "-u", "nobody", "-m", "16"]
        case ServiceKind.UDP_TFTP:
            root = state_dir / f"tftp-{tag}"
            root.mkdir(exist_ok=True)
            address = f"[::]:{port}" if dual_stack else f"0.0.0.0:{port}"
            return ["in.tftpd", "--foreground", "--secure", "--user", "nobody", "--address", address, str(root)]
        case ServiceKind.UDP_COAP:
            return ["coap-server-notls", "-A", "::" if dual_stack else "0.0.0.0", "-p", str(port)]
        case ServiceKind.UDP_INETD_ECHO:
            return _xinetd(state_dir, host, "echo", port)
        case ServiceKind.UDP_INETD_DAYTIME:
            return _xinetd(state_dir, host, "daytime", port)
        case ServiceKind.UDP_INETD_CHARGEN:
            return _xinetd(state_dir, host, "chargen", port)
    return discovery_daemon_argv(service, state_dir, host, UDPSRV, dual_stack)
