#!/usr/bin/env python3
"""Build src/leadline/data/leadline-services, the table used when nmap is not installed.

Sources, both independent of nmap's own data:

* names: the system's services list (/etc/services, Debian's netbase),
  first name per port and protocol;
* frequencies: the rankings below of ports commonly found exposed on
  internet-facing hosts (web, remote administration, mail, file
  sharing, databases, directory and RPC services, VPN, VoIP, printers,
  IoT management), most common first.  A ranked port gets a frequency
  that falls with its rank; every other port in the services list, and
  every port of the privileged range 1-1024 (the historical default scan
  range), gets a small fixed frequency so it sorts after all ranked
  ports, lowest port first.

Run it again after editing a ranking; the output is committed.
Usage: scripts/build_services.py [--services /etc/services] [--output PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["build_table", "main", "read_system_services", "render", "unique_in_order"]

# Ports most often found open over TCP, most common first.
TCP_RANKING: tuple[int, ...] = (
    # web, remote login, mail, file sharing, name service
    80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993, 5900,
    1025, 587, 8888, 199, 1720, 465, 548, 113, 81, 6001, 10000, 514, 5060, 179, 1026, 2000, 8443, 8000,
    32768, 554, 26, 1433, 49152, 2001, 515, 8008, 49154, 1027, 5666, 646, 5000, 5631, 631, 49153, 8081,
    2049, 88, 79, 5800, 106, 2121, 1110, 49155, 6000, 513, 990, 5357, 427, 49156, 543, 544, 5101, 144,
    7, 389,
    # alternative web and application servers
    8009, 3128, 444, 9999, 5009, 7070, 5190, 3000, 5432, 1900, 3986, 13, 1029, 9, 5051, 6646, 49157,
    1028, 873, 1755, 2717, 4899, 9100, 119, 37, 1000, 3001, 5001, 82, 10010, 1030, 9090, 2107, 1024,
    2103, 6004, 1801, 5050, 19, 8031, 1041, 255, 2967, 1049, 1048, 1053, 3703, 1056, 1065, 1064, 1054,
    17, 808, 3689, 1031, 1044, 1071, 5901, 100, 9102, 8010, 2869, 1039, 5120, 4001, 9000, 2105, 636,
    1038, 2601, 1, 7000, 1066, 1069, 625, 311, 280, 254, 4000, 1761, 5003, 2002, 2005, 1998, 1032, 1050,
    6112, 3690, 1521, 2161, 6002, 1080, 2401, 4045, 902, 7937, 787, 1058, 2383, 32771, 1033, 1040, 1059,
    50000, 5555, 10001, 1494, 593, 2301, 3, 3268, 7938, 1234, 1022, 1074, 8002, 1036, 1035, 9001, 1037,
    464, 497, 1935, 6666, 2003, 6543, 1352, 24, 3269, 1111, 407, 500, 20, 2006, 3260, 15000, 1218, 1034,
    4444, 264, 2004, 33, 1042, 999, 3052, 1023, 1068, 222, 7100, 888, 563, 1717, 2008, 992, 32770,
    7001, 32772, 2007, 8082, 5550, 2009, 5801, 1043, 512, 2701, 7019, 50001, 1700, 4662, 2065, 2010,
    42, 2602, 3333, 161, 5100, 5002, 2604, 4002, 6059, 1047, 8192, 8193, 2702, 6789, 9595, 1051,
    9594, 9593, 16993, 16992, 5226, 5225, 32769, 3283, 1052, 8194, 1055, 1062, 9415, 8701, 8652, 8651,
    8089, 55555, 1311, 1060, 4443,
    1067, 13782, 5902, 366, 9050, 1002, 85, 5500, 5431, 1864, 1863, 8085, 10243,
    49, 6667, 90, 27000, 1503, 6881, 1500, 8021, 340, 5566, 8088, 2222, 9071, 8899, 6005, 9876, 1501,
    5102, 32774, 32773, 9101, 5679, 163, 648, 146, 1666, 901, 83, 9207, 8001, 8083, 5004, 3476, 8084,
    5214, 14238, 12345, 912, 30, 2605, 2030, 6, 541, 8007, 3005, 4, 1248, 2500, 880, 306, 4242, 1097,
    9009, 2525, 1086, 1088, 8291, 6101, 900, 7200, 2809, 800, 32775, 12000, 1083, 211, 987,
    705, 20005, 711, 13783, 6969, 3071, 5269, 5222, 1085, 1046, 5987, 5989, 5988,
    # databases, caches, brokers and management agents seen exposed by default
    27017, 6379, 9200, 11211, 5984, 7474, 9042, 5672, 1883, 8883, 61616, 5985, 5986, 47001, 7547,
    37777, 2323, 8554, 9443, 10250, 2375, 2376, 6443, 8086, 5601, 9092, 2181, 8500, 4369, 15672,
)

# Ports most often found answering over UDP, most common first.
UDP_RANKING: tuple[int, ...] = (
    631, 161, 137, 123, 138, 1434, 445, 135, 67, 53, 139, 500, 68, 520, 1900, 4500, 514, 49152, 162,
    69, 5353, 111, 49154, 1701, 998, 996, 997, 999, 3283, 49153, 1812, 136, 2222, 2049, 32768, 5060,
    1025, 1433, 3456, 80, 20031, 1026, 7, 1646, 1645, 593, 518, 2048, 626, 1027, 177, 1719, 427, 497,
    4444, 1023, 65024, 19, 9, 49193, 1029, 49, 88, 1028, 17185, 1718, 49186, 2000, 31337, 1813, 1030,
    34555, 1194, 3389, 5355, 11211, 1604, 5632, 3702, 10000, 623, 47808, 5683, 4070,
    27015, 3478, 12345, 8888, 19132, 37020, 6881, 17, 13, 37, 42, 389, 464, 5351, 1985, 2302, 7777,
)

# Names for ranked ports that the system services list does not name.
EXTRA_NAMES: dict[tuple[int, str], str] = {
    (81, "tcp"): "hosts2-ns",
    (82, "tcp"): "xfer",
    (83, "tcp"): "mit-ml-dev",
    (85, "tcp"): "mit-ml-dev",
    (90, "tcp"): "dnsix",
    (444, "tcp"): "snpp",
    (1433, "tcp"): "ms-sql-s",
    (1434, "udp"): "ms-sql-m",
    (1521, "tcp"): "oracle",
    (1723, "tcp"): "pptp",
    (1900, "tcp"): "upnp",
    (1900, "udp"): "upnp",
    (2375, "tcp"): "docker",
    (2376, "tcp"): "docker-s",
    (3128, "tcp"): "squid-http",
    (3306, "tcp"): "mysql",
    (3389, "tcp"): "ms-wbt-server",
    (3389, "udp"): "ms-wbt-server",
    (5000, "tcp"): "upnp",
    (5060, "tcp"): "sip",
    (5060, "udp"): "sip",
    (5357, "tcp"): "wsdapi",
    (5432, "tcp"): "postgresql",
    (5601, "tcp"): "kibana",
    (5900, "tcp"): "vnc",
    (5985, "tcp"): "wsman",
    (5986, "tcp"): "wsmans",
    (6379, "tcp"): "redis",
    (7547, "tcp"): "cwmp",
    (8000, "tcp"): "http-alt",
    (8008, "tcp"): "http",
    (8080, "tcp"): "http-proxy",
    (8443, "tcp"): "https-alt",
    (8888, "tcp"): "sun-answerbook",
    (9100, "tcp"): "jetdirect",
    (9200, "tcp"): "wap-wsp",
    (10250, "tcp"): "kubelet",
    (11211, "tcp"): "memcache",
    (11211, "udp"): "memcache",
    (27017, "tcp"): "mongod",
    (49152, "tcp"): "unknown",
}

TOP_FREQUENCY = {"tcp": 0.48, "udp": 0.33}
DECAY = 1.1  # frequency falls as rank ** -DECAY, roughly the long tail scan studies report
DEFAULT_FREQUENCY = 0.0001  # a port the services list names but no ranking mentions
PRIVILEGED_FREQUENCY = 0.00001  # an unnamed, unranked port of 1-1024


def read_system_services(text: str) -> dict[tuple[int, str], str]:
    """First name for each (port, protocol) in an /etc/services-format text."""
    names: dict[tuple[int, str], str] = {}
    for line in text.splitlines():
        fields = line.partition("#")[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        port_text, _, protocol = fields[1].partition("/")
        if port_text.isdigit() and protocol in ("tcp", "udp"):
            names.setdefault((int(port_text), protocol), fields[0])
    return names


def unique_in_order(ports: tuple[int, ...]) -> list[int]:
    seen: set[int] = set()
    ordered: list[int] = []
    for port in ports:
        if port not in seen:
            seen.add(port)
            ordered.append(port)
    return ordered


def build_table(system_names: dict[tuple[int, str], str]) -> dict[tuple[int, str], tuple[str, float]]:
    """(port, protocol) -> (name, frequency) from the services list and the rankings."""
    table: dict[tuple[int, str], tuple[str, float]] = {}
    for protocol, ranking in (("tcp", TCP_RANKING), ("udp", UDP_RANKING)):
        for rank, port in enumerate(unique_in_order(ranking), start=1):
            frequency = round(TOP_FREQUENCY[protocol] * rank**-DECAY, 6)
            table[(port, protocol)] = (_name_for(port, protocol, system_names), frequency)
        for port in range(1, 1025):
            if (port, protocol) not in table:
                known = (port, protocol) in system_names or (port, protocol) in EXTRA_NAMES
                frequency = DEFAULT_FREQUENCY if known else PRIVILEGED_FREQUENCY
                table[(port, protocol)] = (_name_for(port, protocol, system_names), frequency)
    for key in system_names:
        table.setdefault(key, (system_names[key], DEFAULT_FREQUENCY))
    return table


def _name_for(port: int, protocol: str, system_names: dict[tuple[int, str], str]) -> str:
    return system_names.get((port, protocol)) or EXTRA_NAMES.get((port, protocol)) or "unknown"


def render(table: dict[tuple[int, str], tuple[str, float]]) -> str:
    lines = [
        "# leadline services table: name, port/protocol, frequency open.",
        "# Generated by scripts/build_services.py from the system services list and",
        "# leadline's own ranking of commonly exposed ports.  Do not edit by hand.",
    ]
    for (port, protocol), (name, frequency) in sorted(table.items()):
        lines.append(f"{name}\t{port}/{protocol}\t{frequency:.6f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="/etc/services", help="an /etc/services-format file (netbase)")
    default_output = Path(__file__).resolve().parent.parent / "src" / "leadline" / "data" / "leadline-services"
    parser.add_argument("--output", default=str(default_output))
    options = parser.parse_args(argv)
    try:
        system_text = Path(options.services).read_text(encoding="utf-8")
    except OSError as error:
        print(f"build_services: cannot read {options.services}: {error.strerror} (apt-get install netbase)", file=sys.stderr)
        return 1
    table = build_table(read_system_services(system_text))
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(render(table), encoding="utf-8")
    counts = {protocol: sum(1 for _, p in table if p == protocol) for protocol in ("tcp", "udp")}
    print(f"wrote {options.output}: {counts['tcp']} tcp, {counts['udp']} udp entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
