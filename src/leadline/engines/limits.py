"""How many sockets a scan may hold open at once.

A connect scan's speed comes from parallelism, and every probe in flight
is an open file descriptor, so the engine sizes its window from the
process's RLIMIT_NOFILE.  Raising the soft limit to the hard limit is
allowed for any process and is done once, here.
"""

from __future__ import annotations

import errno
import resource

__all__ = ["FD_EXHAUSTED", "fd_budget"]

# Errors from socket()/connect() that mean "out of descriptors or local
# ports right now": the engine waits for in-flight probes to finish and
# retries, instead of failing the scan.
FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL})

# Never ask for more than this, even if the hard limit is unlimited: the
# kernel's per-socket memory, not the descriptor count, becomes the limit.
_CEILING = 1 << 20
_FLOOR = 8


def fd_budget(reserve: int = 64) -> int:
    """Raise the soft descriptor limit as far as allowed; return how many sockets may be open.

    ``reserve`` descriptors are left for everything else the process holds
    (output files, the epoll descriptor, libraries).  The answer is never
    below 8 so that a tiny limit still lets a scan make progress.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _CEILING if hard == resource.RLIM_INFINITY else min(hard, _CEILING)
    if soft == resource.RLIM_INFINITY:
        soft = _CEILING
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(_FLOOR, soft - reserve)
