"""The raw-packet engine: a thin loop that moves a ScanSession's datagrams over real sockets.

Sending uses a raw IP socket with the header included (IPPROTO_RAW), so
the probe's bytes go out exactly as the scan module built them.
Receiving uses one AF_PACKET datagram socket: it sees every IP datagram
on every interface of the namespace, ICMP errors included, and also our
own outgoing packets (PACKET_OUTGOING), so the pcap holds the whole
conversation, including the RST the kernel sends when a SYN/ACK answers
a SYN it never made.  A classic BPF filter attached to that socket
passes only the probe's protocol and ICMP, so the kernel, not Python,
throws away unrelated traffic; when no pcap is written it also drops our
own outgoing packets, which would otherwise double the receive work.

All decisions live in the session; this module only moves bytes and
reads the clock.
"""

from __future__ import annotations

import ctypes
import errno
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

from leadline.core.session import Event, ScanSession
from leadline.errors import PrivilegeError
from leadline.output.packettrace import trace_line
from leadline.output.pcap import PcapWriter

__all__ = ["attach_filter", "close_in_background", "protocol_filter", "run_raw_scan", "source_address_for"]

_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_TCP = 6
_ETH_P_ALL = 0x0003  # only "all protocols" taps see outgoing packets too
_SKF_AD_PROTOCOL = 0xFFFFF000  # BPF ancillary load: SKF_AD_OFF + SKF_AD_PROTOCOL
_SKF_AD_PKTTYPE = 0xFFFFF004  # BPF ancillary load: SKF_AD_OFF + SKF_AD_PKTTYPE
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_MAX_WAIT = 0.05  # never sleep longer, so a stop request is noticed quickly
_RECEIVE_BATCH = 512
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # ret #0
_SO_TIMESTAMPNS = 35  # Linux; also the control-message type of the timestamp (SCM_TIMESTAMPNS)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


def source_address_for(dst: str) -> str:
    """The local address the kernel would use to reach ``dst``; no packet is sent."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((dst, 9))
        return str(probe.getsockname()[0])


def protocol_filter(
    family: int, protocols: tuple[int, ...], *, outgoing: bool = True, share: tuple[int, int] | None = None
) -> bytes:
    """Classic BPF: accept an IPv4 (or IPv6) datagram whose protocol byte is one of ``protocols``.

    ``outgoing=False`` also drops the packets we send ourselves (pkttype PACKET_OUTGOING).
    ``share=(index, count)`` keeps only the TCP segments whose source port
    (the port probed) is ``index`` modulo ``count``: the replies for one
    worker of a split scan, so no worker reads another's.  Other protocols
    (ICMP errors) pass to every worker; their quoted probe is checked by
    the session that owns it.
    """
    ethertype = _ETH_P_IPV6 if family == 6 else _ETH_P_IP
    offset = 6 if family == 6 else 9  # next-header / protocol field; no link header on SOCK_DGRAM
    # (opcode, jump-if-true label, jump-if-false label, k); labels resolve to relative jumps.
    code: list[tuple[int, str | None, str | None, int]] = []
    if not outgoing:
        code.append((0x20, None, None, _SKF_AD_PKTTYPE))  # ld skb->pkt_type
        code.append((0x15, "drop", None, _PACKET_OUTGOING))  # jeq #outgoing -> drop
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


def attach_filter(sock: socket.socket, program: bytes) -> None:
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _open_sockets(
    family: int, ip_protocol: int, *, outgoing: bool, share: tuple[int, int] | None = None
) -> tuple[socket.socket, socket.socket]:
    try:
        if family == 6:
            sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
            receiver = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
            icmp = 58
        else:
            sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            receiver = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
            icmp = 1
    except PermissionError as exc:
        raise PrivilegeError("raw-packet scans need root (or CAP_NET_RAW); use -sT instead") from exc
    try:
        receiver.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
    except OSError:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    protocols = tuple(dict.fromkeys((ip_protocol, icmp)))
    attach_filter(receiver, protocol_filter(family, protocols, outgoing=outgoing, share=share))
    receiver.setblocking(False)
    while True:  # whatever arrived before the filter was attached
        try:
            receiver.recv(65535)
        except BlockingIOError:
            break
    sender.setblocking(False)
    return sender, receiver


def _loopback_names() -> set[str]:
    return {name for _, name in socket.if_nameindex() if name == "lo"}


def run_raw_scan(
    session: ScanSession,
    *,
    family: int = 4,
    on_event: Callable[[Event], None],
    stop: threading.Event | None = None,
    pcap: PcapWriter | None = None,
    trace: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    share: tuple[int, int] | None = None,
) -> None:
    """Run ``session`` to the end (or until ``stop`` is set), sending and capturing for real.

    ``share=(index, count)``: this session probes only ports congruent to
    ``index`` modulo ``count`` (one worker of a split scan); its receiver
    then never sees TCP replies meant for the others.
    """
    sender, receiver = _open_sockets(family, session.module.ip_protocol, outgoing=pcap is not None, share=share)
    # Evidence someone will read (a pcap, the packet trace, --explain) gets the
    # kernel's arrival times and a clock reading per send: under load, answers
    # wait in our socket while a batch of probes goes out, and the RTTs shown
    # would carry that wait.
    precise = pcap is not None or trace is not None or session.explain
    stamped = precise and _enable_timestamps(receiver)
    loopback = _loopback_names()
    selector = selectors.DefaultSelector()
    selector.register(receiver, selectors.EVENT_READ)
    start = clock()
    wall_offset = time.time() - start
    our_address = session.ctx.source_address
    send = sender.sendto
    receive = session.receive
    try:
        while not session.finished and not (stop is not None and stop.is_set()):
            now = clock()
            for probe in session.due(now):
                if precise:
                    now = clock()
                    session.stamp_sent(probe.key, now)
                try:
                    send(probe.packet, (probe.key.address, 0))
                except OSError as exc:
                    if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH):
                        raise
                    # lost on our side; the session retransmits it like any lost probe
                if trace is not None:
                    trace(trace_line("SENT", now - start, probe.packet))
            wait = min(_MAX_WAIT, session.time_until_next(clock()))
            if wait > 0 and selector.select(wait):
                pass
            if not precise:
                # The kernel already dropped our own packets: nothing to look at but the bytes.
                recv = receiver.recv
                for _ in range(_RECEIVE_BATCH):
                    try:
                        datagram = recv(65535)
                    except BlockingIOError:
                        break
                    for event in receive(datagram, clock()):
                        on_event(event)
            else:
                for _ in range(_RECEIVE_BATCH):
                    try:
                        datagram, ancillary, _, address = receiver.recvmsg(65535, _ANCILLARY_SPACE)
                    except BlockingIOError:
                        break
                    arrived = _kernel_time(ancillary) if stamped else None
                    received = clock() if arrived is None else arrived - wall_offset
                    interface, packet_type = address[0], address[2]
                    outgoing = packet_type == _PACKET_OUTGOING
                    if pcap is not None and not (outgoing and interface in loopback):
                        pcap.write(datagram, received + wall_offset)
                    if outgoing:
                        continue
                    if trace is not None and _destination(datagram) == our_address:
                        trace(trace_line("RCVD", received - start, datagram))
                    for event in receive(datagram, received):
                        on_event(event)
            for event in session.expire(clock()):
                on_event(event)
    finally:
        selector.close()
        sender.close()
        close_in_background(receiver)
        if pcap is not None:
            pcap.flush()


def _enable_timestamps(receiver: socket.socket) -> bool:
    """Ask for each packet's arrival time (SO_TIMESTAMPNS); False where the kernel refuses."""
    try:
        receiver.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The wall-clock arrival time the kernel attached to a packet, if any."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            return seconds + nanoseconds * 1e-9
    return None


def _destination(datagram: bytes) -> str | None:
    if len(datagram) >= 40 and datagram[0] >> 4 == 6:
        return str(socket.inet_ntop(socket.AF_INET6, datagram[24:40]))
    if len(datagram) >= 20:
        return socket.inet_ntoa(datagram[16:20])
    return None
