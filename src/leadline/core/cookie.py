"""Stateless reply validation: a keyed hash folded into what the target echoes.

Scheme.  For each (our address, target address, IP protocol, target
port) we compute two 64-bit keyed hashes of the packed addresses,
protocol and port and cut them into:

* first hash, bits 0-31   ``seq_base``: the TCP sequence number of attempt 0;
* first hash, bits 32-47  ``port_offset``: where this probe's source ports start;
* first hash, bits 48-63  the IPv4 identification field (random-looking, keyed);
* second hash, bits 0-15  an ICMP query identifier; bits 16-31 its sequence base.

The keyed hash is SipHash-1-3, the function behind Python's ``hash()``
of a bytes object, keyed with the interpreter's random per-process hash
seed; the per-scan secret (reduced to 16 bytes by blake2b) is hashed in
front of the fields, so the values stay unpredictable even when the
seed is fixed with PYTHONHASHSEED.  It runs in C in about a tenth of a
microsecond, where a keyed blake2b per probe cost ten times that, on
every probe sent and every reply checked.  SipHash is a keyed PRF made
for exactly this (short inputs, an attacker who sees outputs but not the
key), so an off-path sender forging a reply still has to guess the
24 unknown bits of an echoed sequence number.  Values depend on the
process: a reply is checked by the process (or a fork of it) that built
the probe, which is always the case here.

Retransmissions are told apart, so a reply says which attempt it
answers (for RTT samples), by adding the attempt number (mod 256) in
places a reply brings back:

* TCP sequence number:  ``seq_base + attempt * 2**24`` (mod 2**32).  A
  reply echoes it (SYN/ACK or RST/ACK: ack = seq + SYN + FIN; RST to a
  probe with ACK set: seq = our ack, which we set to the same value).
  Recovery subtracts ``seq_base``: the low 24 bits must be zero and the
  top byte is the attempt, so a forged reply passes with odds 2**-24.
* Source port: ``low + (port_offset + attempt) mod span`` within
  32768..61000 (or the fixed ``-g`` port, which then carries nothing).
  Protocols with no sequence number (UDP) recover the attempt from it.
* ICMP queries: identifier from the digest; sequence =
  ``sequence_base + attempt`` (mod 2**16).

The secret is drawn per scan, so replies to an earlier scan, or to
another scanner on the same host, fail the check and are ignored.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple
from functools import lru_cache

__all__ = ["CookieValues", "ReplyCookie", "ATTEMPT_MODULUS", "EPHEMERAL_PORTS"]

ATTEMPT_MODULUS = 256  # attempts are encoded mod this
_ATTEMPT_SHIFT = 24  # attempt lives in the top byte of the sequence number
_LOW_MASK = (1 << _ATTEMPT_SHIFT) - 1
EPHEMERAL_PORTS = (32768, 61000)  # inclusive; Linux's default ephemeral range


class CookieValues(NamedTuple):
    """The digest of one (source, target, protocol, port), cut into its uses.

    A named tuple: built on every probe and every reply, and a frozen
    dataclass costs several times as much to construct.
    """

    seq_base: int
    port_offset: int
    ip_id: int
    icmp_ident: int
    icmp_sequence_base: int


class ReplyCookie:
    """Derives probe fields from the per-scan secret and checks what replies echo."""

    __slots__ = ("_tcp_prefix", "_icmp_prefix", "_fixed_port", "_low", "_span")

    def __init__(self, secret: bytes, *, source_port: int | None = None, port_range: tuple[int, int] = EPHEMERAL_PORTS) -> None:
        if not secret:
            raise ValueError("the reply cookie needs a non-empty secret")
        key = hashlib.blake2b(secret, digest_size=16).digest()
        # Two domains, so the two hashes of one tuple are independent.
        self._tcp_prefix = key + b"\x01"
        self._icmp_prefix = key + b"\x02"
        self._fixed_port = source_port
        self._low = port_range[0]
        self._span = port_range[1] - port_range[0] + 1

    @staticmethod
    @lru_cache(maxsize=64)
    def for_scan(secret: bytes, source_port: int | None = None) -> "ReplyCookie":
        """A shared instance per (secret, fixed port): modules call this on every probe."""
        return ReplyCookie(secret, source_port=source_port)

    def values(self, src: bytes, dst: bytes, protocol: int, port: int) -> CookieValues:
        fields = src + dst + bytes((protocol, port >> 8, port & 0xFF))
        first = hash(self._tcp_prefix + fields)
        second = hash(self._icmp_prefix + fields)
        return CookieValues(
            first & 0xFFFFFFFF, (first >> 32) & 0xFFFF, (first >> 48) & 0xFFFF, second & 0xFFFF, (second >> 16) & 0xFFFF
        )

    def tcp_values(self, src: bytes, dst: bytes, port: int) -> CookieValues:
        """``values`` for a TCP probe, whose fields all come from the first hash:
        the ICMP ones are left at 0 and the second hash is not computed."""
        first = hash(self._tcp_prefix + src + dst + (0x060000 | port).to_bytes(3, "big"))
        return CookieValues(first & 0xFFFFFFFF, (first >> 32) & 0xFFFF, (first >> 48) & 0xFFFF, 0, 0)

    # --- building -------------------------------------------------------
    @staticmethod
    def sequence(values: CookieValues, attempt: int) -> int:
        return (values.seq_base + ((attempt % ATTEMPT_MODULUS) << _ATTEMPT_SHIFT)) & 0xFFFFFFFF

    def source_port(self, values: CookieValues, attempt: int) -> int:
        if self._fixed_port is not None:
            return self._fixed_port
        return self._low + (values.port_offset + attempt % ATTEMPT_MODULUS) % self._span

    @staticmethod
    def icmp_sequence(values: CookieValues, attempt: int) -> int:
        return (values.icmp_sequence_base + attempt % ATTEMPT_MODULUS) & 0xFFFF

    # --- checking -------------------------------------------------------
    @staticmethod
    def attempt_from_sequence(values: CookieValues, echoed: int) -> int | None:
        """The attempt a (reply-echoed) sequence number belongs to, or None if it is not ours."""
        diff = (echoed - values.seq_base) & 0xFFFFFFFF
        return None if diff & _LOW_MASK else diff >> _ATTEMPT_SHIFT

    def attempt_from_port(self, values: CookieValues, port: int) -> int | None:
        """The attempt a source port belongs to; None if it is not one of ours or the port is fixed."""
        if self._fixed_port is not None:
            return None
        attempt = (port - self._low - values.port_offset) % self._span
        if not self._low <= port < self._low + self._span or attempt >= ATTEMPT_MODULUS:
            return None
        return attempt

    def port_is_ours(self, values: CookieValues, port: int) -> bool:
        if self._fixed_port is not None:
            return port == self._fixed_port
        return self.attempt_from_port(values, port) is not None

    @staticmethod
    def attempt_from_icmp_sequence(values: CookieValues, sequence: int) -> int | None:
        attempt = (sequence - values.icmp_sequence_base) & 0xFFFF
        return attempt if attempt < ATTEMPT_MODULUS else None
