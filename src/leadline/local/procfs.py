"""Who holds a socket, and who that is: ``/proc/<pid>/fd`` and ``/proc/<pid>/{stat,status,cmdline}`` read directly.

The kernel does not say which process holds a socket; ``ss -p``, psutil
and this module all walk every process's descriptors and match the
``socket:[INODE]`` links against the inodes ``sock_diag`` reported.  The
walk is the biggest single cost of a listing (a descriptor is one
``readlink``), so it opens each ``fd`` directory once and reads its links
relative to it (``readlinkat``), which spares the kernel a path lookup
per descriptor.  Processes we may not read (another user's, without
root) are skipped, as ``ss`` skips them.

Process details are read from the same files psutil reads, with psutil's
rules (a 15-character ``comm`` is completed from the command line; a
command line without NUL separators, as a process that rewrote its title
leaves it, is split at spaces), for the few processes that hold sockets:
importing psutil alone costs more than reading them.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable

from leadline.local.model import Owner

__all__ = ["Holders", "boot_time", "read_owner", "read_owners", "socket_holders"]

Holders = dict[int, list[tuple[int, int]]]  # socket inode -> (pid, fd) of every descriptor on it


def socket_holders(inodes: Collection[int], proc: str = "/proc") -> Holders:
    """The (pid, fd) pairs that hold each of ``inodes``, in pid and descriptor order."""
    found: Holders = {}
    if not inodes:
        return found
    # Matching the link text itself spares slicing and int() on every descriptor.
    wanted = {f"socket:[{inode}]": inode for inode in inodes}.get
    readlink, listdir = os.readlink, os.listdir
    for pid in sorted(int(name) for name in listdir(proc) if name.isdigit()):
        try:
            directory = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue  # gone, or not ours to read
        try:
            names = listdir(directory)
            try:
                links = [readlink(name, dir_fd=directory) for name in names]
            except OSError:  # a descriptor closed meanwhile: go one by one
                links = [_link(name, directory) for name in names]
        except OSError:
            continue  # the process ended meanwhile
        finally:
            os.close(directory)
        for name, link in zip(names, links):
            inode = wanted(link)
            if inode is not None:
                found.setdefault(inode, []).append((pid, int(name)))
    return found  # in pid order, and descriptor order within a pid (as /proc lists them)


def _link(name: str, directory: int) -> str:
    try:
        return os.readlink(name, dir_fd=directory)
    except OSError:
        return ""


def boot_time(proc: str = "/proc") -> float:
    """When the machine booted (``btime`` of ``/proc/stat``), epoch seconds: process start times count from it."""
    with open(f"{proc}/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


def _cmdline(data: bytes) -> tuple[str, ...]:
    if not data:
        return ()
    text = data.decode("utf-8", "replace")  # shown and written, never used as a path: no surrogates
    separator = "\0" if text.endswith("\0") else " "
    words = text.removesuffix(separator).split(separator)
    if separator == "\0" and len(words) == 1 and " " in words[0]:
        words = words[0].split(" ")
    return tuple(words)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def read_owner(pid: int, boot: float, ticks: int, users: dict[int, str], proc: str = "/proc") -> Owner | None:
    """One process's name, user, command line and start time; None once it is gone or hidden."""
    try:
        stat = _read(f"{proc}/{pid}/stat")
        status = _read(f"{proc}/{pid}/status")
        try:
            cmdline = _cmdline(_read(f"{proc}/{pid}/cmdline"))
        except OSError:
            cmdline = ()
    except OSError:
        return None
    opened, closed = stat.find(b"("), stat.rfind(b")")
    name = stat[opened + 1:closed].decode("utf-8", "replace")
    fields = stat[closed + 2:].split()
    # field 22 of proc(5): starttime, in clock ticks since boot
    started = boot + int(fields[19]) / ticks if len(fields) > 19 and fields[19].isdigit() else None
    if len(name) >= 15 and cmdline:
        whole = os.path.basename(cmdline[0])
        if whole.startswith(name):
            name = whole
    uid = None
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            words = line.split()  # real, effective, saved, filesystem: ps and psutil name the real one
            uid = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
            break
    return Owner(pid=pid, name=name, user=None if uid is None else _user(uid, users), cmdline=cmdline,
                 started=started)


def _user(uid: int, users: dict[int, str]) -> str:
    name = users.get(uid)
    if name is None:
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)  # no passwd entry: the number, as ps shows it
        users[uid] = name
    return name


def read_owners(pids: Iterable[int], proc: str = "/proc") -> dict[int, Owner]:
    """:func:`read_owner` for each pid still there to be read."""
    boot, ticks = boot_time(proc), os.sysconf("SC_CLK_TCK")
    users: dict[int, str] = {}
    owners: dict[int, Owner] = {}
    for pid in pids:
        owner = read_owner(pid, boot, ticks, users, proc)
        if owner is not None:
            owners[pid] = owner
    return owners
