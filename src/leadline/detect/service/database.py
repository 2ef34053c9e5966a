"""Which probe file a run reads, loaded once per process.

leadline ships its own probe file (``data/leadline-service-probes``, written
from the protocols).  As with the services table, nmap's installed file is
read by default when it exists (at run time: it is never copied into
leadline); ``--versiondb leadline`` picks ours, ``--versiondb nmap`` nmap's,
``--versiondb PATH`` any file in the same format.  A parsed file is cached by path and modification
time, and its patterns compile on first use, so a second scan in the same
process pays nothing and a small scan compiles only what it tries.
"""

from __future__ import annotations

import os
from importlib import resources

from leadline.detect.service.probes import ProbeDatabase, ProbeFileError, parse_probes

__all__ = ["NMAP_PROBES", "SHIPPED", "load_database"]

NMAP_PROBES = "/usr/share/nmap/nmap-service-probes"
SHIPPED = "leadline-service-probes"
_cache: dict[tuple[str, float], ProbeDatabase] = {}


def _shipped_text() -> tuple[str, str]:
    ref = resources.files("leadline").joinpath("data", SHIPPED)
    return ref.read_text(encoding="latin-1"), str(ref)


def load_database(path: str | None = None) -> ProbeDatabase:
    """The probe database for ``--versiondb`` (None: nmap's if installed, else ours).  Raises ValueError with one line."""
    if path is None:
        path = NMAP_PROBES if os.path.exists(NMAP_PROBES) else "leadline"
    if path == "leadline":
        key = (SHIPPED, 0.0)
        if key not in _cache:
            text, where = _shipped_text()
            _cache[key] = parse_probes(text, where)
        return _cache[key]
    if path == "nmap":
        path = NMAP_PROBES
    try:
        key = (os.path.abspath(path), os.stat(path).st_mtime)
    except OSError as e:
        raise ValueError(f"cannot read the version database {path}: {e.strerror}") from None
    if key not in _cache:
        try:
            with open(path, encoding="latin-1") as f:
                text = f.read()
            _cache[key] = parse_probes(text, path)
        except OSError as e:
            raise ValueError(f"cannot read the version database {path}: {e.strerror}") from None
        except ProbeFileError as e:
            raise ValueError(f"{path}: {e}") from None
    return _cache[key]
