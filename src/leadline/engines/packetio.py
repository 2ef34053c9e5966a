"""The one packet I/O layer: raw senders, packet-socket captures, BPF, buffers, binding, timestamps.

Every engine that deals in whole packets (the raw port scan, IPv4 and
IPv6 discovery) opens its sockets here, so the kernel-facing details are
written once:

  * probes leave through a raw IP socket with our header included
    (``open_ip_sender``), exactly as the probe module built them; ARP
    frames and neighbour solicitations leave through link-layer sockets
    (``LinkSenders``);
  * replies are read by a ``Capture``: AF_PACKET datagram sockets, each
    bound to one interface the routes to the targets use (the capture
    follows the probes' destinations), with a classic BPF program that
    passes only the scan's protocols and ICMP, so the kernel throws
    unrelated traffic away.  Binding matters: on a Linux bridge an
    unbound packet socket receives every frame twice, once from the
    bridge port and once from the bridge, and the scan would do all its
    receive work twice.  A socket is created with protocol 0 (it hears
    nothing), gets its filter, then is bound with ETH_P_ALL, so nothing
    unfiltered is ever queued on it;
  * receive buffers are grown past the system limit where root allows
    (SO_RCVBUFFORCE); kernel arrival times (SO_TIMESTAMPNS) are asked for
    when evidence is written; the kernel's drop counters
    (PACKET_STATISTICS) are read on request;
  * packet sockets are closed in the background: their close waits for
    an RCU grace period (10-25 ms) that the scan need not wait for.

Nothing here decides anything about a scan; the sessions in ``core`` do.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from leadline.core.packet.ethernet import ETHERTYPE_ARP
from leadline.engines.routes import InterfaceFinder, source_address_for
from leadline.errors import PrivilegeError

__all__ = [
    "ETH_P_IPV6",
    "MAX_WAIT",
    "RECEIVE_BATCH",
    "BacklogDrops",
    "Capture",
    "Captured",
    "LinkSenders",
    "attach_filter",
    "close_in_background",
    "destination",
    "kernel_time",
    "open_ip_sender",
    "protocol_filter",
    "source_address_for",
]

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ALL = 0x0003  # only "all protocols" taps see outgoing packets too
PACKET_OUTGOING = 4
MAX_WAIT = 0.05  # never sleep longer, so a stop request is noticed quickly
RECEIVE_BATCH = 512  # packets read per socket before the loop sends again
_TCP = 6
_SKF_AD_PROTOCOL = 0xFFFFF000  # BPF ancillary load: SKF_AD_OFF + SKF_AD_PROTOCOL
_SKF_AD_PKTTYPE = 0xFFFFF004  # BPF ancillary load: SKF_AD_OFF + SKF_AD_PKTTYPE
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMPNS = 35  # Linux; also the control-message type of the timestamp (SCM_TIMESTAMPNS)
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_TPACKET_STATS = struct.Struct("@II")  # struct tpacket_stats: packets, drops (reset when read)
_RECEIVE_BUFFER = 8 << 20
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # ret #0
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_LOOPBACK = "lo"


def protocol_filter(
    family: int, protocols: tuple[int, ...], *, outgoing: bool = True, share: tuple[int, int] | None = None,
    source_share: tuple[int, int] | None = None,
) -> bytes:
    """Classic BPF: accept an IPv4 (or IPv6) datagram whose protocol byte is one of ``protocols``.

    ``outgoing=False`` also drops the packets we send ourselves (pkttype PACKET_OUTGOING).
    ``share=(index, count)`` keeps only the TCP segments whose source port
    (the port probed) is ``index`` modulo ``count``: the replies for one
    worker of a split scan, so no worker reads another's.  Other protocols
    (ICMP errors) pass to every worker; their quoted probe is checked by
    the session that owns it.
    ``source_share=(index, count)`` (IPv4) keeps only the TCP segments and
    ICMP replies (not errors) whose source address is ``index`` modulo
    ``count``: a cluster task that probes only such addresses never reads
    the replies of the task beside it on the same machine.
    """
    if source_share is not None and family == 4:
        return _source_share_filter(protocols, outgoing, source_share)
    ethertype = ETH_P_IPV6 if family == 6 else ETH_P_IP
    offset = 6 if family == 6 else 9  # next-header / protocol field; no link header on SOCK_DGRAM
    # (opcode, jump-if-true label, jump-if-false label, k); labels resolve to relative jumps.
    code: list[tuple[int, str | None, str | None, int]] = []
    if not outgoing:
        code.append((0x20, None, None, _SKF_AD_PKTTYPE))  # ld skb->pkt_type
        code.append((0x15, "drop", None, PACKET_OUTGOING))  # jeq #outgoing -> drop
    code += [
        (0x28, None, None, _SKF_AD_PROTOCOL),  # ldh skb->protocol (the ethertype)
        (0x15, None, "drop", ethertype),  # jeq #ethertype, else -> drop
        (0x30, None, None, offset),  # ldb [offset]
    ]
    for protocol in protocols:
        target = "tcp-share" if share is not None and protocol == _TCP else "accept"
        code.append((0x15, target, None, protocol))  # jeq #protocol -> target
    code.append((0x06, None, None, 0))  # ret #0: drop
    labels = {"drop": len(code) - 1}
    if share is not None:
        index, count = share
        labels["tcp-share"] = len(code)
        if family == 6:
            code.append((0x28, None, None, 40))  # ldh [40]: TCP source port after a bare IPv6 header
        else:
            code.append((0xB1, None, None, 0))  # ldx 4*([0]&0xf): the IPv4 header length
            code.append((0x48, None, None, 0))  # ldh [x+0]: TCP source port
        code.append((0x94, None, None, count))  # mod #count
        code.append((0x15, "accept", None, index))  # jeq #index -> accept
        code.append((0x06, None, None, 0))  # ret #0: another worker's reply (jumps only go forward)
    labels["accept"] = len(code)
    code.append((0x06, None, None, 0x40000))  # ret #262144: accept

    def jump(at: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - at - 1

    return b"".join(
        struct.pack("HBBI", opcode, jump(at, true), jump(at, false), k) for at, (opcode, true, false, k) in enumerate(code)
    )


def _source_share_filter(protocols: tuple[int, ...], outgoing: bool, share: tuple[int, int]) -> bytes:
    """IPv4 only: TCP, and ICMP other than errors (3, 4, 5, 11, 12), pass when src mod count == index."""
    index, count = share
    code: list[tuple[int, int, int, int]] = []  # (opcode, jt, jf, k) with jumps filled in below
    prologue: list[tuple[int, str | None, str | None, int]] = []
    if not outgoing:
        prologue += [(0x20, None, None, _SKF_AD_PKTTYPE), (0x15, "drop", None, PACKET_OUTGOING)]
    prologue += [(0x28, None, None, _SKF_AD_PROTOCOL), (0x15, None, "drop", ETH_P_IP), (0x30, None, None, 9)]
    prologue += [(0x15, "icmp", None, 1)] if 1 in protocols else []
    prologue += [(0x15, "check", None, _TCP)] if _TCP in protocols else []
    others = [p for p in protocols if p not in (1, _TCP)]
    prologue += [(0x15, "accept", None, p) for p in others]
    prologue.append((0x06, None, None, 0))  # drop
    labels = {"drop": len(prologue) - 1, "icmp": len(prologue)}
    prologue += [(0xB1, None, None, 0), (0x50, None, None, 0)]  # ldx 4*([0]&0xf); ldb [x+0]: the ICMP type
    prologue += [(0x15, "accept", None, t) for t in (3, 4, 5, 11, 12)]  # errors pass: their quote is checked
    labels["check"] = len(prologue)
    prologue += [(0x20, None, None, 12), (0x94, None, None, count), (0x15, "accept", "drop2", index)]
    labels["drop2"] = len(prologue)
    prologue.append((0x06, None, None, 0))
    labels["accept"] = len(prologue)
    prologue.append((0x06, None, None, 0x40000))
    for at, (opcode, true, false, k) in enumerate(prologue):
        jt = 0 if true is None else labels[true] - at - 1
        jf = 0 if false is None else labels[false] - at - 1
        code.append((opcode, jt, jf, k))
    return b"".join(struct.pack("HBBI", *ins) for ins in code)


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attach a classic BPF program (the bytes of ``struct sock_filter[]``) to ``sock``."""
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def close_in_background(sock: socket.socket) -> None:
    """Close a packet socket without waiting for it.

    Closing an AF_PACKET socket waits for an RCU grace period, 10-25 ms
    here; the scan has better things to do than wait, so a daemon thread
    does it.  Its receive filter is replaced by one that drops everything
    first, so nothing more is queued on it meanwhile.
    """
    try:
        attach_filter(sock, _DROP_ALL)
    except OSError:
        pass
    threading.Thread(target=sock.close, name="close-packet-socket", daemon=True).start()


def _grow_buffer(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)


def _drain(sock: socket.socket) -> None:
    """Drop what arrived before the filter was attached."""
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return


def _packet_socket(kind: int, protocol: int, needs: str) -> socket.socket:
    try:
        return socket.socket(socket.AF_PACKET, kind, socket.htons(protocol) if protocol else 0)
    except PermissionError as exc:
        raise PrivilegeError(needs) from exc


def open_ip_sender(family: int, needs: str) -> socket.socket:
    """A non-blocking raw IP socket that sends our datagrams as built (header included).

    ``needs`` is the one-line error shown when the process may not open it.
    """
    try:
        if family == 6:
            sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        else:
            sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    except PermissionError as exc:
        raise PrivilegeError(needs) from exc
    sender.setblocking(False)
    return sender


def _enable_timestamps(sock: socket.socket) -> bool:
    """Ask for each packet's arrival time (SO_TIMESTAMPNS); False where the kernel refuses."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The wall-clock arrival time the kernel attached to a packet, if any."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            return float(seconds + nanoseconds * 1e-9)
    return None


def destination(datagram: bytes) -> str | None:
    """The destination address of an IPv4 or IPv6 datagram, None when too short."""
    if len(datagram) >= 40 and datagram[0] >> 4 == 6:
        return str(socket.inet_ntop(socket.AF_INET6, datagram[24:40]))
    if len(datagram) >= 20:
        return socket.inet_ntoa(datagram[16:20])
    return None


class BacklogDrops:
    """Packets the kernel dropped before any socket saw them: the per-CPU receive backlog was full.

    A flood can fill the backlog (``net.core.netdev_max_backlog``) that a
    veth or a driver hands packets to, and a reply lost there never
    reaches a packet socket, so PACKET_STATISTICS does not count it.
    ``/proc/net/softnet_stat`` does (second column, per CPU).  The
    counter is the machine's, not the scan's: drops of other traffic
    count too, which costs a retry, never a wrong verdict.
    """

    _PATH = "/proc/net/softnet_stat"

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(self._PATH, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None
        self._last = self._read()

    def _read(self) -> int:
        if self._fd is None:
            return 0
        try:
            data = os.pread(self._fd, 65536, 0)
        except OSError:
            return 0
        total = 0
        for line in data.split(b"\n"):
            fields = line.split()
            if len(fields) > 1:
                try:
                    total += int(fields[1], 16)
                except ValueError:
                    continue
        return total

    def since_last(self) -> int:
        """Backlog drops since the last call (0 where the counter cannot be read)."""
        now = self._read()
        dropped, self._last = max(0, now - self._last), now
        return dropped

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Captured(NamedTuple):
    """One packet read from a capture, with what the kernel said about it."""

    data: bytes
    interface: str
    outgoing: bool  # one of ours, seen leaving (only when the capture keeps outgoing packets)
    hardware: bytes  # the link-layer source address (a MAC on Ethernet)
    arrived: float | None  # the kernel's wall-clock arrival time, when asked for


class Capture:
    """Packet sockets that hear the scan's replies on the interfaces its routes use.

    ``follow(address)`` before the first probe to ``address`` leaves makes
    sure its route's interface is captured; ``listen(interface)`` names one
    directly (None: every interface, used when no route is known).
    """

    def __init__(
        self,
        family: int,
        protocols: tuple[int, ...],
        *,
        needs: str,
        outgoing: bool = False,
        share: tuple[int, int] | None = None,
        source_share: tuple[int, int] | None = None,
        timestamps: bool = False,
        interfaces: Callable[[str], str | None] | None = None,
    ) -> None:
        self.outgoing = outgoing
        self.timestamps = timestamps
        self._program = protocol_filter(family, protocols, outgoing=outgoing, share=share, source_share=source_share)
        self._needs = needs
        self._interfaces = interfaces or InterfaceFinder()
        self._sockets: dict[str | None, socket.socket] = {}
        self._followed: set[str] = set()
        self._selector = selectors.DefaultSelector()
        self._backlog = BacklogDrops()

    @property
    def interfaces(self) -> tuple[str | None, ...]:
        """The interfaces captured so far (None: an unbound socket hearing every interface)."""
        return tuple(self._sockets)

    def follow(self, address: str) -> None:
        """Capture where the route to ``address`` leads, before a probe goes there."""
        if address not in self._followed:
            self._followed.add(address)
            self.listen(self._interfaces(address))

    def listen(self, interface: str | None) -> None:
        """Capture on ``interface`` (None: on every interface) from now on."""
        if interface in self._sockets:
            return
        try:
            sock = self._open(interface)
        except OSError:
            if interface is None:
                raise
            self.listen(None)  # the interface vanished or cannot be bound: hear them all
            return
        self._sockets[interface] = sock
        self._selector.register(sock, selectors.EVENT_READ)

    def _open(self, interface: str | None) -> socket.socket:
        # Bound: created deaf (protocol 0), filtered, then bound, so nothing unfiltered is queued.
        # Unbound: hears from creation, so what came before the filter is drained.
        sock = _packet_socket(socket.SOCK_DGRAM, 0 if interface is not None else ETH_P_ALL, self._needs)
        try:
            _grow_buffer(sock)
            attach_filter(sock, self._program)
            if self.timestamps:
                self.timestamps = _enable_timestamps(sock)
            sock.setblocking(False)
            if interface is not None:
                sock.bind((interface, ETH_P_ALL))
            else:
                _drain(sock)
        except OSError:
            sock.close()
            raise
        return sock

    def watch(self, sock: socket.socket) -> None:
        """Let ``sock`` (read by its owner) also end a ``wait``."""
        self._selector.register(sock, selectors.EVENT_READ)

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less if a packet arrives."""
        if timeout <= 0:
            return
        if self._selector.get_map():
            self._selector.select(timeout)
        else:
            time.sleep(timeout)

    def datagrams(self, limit: int = RECEIVE_BATCH) -> list[bytes]:
        """Up to ``limit`` datagrams per socket, bytes only: the fast path of a capture without evidence."""
        got: list[bytes] = []
        for sock in self._sockets.values():
            recv = sock.recv
            for _ in range(limit):
                try:
                    got.append(recv(65535))
                except BlockingIOError:
                    break
        return got

    def packets(self, limit: int = RECEIVE_BATCH) -> list[Captured]:
        """Up to ``limit`` packets per socket, with interface, direction, link source and arrival time."""
        got: list[Captured] = []
        for sock in self._sockets.values():
            for _ in range(limit):
                try:
                    if self.timestamps:
                        data, ancillary, _, address = sock.recvmsg(65535, _ANCILLARY_SPACE)
                        arrived = kernel_time(ancillary)
                    else:
                        data, address = sock.recvfrom(65535)
                        arrived = None
                except BlockingIOError:
                    break
                hardware = address[4] if len(address) > 4 else b""
                got.append(Captured(data, address[0], address[2] == PACKET_OUTGOING, hardware, arrived))
        return got

    def drops(self) -> int:
        """Packets the kernel dropped for want of buffer space since the last call: those our sockets
        had no room for (PACKET_STATISTICS) and those the receive backlog had no room for (BacklogDrops)."""
        dropped = self._backlog.since_last()
        for sock in self._sockets.values():
            try:
                _, lost = _TPACKET_STATS.unpack(sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS.size))
            except OSError:
                continue
            dropped += lost
        return dropped

    def close(self) -> None:
        self._selector.close()
        self._backlog.close()
        for sock in self._sockets.values():
            close_in_background(sock)
        self._sockets.clear()


class LinkSenders:
    """Link-layer senders: ARP frames per interface (whose sockets also hear the ARP replies) and
    IPv6 datagrams addressed to a link-layer destination (neighbour solicitations to a multicast MAC)."""

    def __init__(self, needs: str) -> None:
        self._needs = needs
        self.arp: dict[str, socket.socket] = {}
        self._nd: socket.socket | None = None

    def arp_socket(self, interface: str) -> socket.socket:
        """The ARP socket of ``interface``: sends whole Ethernet frames, receives ARP frames."""
        sock = self.arp.get(interface)
        if sock is None:
            sock = _packet_socket(socket.SOCK_RAW, ETHERTYPE_ARP, self._needs)
            sock.bind((interface, ETHERTYPE_ARP))
            _grow_buffer(sock)
            sock.setblocking(False)
            self.arp[interface] = sock
        return sock

    def send_ipv6(self, datagram: bytes, interface: str, mac: bytes) -> None:
        """Send an IPv6 datagram in a frame addressed to ``mac`` on ``interface`` (no route involved)."""
        if self._nd is None:
            self._nd = _packet_socket(socket.SOCK_DGRAM, 0, self._needs)  # protocol 0: sends, never queues
            self._nd.setblocking(False)
        self._nd.sendto(datagram, (interface, ETH_P_IPV6, 0, 0, mac))

    def close(self) -> None:
        for sock in self.arp.values():
            close_in_background(sock)
        if self._nd is not None:
            close_in_background(self._nd)
        self.arp.clear()
        self._nd = None
