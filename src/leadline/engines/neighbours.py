"""What the kernel already knows about our neighbours: the IPv4 ARP cache."""

from __future__ import annotations

__all__ = ["neighbour_mac"]

_ATF_COM = 0x2  # the entry is complete (resolved)


def neighbour_mac(address: str, table: str = "/proc/net/arp") -> str | None:
    """The kernel's resolved MAC for a directly connected IPv4 ``address``, if any.

    After a raw scan the kernel has ARPed every neighbour it sent to, so
    this names the MAC the replies came from, as nmap reports it.
    """
    try:
        with open(table, encoding="ascii") as lines:
            for line in lines.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 4 and fields[0] == address and int(fields[2], 16) & _ATF_COM:
                    return fields[3].upper()
    except (OSError, ValueError):
        return None
    return None
