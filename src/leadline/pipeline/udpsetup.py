"""What a UDP scan needs from the outside before it starts: its payloads.

nmap's payload file is read here, at run time, when nmap is installed
(never copied into leadline); the sans-I/O core only parses its text.
"""

from __future__ import annotations

from functools import lru_cache

from leadline.config import ScanConfig
from leadline.core.udppayloads import NMAP_PAYLOADS, Payload, PayloadTable, default_table, fixed_table, parse_nmap_payloads

__all__ = ["udp_payload_table"]


@lru_cache(maxsize=4)
def _nmap_payloads(path: str) -> tuple[Payload, ...]:
    if not path:
        return ()
    try:
        with open(path, encoding="latin-1") as handle:
            return parse_nmap_payloads(handle.read())
    except OSError:
        return ()


def udp_payload_table(config: ScanConfig, nmap_path: str = NMAP_PAYLOADS) -> PayloadTable:
    """--data and its kin win (the same bytes everywhere, as nmap); else ours and nmap's payloads."""
    if config.udp_data is not None:
        return fixed_table(config.udp_data)
    return _table(nmap_path if config.nmap_payloads else "")


@lru_cache(maxsize=4)
def _table(nmap_path: str) -> PayloadTable:
    return default_table(_nmap_payloads(nmap_path))
