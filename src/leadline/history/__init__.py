"""Scan history: a store of runs (SQLite or PostgreSQL), imports of nmap XML, diffs and the HTML report.

``store`` keeps runs and hosts, ``sources`` reads result files into the
model, ``diff`` compares two runs, ``report`` writes the self-contained
HTML page with ``netmap``'s network map, and ``sink`` saves a scan as it
runs.  Each module loads only when a command asks for it.
"""

__all__: list[str] = []
