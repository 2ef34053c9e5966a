"""``db import``: a result file into the store, in one transaction.

On SQLite the whole file is one transaction, begun with ``BEGIN
IMMEDIATE``: host ids are handed out from the first free one (no other
writer can take them meanwhile), each table gets one ``executemany`` per
batch of hosts, and a file that turns out broken leaves nothing behind.
The parts hosts share (a ports tuple, an OS result, as the XML reader
hands them out) become rows once each (``memo.Parts``).  Reading and
writing share this one process.  A forked reader handing rows over a pipe
kept the second core busy, but once reading got cheap it saved 1-2 s on
an idle machine (65,536 hosts) for 2-3 s more CPU pickling the rows, and
nothing on a loaded one.  On PostgreSQL the store's own ``add_hosts``
does the work.
"""

from __future__ import annotations

from collections.abc import Iterator

from leadline.errors import StoreError
from leadline.history.memo import Parts
from leadline.history.rows import Rows, host_rows
from leadline.history.schema import SQLITE
from leadline.history.sources import Loaded
from leadline.history.store import _INSERT_HOPS, _INSERT_HOST_ID, _INSERT_OS, _INSERT_PORTS, Store
from leadline.model import RunStats

__all__ = ["import_hosts"]

_SQL = (_INSERT_HOST_ID, _INSERT_PORTS, _INSERT_OS, _INSERT_HOPS)


def _rows(loaded: Loaded, run_id: int, first: int) -> Iterator[tuple[Rows, Rows, Rows, Rows]]:
    """Every host of ``loaded`` as rows, ids from ``first``; whatever a malformed file raises is one line."""
    parts = Parts()
    try:
        for n, host in enumerate(loaded.hosts()):
            yield host_rows(run_id, first + n, host, parts)
    except StoreError:
        raise
    except Exception as e:  # anything a malformed file can raise: one line, never a traceback
        raise StoreError(f"{loaded.name}: {type(e).__name__}: {e}") from None


def import_hosts(store: Store, run_id: int, loaded: Loaded, batch: int = 1000) -> tuple[int, RunStats | None]:
    """Store every host of ``loaded`` in run ``run_id``; (hosts stored, the file's footer)."""
    if store.d is not SQLITE:
        return store.add_hosts(run_id, loaded.hosts(), batch), loaded.stats
    store.db.execute("BEGIN IMMEDIATE")
    try:
        first = next(store.db.rows("SELECT COALESCE(MAX(id), 0) FROM hosts"))[0] + 1
        tables: tuple[Rows, ...] = ([], [], [], [])
        count = 0
        for host in _rows(loaded, run_id, first):
            for table, rows in zip(tables, host):
                table.extend(rows)
            count += 1
            if count % batch == 0:
                for sql, rows in zip(_SQL, tables):
                    store.db.many(sql, rows)
                tables = ([], [], [], [])
        for sql, rows in zip(_SQL, tables):
            store.db.many(sql, rows)
        stats = loaded.stats
        store.db.commit()
    except BaseException:
        store.db.rollback()
        raise
    return count, stats
