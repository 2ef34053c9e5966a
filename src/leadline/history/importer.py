"""``db import``: a result file into the store, reading and writing on two cores.

Reading nmap's XML and turning each host into rows is most of an
import's work, writing the rows the rest, so on SQLite a forked worker
reads the file and builds the rows while this process writes them: the
rows cross a pipe in batches (pickled tuples of plain values), and the
pipe's buffer keeps the worker at most a batch or two ahead, so memory
stays bounded.  The whole file is one transaction, begun with
``BEGIN IMMEDIATE``: the worker hands out host ids from the first free
one, no other writer can take them meanwhile, and a file that turns out
broken leaves nothing behind.  On PostgreSQL the store's own
``add_hosts`` does the work in this process.
"""

from __future__ import annotations

import multiprocessing
import pickle
from multiprocessing.connection import Connection
from typing import Any

from leadline.errors import StoreError
from leadline.history.schema import SQLITE
from leadline.history.sources import Loaded
from leadline.history.memo import Parts
from leadline.history.rows import host_rows
from leadline.history.store import _INSERT_HOPS, _INSERT_HOST_ID, _INSERT_OS, _INSERT_PORTS, Store
from leadline.model import RunStats

__all__ = ["import_hosts"]

_SQL = (_INSERT_HOST_ID, _INSERT_PORTS, _INSERT_OS, _INSERT_HOPS)


def _produce(loaded: Loaded, run_id: int, first: int, batch: int, out: Connection) -> None:
    """The worker: every host of ``loaded`` as rows, ``batch`` hosts a message, then the footer."""
    try:
        tables: tuple[list[Any], ...] = ([], [], [], [])
        parts = Parts()
        n = 0
        for host in loaded.hosts():
            for table, rows in zip(tables, host_rows(run_id, first + n, host, parts)):
                table.extend(rows)
            n += 1
            if n % batch == 0:
                out.send_bytes(pickle.dumps(("rows", tables, batch), protocol=pickle.HIGHEST_PROTOCOL))
                tables = ([], [], [], [])
        if n % batch:
            out.send_bytes(pickle.dumps(("rows", tables, n % batch), protocol=pickle.HIGHEST_PROTOCOL))
        out.send_bytes(pickle.dumps(("end", loaded.stats)))
    except StoreError as e:
        out.send_bytes(pickle.dumps(("error", str(e))))
    except Exception as e:  # anything a malformed file can raise: one line, never a traceback
        out.send_bytes(pickle.dumps(("error", f"{loaded.name}: {type(e).__name__}: {e}")))
    finally:
        out.close()


def import_hosts(store: Store, run_id: int, loaded: Loaded, batch: int = 1000) -> tuple[int, RunStats | None]:
    """Store every host of ``loaded`` in run ``run_id``; (hosts stored, the file's footer)."""
    if store.d is not SQLITE:
        return store.add_hosts(run_id, loaded.hosts(), batch), loaded.stats
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    store.db.execute("BEGIN IMMEDIATE")
    worker = None
    try:
        first = next(store.db.rows("SELECT COALESCE(MAX(id), 0) FROM hosts"))[0] + 1
        worker = ctx.Process(target=_produce, args=(loaded, run_id, first, batch, send), daemon=True)
        worker.start()
        send.close()
        count = 0
        while True:
            try:
                message = pickle.loads(receive.recv_bytes())
            except EOFError:
                raise StoreError(f"{loaded.name}: the import's reader stopped unexpectedly") from None
            if message[0] == "error":
                raise StoreError(message[1])
            if message[0] == "end":
                stats: RunStats | None = message[1]
                break
            for sql, rows in zip(_SQL, message[1]):
                store.db.many(store.d.sql(sql), rows)
            count += message[2]
        worker.join()
        store.db.commit()
    except BaseException:
        store.db.rollback()
        raise
    finally:
        receive.close()
        if worker is not None and worker.is_alive():
            worker.kill()
            worker.join()
    return count, stats
