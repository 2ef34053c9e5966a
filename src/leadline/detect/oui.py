"""MAC address vendors, from the IEEE registry installed on the system.

nmap prints a short vendor after a MAC ("Raspberry Pi Foundation",
"Microsoft").  The registry (Debian's ieee-data: /usr/share/ieee-data/oui.txt)
holds full legal names ("Microsoft Corporation"), so the display name
drops legal-form words such as "Corporation", "Inc." and "Co., Ltd."
from the end.  The file is read once, on the first lookup, and each
prefix is found by a text search of its "XX-XX-XX   (hex)" line and
remembered: a scan asks for a handful of vendors, and parsing all
~35,000 entries would cost more than the scan of a small network.  Only
the 24-bit assignments (MA-L) are used; without the file every lookup is
None.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

__all__ = ["DEFAULT_REGISTRY", "VendorRegistry", "short_vendor_name", "vendor_for"]

DEFAULT_REGISTRY = Path("/usr/share/ieee-data/oui.txt")

# "00-15-5D   (hex)\t\tMicrosoft Corporation"
_HEX_LINE = re.compile(r"^([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})\s+\(hex\)\s+(.*\S)\s*$")
# Legal forms, matched case-insensitively at the end of a name, repeatedly
# ("Foo Co., Ltd." -> "Foo Co." -> "Foo").
_LEGAL_SUFFIX = re.compile(
    r"[\s,]+(?:corporation|corp|incorporated|inc|co|company|ltd|limited|llc|l\.l\.c|gmbh|ag|sa|s\.a|"
    r"s\.p\.a|spa|bv|b\.v|nv|n\.v|oy|ab|as|a/s|plc|pty|kg|srl|s\.r\.l|sas|s\.a\.s|kk|k\.k|pte)\.?$",
    re.IGNORECASE,
)


def short_vendor_name(organisation: str) -> str:
    """The registry's organisation name without trailing legal-form words or punctuation."""
    name = " ".join(organisation.split())
    while True:
        shorter = _LEGAL_SUFFIX.sub("", name).rstrip(" ,.")
        if shorter == name or not shorter:
            return name.rstrip(" ,") or organisation.strip()
        name = shorter


class VendorRegistry:
    """OUI -> short vendor name, looked up lazily in one registry file."""

    def __init__(self, path: Path = DEFAULT_REGISTRY) -> None:
        self.path = path
        self._data: bytes | None = None
        self._found: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def _registry_bytes(self) -> bytes:
        """The registry as bytes: decoding all ~5 MB of it took five times as long as the search."""
        if self._data is None:
            try:
                self._data = self.path.read_bytes()
            except OSError:
                self._data = b""
        return self._data

    def _search(self, prefix: str) -> str | None:
        if int(prefix[0:2], 16) & 0x02:
            return None  # locally administered: never assigned by the IEEE
        data = self._registry_bytes()
        key = f"{prefix[0:2]}-{prefix[2:4]}-{prefix[4:6]}".encode("ascii")
        for spelling in (key, key.lower()):  # plain find, not a regex scan of ~5 MB
            at = data.find(spelling)
            while at >= 0:
                end = data.find(b"\n", at)
                line = data[at : end if end >= 0 else len(data)].decode("utf-8", errors="replace")
                found = _HEX_LINE.match(line)
                if found and (at == 0 or data[at - 1 : at] == b"\n"):
                    return short_vendor_name(found.group(4))
                at = data.find(spelling, at + 1)
        return None

    def lookup(self, mac: str) -> str | None:
        """The vendor of ``mac`` (any of "b8:27:eb:..", "B8-27-EB-..", "b827eb.."), or None."""
        digits = re.sub(r"[^0-9A-Fa-f]", "", mac)
        if len(digits) < 6:
            return None
        prefix = digits[:6].upper()
        with self._lock:
            if prefix not in self._found:
                self._found[prefix] = self._search(prefix)
            return self._found[prefix]


_default = VendorRegistry()


def vendor_for(mac: str) -> str | None:
    """The vendor of ``mac`` from the system's IEEE registry; None if unknown or the registry is missing."""
    return _default.lookup(mac)
