"""Scripts' I/O over real sockets: connections to one target, each call bounded by the script's deadline.

This is the only place a script's bytes meet the kernel.  Every
connection dials the script's own target (never an address a service
names), every read is bounded by the deadline and capped (``TOTAL_CAP``
bytes per connection: a service that sends 10 MB is cut off, not
buffered), and TLS accepts any certificate, since the point is to read it.
"""

from __future__ import annotations

import socket
import ssl
import time

from leadline.detect.scripts.base import MAX_READ, ScriptError, ScriptTimeout

__all__ = ["TOTAL_CAP", "SocketConn", "SocketScriptIO"]

TOTAL_CAP = 1 << 20  # bytes read from one connection at most; past it the stream counts as ended


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:  # an OpenSSL without security levels
        pass
    return ctx


class SocketConn:
    """A TCP (or TLS) conversation with a buffer, so ``recv_until`` never loses what follows its marker."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.total = 0
        self.eof = False

    def _timeout(self, wait: float | None) -> float:
        left = self.deadline - time.monotonic()
        if wait is not None:
            left = min(left, wait)
        if left <= 0:
            raise ScriptTimeout("deadline passed")
        return left

    def _fill(self, cap: int, wait: float | None = None) -> None:
        """Read once more into the buffer; ``ScriptTimeout`` if nothing comes in time."""
        if self.eof:
            return
        if self.total >= TOTAL_CAP:
            self.eof = True
            return
        self.sock.settimeout(self._timeout(wait))
        try:
            data = self.sock.recv(max(1, min(cap, MAX_READ, TOTAL_CAP - self.total)))
        except (TimeoutError, socket.timeout):
            raise ScriptTimeout("no answer before the deadline") from None
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.eof = True
        self.total += len(data)
        self.buf += data

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self._timeout(None))
        try:
            self.sock.sendall(data)
        except (TimeoutError, socket.timeout):
            raise ScriptTimeout("send timed out") from None
        except OSError as e:
            raise ScriptError(f"send failed: {e.strerror or e}") from None

    def recv(self, cap: int = 4096, wait: float | None = None) -> bytes:
        if not self.buf:
            self._fill(cap, wait)
        out, self.buf = self.buf[:cap], self.buf[cap:]
        return out

    def recv_until(self, marker: bytes, cap: int = MAX_READ) -> bytes:
        while marker not in self.buf and len(self.buf) < cap and not self.eof:
            self._fill(cap - len(self.buf))
        end = self.buf.find(marker)
        n = min(cap, end + len(marker)) if end >= 0 else min(cap, len(self.buf))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_all(self, cap: int = MAX_READ) -> bytes:
        try:
            while len(self.buf) < cap and not self.eof:
                self._fill(cap - len(self.buf))
        except ScriptTimeout:
            if not self.buf:
                raise
        out, self.buf = self.buf[:cap], self.buf[cap:]
        return out

    def peer_certificate(self) -> bytes | None:
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.getpeercert(binary_form=True)
        return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SocketScriptIO:
    """``ScriptIO`` for one target address, until ``deadline`` (time.monotonic())."""

    def __init__(self, address: str, deadline: float) -> None:
        self.address = address
        self.deadline = deadline
        self.family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ScriptTimeout("deadline passed")
        return left

    def connect(self, port: int, *, tls: bool = False) -> SocketConn:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._left())
            sock.connect((self.address, port))
            if tls:
                sock.settimeout(self._left())
                sock = _tls_context().wrap_socket(sock, server_hostname=None)
        except (TimeoutError, socket.timeout):
            sock.close()
            raise ScriptTimeout(f"connect to port {port} timed out") from None
        except (OSError, ssl.SSLError) as e:
            sock.close()
            raise ScriptError(f"connect to port {port}{' (TLS)' if tls else ''} failed: {e}") from None
        return SocketConn(sock, self.deadline)

    def udp_exchange(self, port: int, payload: bytes, cap: int = 4096) -> bytes:
        with socket.socket(self.family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((self.address, port))
                for attempt in range(2):
                    sock.send(payload)
                    sock.settimeout(min(self._left(), 1.0 + attempt))
                    try:
                        return sock.recv(min(cap, MAX_READ))
                    except (TimeoutError, socket.timeout):
                        continue
            except OSError as e:
                raise ScriptError(f"UDP exchange with port {port} failed: {e.strerror or e}") from None
        raise ScriptTimeout(f"no UDP answer from port {port}")
