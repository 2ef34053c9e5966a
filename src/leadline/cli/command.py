"""The ``leadline`` command's first step: send ``leadline local`` on its way before the scan machinery loads.

``leadline.cli.main`` imports the scan configuration, the option parser,
the outputs and the API (asyncio among them): about 100 ms that ``leadline
local`` never uses, half of what a listing of 10,000 sockets may take.  So
the console script starts here, hands ``local`` to its own light module,
and imports ``leadline.cli.main`` for everything else.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import NoReturn

__all__ = ["entry"]


def entry() -> None:
    """The ``leadline`` command: ``leadline local`` here, every other command through ``leadline.cli.main``."""
    args = sys.argv[1:]
    if args[:1] != ["local"]:
        from leadline.cli.main import main

        exit_now(main())
    # A listing allocates a few tuples per socket and then exits: the cyclic collector would only walk
    # them again and again (a tenth of a 10,000-socket listing); reference counting frees what needs it.
    gc.disable()
    from leadline.cli.local import local_main

    exit_now(local_main(args[1:]))


def exit_now(code: int) -> NoReturn:
    """Flush and end the process at once.

    A -p- scan leaves some 65535 result objects behind and a listing
    10,000 sockets' worth; letting the interpreter free them one by one on
    the way out costs a tenth of a second after the last line is written.
    Everything the run wrote is flushed and closed by then.  An interrupt
    that arrives during this last flush changes nothing: the run has
    already decided its exit code.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 141
    except (OSError, KeyboardInterrupt):
        pass
    os._exit(code)
