"""leadline: a network mapper with nmap's flags, layouts and XML."""

from __future__ import annotations

__version__ = "0.1.0"
