"""leadline local's own kernel readers: sock_diag answers decoded from recorded bytes, /proc read as psutil reads it.

The recording is a real dump (Linux 6.18) of a namespace holding a TCP
listener on 127.0.0.1:8080 with one accepted connection (both ends) and
one in TIME-WAIT, a dual-stack TCP listener on [::]:5432, a UDP socket on
0.0.0.0:53 and a connected UDP socket [::1]:11211 -> [::1]:5353.  The
live tests read this process's own sockets, with psutil as the oracle.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import psutil
import pytest

from leadline.local import procfs
from leadline.local.kernel import psutil_sockets, read_snapshot, with_holders
from leadline.local.sockdiag import SockDiagError, dump_request, parse_dump, read_sockets

RECORDED = {
    ("tcp", 4): bytes.fromhex(
        "7c0000001400020001000000b34d0000020a00001f9000007f0000010000000000000000000000000000000000000000"
        "000000000000000000000000949d01000000000000000000000000008000000000000000b21061000500080000000000"
        "08000f00000000000c001500010000000000000006001600520000007c0000001400020001000000b34d000002010000"
        "1f90b6ae7f0000010000000000000000000000007f00000100000000000000000000000000000000959d010000000000"
        "00000000000000000000000000000000b7106100050008000000000008000f00000000000c0015000100000000000000"
        "06001600520000007c0000001400020001000000b34d000002010000b6ae1f907f000001000000000000000000000000"
        "7f00000100000000000000000000000000000000969d01000000000000000000000000000000000000000000b6106100"
        "050008000000000008000f00000000000c00150001000000000000000600160052000000600000001400020001000000"
        "b34d000002060300b6ba1f907f0000010000000000000000000000007f00000100000000000000000000000000000000"
        "979d010000000000fce900000000000000000000000000000000000008000f0000000000140000000300020001000000"
        "b34d000000000000"
    ),
    ("tcp", 6): bytes.fromhex(
        "840000001400020001000000b34d00000a0a000015380000000000000000000000000000000000000000000000000000"
        "000000000000000000000000989d01000000000000000000000000008000000000000000b31061000500080000000000"
        "05000b000000000008000f00000000000c00150001000000000000000600160012000000140000000300020001000000"
        "b34d000000000000"
    ),
    ("udp", 4): bytes.fromhex(
        "7c0000001400020001000000b34d00000207000000350000000000000000000000000000000000000000000000000000"
        "000000000000000000000000999d01000000000000000000000000000000000000000000b41061000500080000000000"
        "08000f00000000000c00150001000000000000000600160050000000140000000300020001000000b34d000000000000"
    ),
    ("udp", 6): bytes.fromhex(
        "7c0000001400020001000000b34d00000a0100002bcb14e9000000000000000000000000000000010000000000000000"
        "0000000000000001000000009a9d01000000000000000000000000000000000000000000b51061000500080000000000"
        "08000f00000000000c00150001000000000000000600160010000000140000000300020001000000b34d000000000000"
    ),
}

EXPECTED = {
    ("tcp", 4): [
        ("tcp", 4, "LISTEN", "127.0.0.1", 8080, None, None, 0, 6361266),
        ("tcp", 4, "ESTAB", "127.0.0.1", 8080, "127.0.0.1", 46766, 0, 6361271),
        ("tcp", 4, "ESTAB", "127.0.0.1", 46766, "127.0.0.1", 8080, 0, 6361270),
        ("tcp", 4, "TIME-WAIT", "127.0.0.1", 46778, "127.0.0.1", 8080, 0, 0),  # no descriptor: inode 0
    ],
    ("tcp", 6): [("tcp", 6, "LISTEN", "::", 5432, None, None, 0, 6361267)],
    ("udp", 4): [("udp", 4, "UNCONN", "0.0.0.0", 53, None, None, 0, 6361268)],
    ("udp", 6): [("udp", 6, "ESTAB", "::1", 11211, "::1", 5353, 0, 6361269)],
}


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_recorded_dumps_decode_to_the_sockets_that_were_open(key: tuple[str, int]) -> None:
    assert list(parse_dump([RECORDED[key]], key[0])) == EXPECTED[key]


def test_a_dump_split_across_reads_decodes_the_same() -> None:
    data = RECORDED[("tcp", 4)]
    cut = 124  # the first message's length: the kernel only splits between messages
    assert struct.unpack_from("=I", data)[0] == cut
    assert list(parse_dump([data[:cut], data[cut:]], "tcp")) == EXPECTED[("tcp", 4)]


def test_the_request_asks_for_a_dump_of_one_protocol_and_family() -> None:
    request = dump_request("udp", 6, states=1 << 7, seq=9)
    assert len(request) == 16 + 56  # nlmsghdr + inet_diag_req_v2
    length, kind, flags, seq, port = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq, port) == (72, 20, 0x301, 9, 0)  # SOCK_DIAG_BY_FAMILY, REQUEST|DUMP
    assert request[16:20] == bytes([socket.AF_INET6, socket.IPPROTO_UDP, 0, 0])
    assert struct.unpack_from("=I", request, 20)[0] == 1 << 7
    assert request[24:] == bytes(48)  # an empty socket id: every socket


def test_an_error_answer_is_one_clear_error() -> None:
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + bytes(16)
    with pytest.raises(SockDiagError, match="sock_diag udp: No such file or directory"):
        list(parse_dump([error], "udp"))


def test_a_dump_that_failed_midway_is_an_error_too() -> None:
    done_with_error = struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", -4)  # NLMSG_DONE, -EINTR
    with pytest.raises(SockDiagError, match="Interrupted system call"):
        list(parse_dump([RECORDED[("udp", 4)][:-20], done_with_error], "udp"))


def test_a_netlink_failure_becomes_a_sock_diag_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Silent:
        def __init__(self, *args: object) -> None:
            pass

        def __enter__(self) -> Silent:
            return self

        def __exit__(self, *args: object) -> None:
            pass

        def settimeout(self, seconds: float) -> None:
            pass

        def send(self, data: bytes) -> int:
            return len(data)

        def recv(self, size: int) -> bytes:
            raise TimeoutError("timed out")

    monkeypatch.setattr("leadline.local.sockdiag.socket.socket", Silent)
    with pytest.raises(SockDiagError, match="timed out"):
        read_sockets()


def test_a_malformed_answer_stops_the_reader() -> None:
    with pytest.raises(SockDiagError, match="malformed"):
        list(parse_dump([struct.pack("=IHHII", 4, 20, 0, 1, 0) + bytes(72)], "tcp"))


def test_the_live_reader_finds_our_own_sockets_and_their_holder() -> None:
    with socket.socket() as listener, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as datagram:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        datagram.bind(("::1", 0))
        inodes = {os.fstat(s.fileno()).st_ino: s for s in (listener, datagram)}
        rows = [row for row in read_sockets() if row[8] in inodes]
        assert sorted(row[:5] for row in rows) == sorted([
            ("tcp", 4, "LISTEN", "127.0.0.1", listener.getsockname()[1]),
            ("udp", 6, "UNCONN", "::1", datagram.getsockname()[1]),
        ])
        assert all(row[7] == os.getuid() for row in rows)
        ours = {(s.local_port, s.pid, s.fd) for s in with_holders(rows)}
        assert ours == {(s.getsockname()[1], os.getpid(), s.fileno()) for s in inodes.values()}


def test_only_the_listening_states_when_asked() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            ports = {listener.getsockname()[1], client.getsockname()[1]}
            states = {row[2] for row in read_sockets(["tcp"], [4], {"tcp": 1 << 10}) if row[4] in ports}
            everything = {row[2] for row in read_sockets(["tcp"], [4]) if row[4] in ports}
    assert states == {"LISTEN"} and everything == {"LISTEN", "ESTAB"}


def test_the_snapshot_agrees_with_psutil_for_our_own_sockets() -> None:
    with socket.socket() as listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        datagram.bind(("127.0.0.1", 0))
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                mine = os.getpid()
                ours = {s[:9] for s in read_snapshot().sockets if s.pid == mine}
                theirs = {s[:9] for s in psutil_sockets(frozenset({4, 6}), frozenset({"tcp", "udp"})) if s.pid == mine}
    assert len(ours) >= 4 and ours == theirs


def test_without_sock_diag_the_listing_comes_from_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> list[object]:
        raise SockDiagError(93, "sock_diag: Protocol not supported")

    monkeypatch.setattr("leadline.local.kernel.read_sockets", refused)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        found = [s for s in read_snapshot().sockets if s.pid == os.getpid() and s.local_port == listener.getsockname()[1]]
        assert [(s.state, s.fd) for s in found] == [("LISTEN", listener.fileno())]


def test_our_own_process_reads_as_psutil_reads_it() -> None:
    owner = procfs.read_owners([os.getpid()])[os.getpid()]
    process = psutil.Process(os.getpid())
    assert owner.name == process.name() and owner.user == process.username()
    assert list(owner.cmdline) == process.cmdline()
    assert owner.started == pytest.approx(process.create_time(), abs=0.01)
    assert procfs.read_owners([2**22 + 7]) == {}  # no such process: left out, no error


def _fake_process(proc: Path, pid: int, comm: str, cmdline: bytes, uid: int, links: dict[int, str]) -> None:
    (proc / str(pid) / "fd").mkdir(parents=True)
    (proc / str(pid) / "stat").write_bytes(f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 ".encode()
                                           + b"0 " * 12 + b"20 0 1 0 4200 9999 ")
    (proc / str(pid) / "status").write_bytes(f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n".encode())
    (proc / str(pid) / "cmdline").write_bytes(cmdline)
    for fd, target in links.items():
        os.symlink(target, proc / str(pid) / "fd" / str(fd))


def test_a_proc_tree_maps_inodes_to_every_holder(tmp_path: Path) -> None:
    (tmp_path / "stat").write_bytes(b"cpu  1 2 3\nbtime 1700000000\n")
    _fake_process(tmp_path, 40, "nginx", b"nginx: master process\0", 0,
                  {3: "socket:[555]", 4: "/dev/null", 6: "socket:[777]"})
    _fake_process(tmp_path, 41, "nginx", b"nginx: worker process", 33, {6: "socket:[555]", 7: "pipe:[12]"})
    (tmp_path / "self").mkdir()  # not a pid: skipped
    assert procfs.socket_holders({555, 777, 999}, proc=str(tmp_path)) == {555: [(40, 3), (41, 6)], 777: [(40, 6)]}
    assert procfs.socket_holders(set(), proc=str(tmp_path)) == {}
    owners = procfs.read_owners([40, 41, 42], proc=str(tmp_path))
    assert sorted(owners) == [40, 41]
    ticks = os.sysconf("SC_CLK_TCK")
    assert owners[40].started == pytest.approx(1_700_000_000 + 4200 / ticks)
    assert owners[40].cmdline == ("nginx:", "master", "process")  # one NUL-ended word with spaces: split, as psutil
    assert owners[41].cmdline == ("nginx:", "worker", "process")  # no NUL at all: split at spaces
    assert owners[40].user == "root"


def test_a_cut_short_comm_is_completed_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "stat").write_bytes(b"btime 1700000000\n")
    _fake_process(tmp_path, 50, "systemd-resolve", b"/lib/systemd/systemd-resolved\0--x\0", 2**31 - 7, {})
    _fake_process(tmp_path, 51, "a name (with) pa", b"/bin/other\0", 0, {})
    owners = procfs.read_owners([50, 51], proc=str(tmp_path))
    assert owners[50].name == "systemd-resolved" and owners[50].cmdline == ("/lib/systemd/systemd-resolved", "--x")
    assert owners[50].user == str(2**31 - 7)  # no passwd entry: the number
    assert owners[51].name == "a name (with) pa"  # parentheses inside comm: the last ')' closes it
    (tmp_path / "51" / "stat").write_bytes(b"51 (cut) S 1")  # cut short: no start time, still listed
    (tmp_path / "51" / "status").write_bytes(b"Name:\tcut\n")
    (tmp_path / "51" / "cmdline").write_bytes(b"\xffbad\0")
    cut = procfs.read_owners([51], proc=str(tmp_path))[51]
    assert (cut.name, cut.started, cut.user, cut.cmdline) == ("cut", None, None, ("\ufffdbad",))
