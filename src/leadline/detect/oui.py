"""MAC address vendors, from the IEEE registry installed on the system.

nmap prints a short vendor after a MAC ("Raspberry Pi Foundation",
"Microsoft").  The registry (Debian's ieee-data: /usr/share/ieee-data/oui.txt)
holds full legal names ("Microsoft Corporation"), so the display name
drops legal-form words such as "Corporation", "Inc." and "Co., Ltd."
from the end.  The file is read once, on the first lookup, and only the
24-bit assignments (MA-L) are used; without the file every lookup is None.
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
    """OUI -> short vendor name, parsed lazily from one registry file."""

    def __init__(self, path: Path = DEFAULT_REGISTRY) -> None:
        self.path = path
        self._table: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        table: dict[str, str] = {}
        try:
            with self.path.open(encoding="utf-8", errors="replace") as stream:
                for line in stream:
                    found = _HEX_LINE.match(line)
                    if found:
                        prefix = "".join(found.group(1, 2, 3)).upper()
                        table.setdefault(prefix, short_vendor_name(found.group(4)))
        except OSError:
            return {}
        return table

    def lookup(self, mac: str) -> str | None:
        """The vendor of ``mac`` (any of "b8:27:eb:..", "B8-27-EB-..", "b827eb.."), or None."""
        digits = re.sub(r"[^0-9A-Fa-f]", "", mac)
        if len(digits) < 6:
            return None
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._load()
        return self._table.get(digits[:6].upper())


_default = VendorRegistry()


def vendor_for(mac: str) -> str | None:
    """The vendor of ``mac`` from the system's IEEE registry; None if unknown or the registry is missing."""
    return _default.lookup(mac)
