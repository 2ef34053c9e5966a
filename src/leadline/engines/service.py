"""Version detection's I/O: many TCP, TLS and UDP conversations at once, each with its own deadline.

Every open port gets one asyncio task that follows its ``PortProbing``
(``detect/service/policy.py``): connect, send the probe, read until the
answer would settle the port, the peer closes or the probe's wait runs out.
Probes go one at a time while answers come; when the oldest probe in flight
has been silent for ``patience``, one more starts on a connection of its
own, up to ``window`` (never beside the NULL probe, so a service that
greets sees one connection).  Answers are read in probe order: the first
probe in nmap's order that matches wins, as if they had gone one by one,
while a silent service costs about a quarter of the waiting.  One silent service never holds up the others; a port's
whole conversation has a deadline too.  What is read per connection is
capped (``MAX_READ``), so a 10 MB banner costs 64 KB.  Only the target's
own address and port are ever contacted: a redirect or referral in an
answer is data to match, never followed.

After the probes, a port nmap's -sV would hand to a version script gets
that script's exchange here: an MQTT broker is asked for its version
(``detect/service/mqtt.py``), which becomes the service name as in nmap.

A deliberate difference from nmap: the NULL probe (waiting for a banner)
waits ``null_wait`` rather than six seconds.  A service that speaks first
speaks at once; a late banner is still read, since every probe's answer is
also matched against the NULL probe's lines, as in nmap.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from leadline.detect.service.mqtt import MqttVersionReader, connect_packet, subscribe_packet, wants_mqtt_version

from leadline.detect.service.policy import PortProbing
from leadline.detect.service.probes import Probe, ProbeDatabase
from leadline.model import ServiceDetail

__all__ = ["MAX_READ", "OnResult", "ServiceOptions", "ServiceTarget", "detect_services"]

MAX_READ = 64 * 1024  # bytes read per connection, at most


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    address: str
    port: int
    protocol: str  # "tcp" | "udp"


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """The knobs of one service scan; seconds throughout."""

    intensity: int = 7
    null_wait: float = 1.0  # how long the NULL probe waits for a banner
    udp_wait: float = 1.0  # how long a UDP probe waits for its answer
    connect_timeout: float = 5.0
    port_deadline: float = 60.0  # one port's whole conversation
    parallelism: int = 64  # ports in conversation at once
    window: int = 4  # probes in flight at once to one port (after the NULL probe, which goes alone)
    patience: float = 0.5  # the oldest probe's silence that lets one more probe start
    max_read: int = MAX_READ
    version_step_wait: float = 3.0  # the whole of a version step's exchange (MQTT), at most


OnResult = Callable[[ServiceTarget, "ServiceDetail | None"], None]
Log = Callable[[str], None]


def _tls_context() -> ssl.SSLContext:
    """A client context that talks to anything: the point is to see the service, not to trust it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    return ctx


class _Conversations:
    """The shared state of one run: the database, the options, the callbacks."""

    def __init__(self, db: ProbeDatabase, options: ServiceOptions, on_result: OnResult, stop: threading.Event,
                 log: Log | None, trace: Log | None) -> None:
        self.db = db
        self.options = options
        self.on_result = on_result
        self.stop = stop
        self.log = log
        self.trace = trace
        self.tls = _tls_context()

    async def run(self, targets: Sequence[ServiceTarget]) -> None:
        gate = asyncio.Semaphore(self.options.parallelism)

        async def one(t: ServiceTarget) -> None:
            async with gate:
                if self.stop.is_set():
                    return
                state: list[PortProbing] = []
                try:
                    detail = await asyncio.wait_for(self.port(t, state), self.options.port_deadline)
                except (asyncio.TimeoutError, OSError):
                    detail = state[-1].result() if state else None  # what was learned before the deadline
                self.on_result(t, detail)

        await asyncio.gather(*(one(t) for t in targets))

    async def port(self, t: ServiceTarget, state: list[PortProbing]) -> ServiceDetail | None:
        policy = self._policy(t, tls=False)
        state.append(policy)
        before_tls: ServiceDetail | None = None
        inflight: deque[tuple[Probe, asyncio.Task[tuple[bytes, float | None]]]] = deque()
        width = 1  # probes allowed in flight: grows while the oldest one stays silent
        try:
            while not self.stop.is_set():
                self._launch(t, policy, inflight, width)
                if not inflight:
                    break
                probe, task = inflight[0]
                finished, _ = await asyncio.wait({task}, timeout=self.options.patience)
                if not finished:
                    width = min(width + 1, self.options.window)
                    continue
                inflight.popleft()
                width = 1
                data, closed = task.result()
                policy.feed(probe, data)
                policy.end_probe(probe, data, closed)
                if policy.wants_tls and not policy.tls:
                    _cancel(inflight)
                    before_tls = ServiceDetail("ssl", method="probed", confidence=10)
                    policy = self._policy(t, tls=True)
                    state.append(policy)
                elif policy.settled:
                    break
        finally:
            _cancel(inflight)
        found = policy.result()
        if found is None and policy.tls:
            found = before_tls
        if not self.stop.is_set() and wants_mqtt_version(t.port, t.protocol, found.name if found else None,
                                                          self.options.intensity):
            found = await self.mqtt_version(t, found, tls=policy.tls)
        if found is not None and self.trace is not None:
            self.trace(f"Service scan match: {t.address}:{t.port} is {found.name}.  "
                       f"Version: |{found.product or ''}|{found.version or ''}|{found.extrainfo or ''}|")
        return found

    def _launch(self, t: ServiceTarget, policy: PortProbing,
                inflight: deque[tuple[Probe, asyncio.Task[tuple[bytes, float | None]]]], width: int) -> None:
        """Start probes up to ``width``; the NULL probe goes alone, so a banner service sees one connection."""
        while len(inflight) < width and not policy.settled:
            if inflight and inflight[0][0].is_null:
                return
            probe = policy.next_probe()
            if probe is None:
                return
            if self.trace is not None:
                self.trace(f"Service scan sending probe {probe.name} to {t.address}:{t.port} ({t.protocol})")
            exchange = self.udp_exchange(t, probe, policy) if t.protocol == "udp" else self.tcp_exchange(t, probe, policy)
            inflight.append((probe, asyncio.ensure_future(exchange)))

    def _policy(self, t: ServiceTarget, *, tls: bool) -> PortProbing:
        return PortProbing(self.db, t.protocol, t.port, self.options.intensity, tls=tls, log=self.log)

    def _wait(self, probe: Probe) -> float:
        wait = probe.wait_ms() / 1000.0
        return min(wait, self.options.null_wait) if probe.is_null else wait

    async def tcp_exchange(self, t: ServiceTarget, probe: Probe, policy: PortProbing) -> tuple[bytes, float | None]:
        """One connection: send the probe, read until settled, closed or out of time; (data, seconds until closed)."""
        t0 = time.monotonic()
        opts = self.options
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(t.address, t.port, ssl=self.tls if policy.tls else None,
                                        server_hostname="" if policy.tls else None, limit=opts.max_read),
                opts.connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            return b"", time.monotonic() - t0
        data = bytearray()
        closed: float | None = None
        deadline = t0 + self._wait(probe)
        try:
            if probe.payload:
                writer.write(probe.payload)
                await writer.drain()
            while len(data) < opts.max_read and not self.stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                chunk = await asyncio.wait_for(reader.read(opts.max_read - len(data)), left)
                if not chunk:
                    closed = time.monotonic() - t0
                    break
                data += chunk
                if policy.peek(probe, bytes(data)):
                    break
        except (asyncio.TimeoutError, TimeoutError):
            pass
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            closed = time.monotonic() - t0
        finally:
            writer.transport.abort()
        return bytes(data), closed

    async def mqtt_version(self, t: ServiceTarget, found: ServiceDetail | None, *, tls: bool) -> ServiceDetail | None:
        """nmap's mqtt-subscribe as -sV runs it: the broker's ``$SYS/broker/version`` becomes the service name."""
        reader_state = MqttVersionReader()
        opts = self.options

        async def talk() -> None:
            reader, writer = await asyncio.open_connection(t.address, t.port, ssl=self.tls if tls else None,
                                                           server_hostname="" if tls else None, limit=opts.max_read)
            try:
                writer.write(connect_packet("leadline-" + os.urandom(4).hex()) + subscribe_packet())
                await writer.drain()
                total = 0
                while not reader_state.done and total < opts.max_read:
                    chunk = await reader.read(opts.max_read - total)
                    if not chunk:
                        return
                    total += len(chunk)
                    reader_state.feed(chunk)
            finally:
                writer.transport.abort()

        try:
            await asyncio.wait_for(talk(), opts.version_step_wait)
        except (OSError, asyncio.TimeoutError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        if not reader_state.version:
            return found
        if self.trace is not None:
            self.trace(f"Service scan: {t.address}:{t.port} published its version: {reader_state.version!r}")
        if found is None:
            return ServiceDetail(reader_state.version, method="probed", confidence=10)
        return replace(found, name=reader_state.version)

    async def udp_exchange(self, t: ServiceTarget, probe: Probe, policy: PortProbing) -> tuple[bytes, float | None]:
        """One datagram out, the first datagram back (or nothing within the wait)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        class _Listen(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
                if not answer.done():
                    answer.set_result(data[:MAX_READ])

            def error_received(self, exc: Exception) -> None:
                if not answer.done():
                    answer.set_result(b"")

        try:
            transport, _ = await loop.create_datagram_endpoint(_Listen, remote_addr=(t.address, t.port))
        except OSError:
            return b"", None
        try:
            transport.sendto(probe.payload)
            data = await asyncio.wait_for(answer, min(self._wait(probe), self.options.udp_wait))
        except (asyncio.TimeoutError, TimeoutError):
            data = b""
        finally:
            transport.close()
        return data, None


def _cancel(inflight: deque[tuple[Probe, asyncio.Task[tuple[bytes, float | None]]]]) -> None:
    while inflight:
        inflight.popleft()[1].cancel()


def detect_services(db: ProbeDatabase, targets: Sequence[ServiceTarget], options: ServiceOptions, *,
                    on_result: OnResult, stop: threading.Event, log: Log | None = None,
                    trace: Log | None = None) -> None:
    """Probe every target; ``on_result`` hears about each port as its conversation ends."""
    if not targets:
        return
    asyncio.run(_Conversations(db, options, on_result, stop, log, trace).run(targets))
