"""``leadline local``: this machine's sockets from the inside, and what a scan from outside reaches.

Modules, one job each: ``kernel`` reads sockets and owners (from
``sockdiag``, the netlink reader, and ``procfs``, the descriptor walk),
``model`` holds them, ``naming`` adds service names, ``selection``
filters, ``render`` prints the terminal view, ``files`` writes ``-oJ`` and
``-oX``, ``who`` answers ``--who``, ``probe``/``firewall``/``exposure``
take and explain the outside view, ``diff`` compares two listings.
"""

from __future__ import annotations

from leadline.local.model import EXPOSURE_LABELS, Exposure, LocalSocket, Owner, Snapshot

__all__ = ["EXPOSURE_LABELS", "Exposure", "LocalSocket", "Owner", "Snapshot"]
