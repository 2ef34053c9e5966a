"""ssl-cert from certificates the test makes, checked against openssl's own reading of them."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from leadline.detect.scripts.tls import describe_certificate, ssl_cert
from tests.unit.fakeengines import Service
from tests.unit.scripthelp import context


def make_cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str, san: bool = True) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Lab"),
                      x509.NameAttribute(NameOID.LOCALITY_NAME, "Bench"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "leadline tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(7).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365)))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(cn), x509.DNSName("alt.lab"), x509.IPAddress(ipaddress.ip_address("198.18.7.10"))]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def openssl_fingerprint(der: bytes, tmp_path: Path, digest: str) -> str:
    path = tmp_path / "c.der"
    path.write_bytes(der)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(path), "-noout", "-fingerprint", f"-{digest}"],
                         check=True, capture_output=True, text=True).stdout
    return out.split("=", 1)[1].strip().replace(":", "").lower()


def test_ssl_cert_default_layout() -> None:
    der = make_cert(rsa.generate_private_key(public_exponent=65537, key_size=2048), "www.lab")
    result = ssl_cert(context({443: Service(lambda s: b"", cert=der, tls=True)}, 443, "https"))
    assert result is not None
    assert result.output == (
        "Subject: commonName=www.lab/organizationName=leadline tests/stateOrProvinceName=Lab/countryName=XX\n"
        "Subject Alternative Name: DNS:www.lab, DNS:alt.lab, IP Address:198.18.7.10\n"
        "Not valid before: 2026-01-02T03:04:05\n"
        "Not valid after:  2027-01-02T03:04:05")


def test_ssl_cert_verbose_fields_and_fingerprints_match_openssl(tmp_path: Path) -> None:
    der = make_cert(ec.generate_private_key(ec.SECP256R1()), "ec.lab", san=False)
    result = describe_certificate(der, verbosity=1)
    lines = result.output.split("\n")
    md5, sha1 = openssl_fingerprint(der, tmp_path, "md5"), openssl_fingerprint(der, tmp_path, "sha1")
    assert lines[1:5] == ["Issuer: commonName=ec.lab/organizationName=leadline tests/stateOrProvinceName=Lab/countryName=XX",
                          "Public Key type: ec", "Public Key bits: 256", "Signature Algorithm: ecdsa-with-SHA256"]
    assert lines[-2] == "MD5:   " + " ".join(md5[i:i + 4] for i in range(0, 32, 4))
    assert lines[-1] == "SHA-1: " + " ".join(sha1[i:i + 4] for i in range(0, 40, 4))
    table = {e.key: e for e in result.elements}
    assert table["md5"].value == md5 and table["sha1"].value == sha1
    assert {c.key: c.value for c in table["subject"].children}["localityName"] == "Bench"
    assert describe_certificate(der, verbosity=2).output.split("\n")[0].endswith("/localityName=Bench")


def test_hostile_certificate_fields_are_escaped() -> None:
    der = make_cert(ec.generate_private_key(ec.SECP256R1()), "evil\x1b[2J.lab")
    out = describe_certificate(der).output
    assert "\x1b" not in out and "commonName=evil\\x1B[2J.lab" in out
