"""Port rules shared by scripts: nmap's shortport sets, by port number or service name.

A rule matches an open port whose number is in a set, or whose service
(version detection's name, else the services table's) is in a set, as
nmap's ``shortport.port_or_service`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from leadline.detect.scripts.base import HostInfo, Rule
from leadline.model import PortResult, PortState

__all__ = ["HTTP_PORTS", "SSL_PORTS", "port_or_service", "service_name", "wants_tls"]

HTTP_PORTS = frozenset({80, 443, 631, 7080, 8080, 8443, 8088, 5800, 3872, 8180, 8000})
HTTP_SERVICES = frozenset({"http", "https", "ipp", "http-alt", "https-alt", "vnc-http", "oem-agent", "soap",
                           "http-proxy", "caldav", "carddav", "webdav"})
SSL_PORTS = frozenset({261, 271, 324, 443, 465, 563, 585, 636, 853, 989, 990, 992, 993, 994, 995, 2221, 2252,
                       2376, 3269, 3389, 4433, 4911, 5061, 5986, 6679, 6697, 8443, 9001, 8883})
SSL_SERVICES = frozenset({"ftps", "ftps-data", "ftps-control", "https", "https-alt", "imaps", "ircs", "ldapssl",
                          "ms-wbt-server", "pop3s", "sip-tls", "smtps", "telnets", "tor-orport"})


def service_name(port: PortResult) -> str | None:
    if port.detail is not None and port.detail.name:
        return port.detail.name
    return port.service


def port_or_service(ports: Iterable[int], services: Iterable[str], protos: tuple[str, ...] = ("tcp",)) -> Rule:
    """nmap's ``shortport.port_or_service``: an open (or open|filtered) port by number or service name."""
    numbers, names = frozenset(ports), frozenset(services)

    def rule(host: HostInfo, port: PortResult | None) -> bool:
        if port is None or port.protocol not in protos:
            return False
        if port.state not in (PortState.OPEN, PortState.OPEN_FILTERED):
            return False
        return port.port in numbers or service_name(port) in names
    return rule


def wants_tls(port: PortResult) -> bool:
    """Speak TLS first: version detection saw a tunnel, or the port or service is a TLS one."""
    if port.detail is not None and port.detail.tunnel == "ssl":
        return True
    return port.port in SSL_PORTS or service_name(port) in SSL_SERVICES
