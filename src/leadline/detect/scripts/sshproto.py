"""The few pieces of SSH's transport (RFC 4253) that scripts need, without I/O.

Enough to read a server's banner and KEXINIT and to take a key exchange as
far as the server's host key (the KEXDH/ECDH reply, RFC 4253 §8, RFC 5656
§4, RFC 8731): packets are unencrypted until NEWKEYS, so nothing past the
reply is ever needed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

from leadline.detect.scripts.base import Conn, ScriptError

__all__ = [
    "KEXINIT_FIELDS", "HostKey", "build_kexinit", "build_packet", "host_key_info", "kex_init_message",
    "parse_kexinit", "read_banner", "read_packet", "string",
]

MSG_KEXINIT = 20
MSG_KEX_INIT = 30  # KEXDH_INIT and KEX_ECDH_INIT share the number
MSG_KEX_REPLY = 31
MAX_PACKET = 35000  # RFC 4253 §6.1: implementations must take 35000 bytes; we read no more

KEXINIT_FIELDS = (
    "kex_algorithms", "server_host_key_algorithms",
    "encryption_algorithms_client_to_server", "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server", "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server", "compression_algorithms_server_to_client",
    "languages_client_to_server", "languages_server_to_client",
)

# RFC 3526 group 14 (2048-bit MODP), generator 2.
GROUP14 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)

KEX_OFFER = ("curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group14-sha256",
             "diffie-hellman-group14-sha1")


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def mpint(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b""
    return string(raw)


def build_packet(payload: bytes) -> bytes:
    """An unencrypted binary packet: length, padding length, payload, 4+ bytes of padding to a multiple of 8."""
    pad = 8 - (len(payload) + 5) % 8
    if pad < 4:
        pad += 8
    return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + os.urandom(pad)


def build_kexinit(host_key_algorithms: str, kex: str = ",".join(KEX_OFFER)) -> bytes:
    lists = [kex, host_key_algorithms, "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com",
             "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com",
             "hmac-sha2-256,hmac-sha2-512,hmac-sha1", "hmac-sha2-256,hmac-sha2-512,hmac-sha1", "none", "none", "", ""]
    body = bytes([MSG_KEXINIT]) + os.urandom(16) + b"".join(string(x.encode()) for x in lists)
    return build_packet(body + b"\x00" + b"\x00\x00\x00\x00")


def _take_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ScriptError("SSH: truncated string")
    (n,) = struct.unpack_from(">I", buf, pos)
    if pos + 4 + n > len(buf):
        raise ScriptError("SSH: truncated string")
    return buf[pos + 4:pos + 4 + n], pos + 4 + n


def parse_kexinit(payload: bytes) -> dict[str, str]:
    """The ten name-lists of a KEXINIT payload, by nmap's field names."""
    if not payload or payload[0] != MSG_KEXINIT:
        raise ScriptError("SSH: expected KEXINIT")
    pos, out = 17, {}
    for name in KEXINIT_FIELDS:
        value, pos = _take_string(payload, pos)
        out[name] = value.decode("ascii", "backslashreplace")
    return out


def _read_exact(conn: Conn, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ScriptError("SSH: connection closed")
        buf += chunk
    return buf


def read_banner(conn: Conn) -> str:
    """The server's identification line (lines before it, allowed by RFC 4253 §4.2, are skipped)."""
    for _ in range(20):
        line = conn.recv_until(b"\n", 256)
        if not line:
            break
        if line.startswith(b"SSH-"):
            return line.rstrip(b"\r\n").decode("latin-1")
    raise ScriptError("SSH: no identification string")


def read_packet(conn: Conn) -> bytes:
    """The payload of the next unencrypted packet."""
    length, pad = struct.unpack(">IB", _read_exact(conn, 5))
    if length < 5 or length > MAX_PACKET or pad >= length:
        raise ScriptError("SSH: bad packet length")
    rest = _read_exact(conn, length - 1)
    return rest[:length - 1 - pad]


def kex_init_message(kex: str) -> bytes:
    """Our half of the key exchange ``kex``: an X25519 public key or a group-14 DH value."""
    if kex.startswith("curve25519"):
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return build_packet(bytes([MSG_KEX_INIT]) + string(pub))
    x = int.from_bytes(os.urandom(32), "big") | 1
    return build_packet(bytes([MSG_KEX_INIT]) + mpint(pow(2, x, GROUP14)))


@dataclass(frozen=True)
class HostKey:
    key_type: str  # "ssh-ed25519"
    algorithm: str  # nmap's label: "ED25519", "RSA", "ECDSA", "DSA"
    bits: int
    blob: bytes

    @property
    def md5(self) -> str:
        return ":".join(f"{b:02x}" for b in hashlib.md5(self.blob).digest())

    @property
    def sha256(self) -> str:
        import base64

        return base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")


_FIXED = {"ecdsa-sha2-nistp256": ("ECDSA", 256), "ecdsa-sha2-nistp384": ("ECDSA", 384),
          "ecdsa-sha2-nistp521": ("ECDSA", 521), "ssh-ed25519": ("ED25519", 256)}


def host_key_info(reply: bytes) -> HostKey:
    """The host key in a KEX reply payload, with nmap's algorithm label and size in bits."""
    if not reply or reply[0] != MSG_KEX_REPLY:
        raise ScriptError("SSH: expected the key exchange reply")
    blob, _ = _take_string(reply, 1)
    key_type_raw, pos = _take_string(blob, 0)
    key_type = key_type_raw.decode("ascii", "backslashreplace")
    if key_type in _FIXED:
        algorithm, bits = _FIXED[key_type]
    elif key_type == "ssh-rsa":
        _e, pos = _take_string(blob, pos)
        n, _ = _take_string(blob, pos)
        algorithm, bits = "RSA", int.from_bytes(n, "big").bit_length()
    elif key_type == "ssh-dss":
        p, _ = _take_string(blob, pos)
        algorithm, bits = "DSA", int.from_bytes(p, "big").bit_length()
    else:
        raise ScriptError(f"SSH: unsupported host key type {key_type!r}")
    return HostKey(key_type, algorithm, bits, blob)
