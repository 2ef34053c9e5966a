"""ssl-cert: the server's certificate as nmap's ssl-cert shows it, parsed with ``cryptography``.

The stdlib ``ssl`` module hands back the peer certificate as DER but parses
it only when it was verified; a scanner sees self-signed and expired
certificates first of all, so the fields come from ``cryptography``'s X.509
parser, which reads any certificate it is given.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from leadline.detect.scripts.base import HostInfo, Script, ScriptContext, ScriptError, clean, elem, table
from leadline.detect.scripts.rules import SSL_PORTS, SSL_SERVICES, port_or_service, wants_tls
from leadline.model import PortResult, ScriptElement, ScriptResult

__all__ = ["SCRIPTS", "describe_certificate", "ssl_cert"]

NON_VERBOSE_FIELDS = ("commonName", "organizationName", "stateOrProvinceName", "countryName")
_port_rule = port_or_service(SSL_PORTS, SSL_SERVICES)


def ssl_rule(host: HostInfo, port: PortResult | None) -> bool:
    """nmap's shortport.ssl: a TLS port or service, or a port version detection found inside TLS."""
    return port is not None and (_port_rule(host, port) or wants_tls(port))


def _name_fields(name: x509.Name) -> list[tuple[str, str]]:
    out = []
    for attr in name:
        key = attr.oid._name if attr.oid._name != "Unknown OID" else attr.oid.dotted_string
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
        out.append((key, value))
    return out


def _stringify(fields: list[tuple[str, str]], verbosity: int) -> str:
    table_ = dict(reversed(fields))  # the first value of a repeated attribute
    parts = [f"{k}={clean(table_[k], 512)}" for k in NON_VERBOSE_FIELDS if k in table_]
    if verbosity > 1:
        parts += [f"{k}={clean(v, 512)}" for k, v in table_.items() if k not in NON_VERBOSE_FIELDS]
    return "/".join(parts)


def _san(cert: x509.Certificate) -> str | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return None
    names = []
    for gn in ext.value:
        if isinstance(gn, x509.DNSName):
            names.append(f"DNS:{gn.value}")
        elif isinstance(gn, x509.IPAddress):
            names.append(f"IP Address:{_ip_text(gn.value)}")
        elif isinstance(gn, x509.RFC822Name):
            names.append(f"email:{gn.value}")
        elif isinstance(gn, x509.UniformResourceIdentifier):
            names.append(f"URI:{gn.value}")
        else:
            names.append("othername:<unsupported>")
    return clean(", ".join(names), 8192)


def _ip_text(ip: object) -> str:
    if isinstance(ip, ipaddress.IPv6Address):  # OpenSSL prints every group, upper case, no compression
        return ":".join(f"{int(ip) >> (112 - 16 * i) & 0xFFFF:X}" for i in range(8))
    return str(ip)


def _when(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def _pubkey(cert: x509.Certificate) -> tuple[str, int, list[ScriptElement]]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return "rsa", key.key_size, [elem("modulus", f"{nums.n:X}"), elem("exponent", nums.e)]
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.key_size, [table("ecdhparams", [table("curve_params", [
            elem("ec_curve_type", "namedcurve"), elem("curve", key.curve.name)])])]
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, []
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, []
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456, []
    return "unknown", 0, []


def _grouped(digest: bytes) -> str:
    h = digest.hex()
    return " ".join(h[i:i + 4] for i in range(0, len(h), 4))


def describe_certificate(der: bytes, verbosity: int = 0) -> ScriptResult:
    """nmap's ssl-cert text and table for a DER certificate; ``ScriptError`` when it does not parse."""
    try:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = _name_fields(cert.subject), _name_fields(cert.issuer)
        sig = cert.signature_algorithm_oid._name
        before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
        ktype, bits, kextra = _pubkey(cert)
        san = _san(cert)
    except ValueError as e:
        raise ScriptError(f"certificate does not parse: {e}") from None
    md5, sha1 = hashlib.md5(der).digest(), hashlib.sha1(der).digest()
    lines = [f"Subject: {_stringify(subject, verbosity)}"]
    if san is not None:
        lines.append(f"Subject Alternative Name: {san}")
    if verbosity > 0:
        lines += [f"Issuer: {_stringify(issuer, verbosity)}", f"Public Key type: {ktype}",
                  f"Public Key bits: {bits}", f"Signature Algorithm: {sig}"]
    lines += [f"Not valid before: {_when(before)}", f"Not valid after:  {_when(after)}"]
    pem = cert.public_bytes(Encoding.PEM).decode()
    if verbosity > 0:
        lines += [f"MD5:   {_grouped(md5)}", f"SHA-1: {_grouped(sha1)}"]
    if verbosity > 1:
        lines.append(pem)
    elements = (
        table("subject", [elem(k, v) for k, v in sorted(dict(reversed(subject)).items())]),
        table("issuer", [elem(k, v) for k, v in sorted(dict(reversed(issuer)).items())]),
        table("pubkey", [elem("type", ktype), elem("bits", bits), *kextra]),
        elem("sig_algo", sig),
        table("validity", [elem("notBefore", _when(before)), elem("notAfter", _when(after))]),
        elem("md5", md5.hex()), elem("sha1", sha1.hex()), ScriptElement("pem", pem),
    )
    return ScriptResult("ssl-cert", "\n".join(lines), elements)


def ssl_cert(ctx: ScriptContext) -> ScriptResult | None:
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port, tls=True)
    try:
        der = conn.peer_certificate()
    finally:
        conn.close()
    if der is None:
        return None
    return describe_certificate(der, ctx.verbosity)


SCRIPTS = (
    Script("ssl-cert", frozenset({"default", "safe", "discovery"}), ssl_rule, ssl_cert,
           description="Shows the subject, names, issuer, key, validity and fingerprints of a TLS certificate."),
)
