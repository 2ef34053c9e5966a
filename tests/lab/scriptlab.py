"""A service host of its own for script tests and the script benchmark (namespace prefix: the suite's
LEADLINE_TEST_LAB, else "ls", plus "x" and the caller's tag, so checkouts run their own beside each other).

Two namespaces joined by a veth pair: a scanner (198.19.77.1) and a service
host (198.19.77.10) running real daemons from Debian packages: nginx (HTTP
on 80, TLS on 443 with a certificate made here), OpenSSH, Redis, memcached,
vsftpd (anonymous) and dnsmasq.  Neither namespace has a route out, so
nothing a scan sends leaves them.  ``service_lab()`` builds it, yields it
and removes everything it made (processes by pid, then the namespaces).
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = ["SCANNER", "SERVER", "ServiceLab", "leadline_scripts", "nmap_scripts", "service_lab"]

PREFIX = os.environ.get("LEADLINE_TEST_LAB", "ls") + "x"
SCANNER, SERVER = "198.19.77.1", "198.19.77.10"
TCP_PORTS = {"http": 80, "https": 443, "ssh": 22, "ftp": 21, "redis": 6379, "memcached": 11211, "dns": 53}
PAGE = "<html><head><title>Jupyter Notebook</title></head><body>lab</body></html>\n"
ROBOTS = "User-agent: *\nDisallow: /private/\nDisallow: /admin/\n"


@dataclass
class ServiceLab:
    scanner_ns: str
    server_ns: str
    state: Path
    server_dev: str = ""  # the server's interface (a test adds addresses to it)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[BinaryIO] = field(default_factory=list)

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command in the scanner namespace, bounded in time."""
        return subprocess.run(["ip", "netns", "exec", self.scanner_ns, *argv], capture_output=True, text=True,
                              timeout=timeout)


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _spawn(lab: ServiceLab, argv: list[str], name: str) -> None:
    log = open(lab.state / f"{name}.log", "wb")
    lab.logs.append(log)
    lab.procs.append(subprocess.Popen(["ip", "netns", "exec", lab.server_ns, *argv], stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, start_new_session=True))


def _certificate(state: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Lab"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "leadline lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "services.lab")])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("services.lab"),
                                                        x509.IPAddress(ipaddress.ip_address(SERVER))]), False)
            .sign(key, hashes.SHA256()))
    crt, pem = state / "lab.crt", state / "lab.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    return crt, pem


def _nginx(lab: ServiceLab) -> None:
    web = lab.state / "www"
    web.mkdir()
    (web / "index.html").write_text(PAGE)
    (web / "robots.txt").write_text(ROBOTS)
    crt, key = _certificate(lab.state)
    conf = lab.state / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; pid {lab.state}/nginx.pid; error_log {lab.state}/nginx.err;
events {{ worker_connections 256; }}
http {{ access_log off; client_body_temp_path {lab.state}/tmp; proxy_temp_path {lab.state}/tmp;
  fastcgi_temp_path {lab.state}/tmp; uwsgi_temp_path {lab.state}/tmp; scgi_temp_path {lab.state}/tmp;
  server {{ listen {SERVER}:80; root {web}; }}
  server {{ listen {SERVER}:443 ssl; ssl_certificate {crt}; ssl_certificate_key {key}; root {web}; }}
}}
""")
    (lab.state / "tmp").mkdir()
    _spawn(lab, ["nginx", "-c", str(conf)], "nginx")


def _sshd(lab: ServiceLab) -> None:
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    keys = []
    for kind in ("rsa", "ecdsa", "ed25519"):
        path = lab.state / f"ssh_host_{kind}_key"
        _sh("ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path))
        keys += ["-h", str(path)]
    conf = lab.state / "sshd_config"
    conf.write_text(f"ListenAddress {SERVER}\nPidFile {lab.state}/sshd.pid\nUsePAM no\n")
    _spawn(lab, ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf), *keys], "sshd")


def _ftp(lab: ServiceLab) -> None:
    root = lab.state / "ftp"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "README").write_text("lab\n")
    os.chmod(root, 0o555)
    conf = lab.state / "vsftpd.conf"
    conf.write_text(f"listen=YES\nlisten_address={SERVER}\nanonymous_enable=YES\nlocal_enable=NO\n"
                    f"anon_root={root}\nbackground=NO\nseccomp_sandbox=NO\nsecure_chroot_dir=/var/run/vsftpd/empty\n"
                    "pasv_min_port=30000\npasv_max_port=30100\n")
    _spawn(lab, ["vsftpd", str(conf)], "vsftpd")


def _others(lab: ServiceLab) -> None:
    _spawn(lab, ["redis-server", "--port", "6379", "--bind", SERVER, "--protected-mode", "no", "--save", "",
                 "--appendonly", "no", "--dir", str(lab.state)], "redis")
    _spawn(lab, ["memcached", "-u", "nobody", "-l", SERVER, "-p", "11211", "-U", "0"], "memcached")
    _spawn(lab, ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", f"--listen-address={SERVER}",
                 "--bind-interfaces", "--port", "53", f"--pid-file={lab.state}/dnsmasq.pid", "--user=root"], "dnsmasq")


def _wait_listening(lab: ServiceLab, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    missing = set(TCP_PORTS.values())
    while missing and time.monotonic() < end:
        out = subprocess.run(["ip", "netns", "exec", lab.server_ns, "ss", "-Htln"], capture_output=True, text=True).stdout
        missing = {p for p in missing if f"{SERVER}:{p} " not in out}
        time.sleep(0.2)
    if missing:
        logs = {p.name: p.read_text(errors="replace")[-300:] for p in lab.state.glob("*.log")}
        raise RuntimeError(f"service lab: ports {sorted(missing)} never listened; logs: {logs}")


def _teardown(lab: ServiceLab) -> None:
    for proc in lab.procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # each daemon runs in a session of its own that we started
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    for proc in lab.procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # forked daemons (nginx workers, sshd) share that session
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    for log in lab.logs:
        log.close()
    for ns in (lab.scanner_ns, lab.server_ns):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@contextmanager
def service_lab(tag: str = "t") -> Iterator[ServiceLab]:
    """Build the service host, yield it, and remove it whatever happens."""
    scanner, server = f"{PREFIX}{tag}-scan", f"{PREFIX}{tag}-srv"
    state = Path(tempfile.mkdtemp(prefix="leadline-scriptlab-"))
    os.chmod(state, 0o755)
    lab = ServiceLab(scanner, server, state, f"{PREFIX}{tag}b")
    try:
        for ns in (scanner, server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)  # a leftover of ours
            _sh("ip", "netns", "add", ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", f"{PREFIX}{tag}a", "netns", scanner, "type", "veth", "peer", "name", f"{PREFIX}{tag}b",
            "netns", server)
        for ns, dev, addr in ((scanner, f"{PREFIX}{tag}a", SCANNER), (server, f"{PREFIX}{tag}b", SERVER)):
            _sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "up")
        _nginx(lab)
        _sshd(lab)
        _ftp(lab)
        _others(lab)
        _wait_listening(lab)
        yield lab
    finally:
        _teardown(lab)


def tcp_reachable(lab: ServiceLab, port: int) -> bool:
    """For debugging the lab by hand: whether the scanner reaches ``port`` on the server."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((SERVER, port)) == 0


_API_RUN = """
import json, sys
from leadline.api import scan
report = scan(sys.argv[1], sys.argv[2:])
print(json.dumps({f"{p.port}/{p.protocol}": {s.id: s.output for s in p.scripts}
                  for h in report.hosts for p in h.ports}))
"""


def leadline_scripts(lab: ServiceLab, options: list[str], timeout: float = 120) -> dict[str, dict[str, str]]:
    """Script outputs per port ("22/tcp") from a leadline scan run in the scanner namespace (through the API)."""
    import json
    import sys

    done = lab.run([sys.executable, "-c", _API_RUN, SERVER, *options], timeout)
    if done.returncode != 0:
        raise RuntimeError(f"leadline failed: {done.stderr[-500:]}")
    result: dict[str, dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def nmap_scripts(lab: ServiceLab, options: list[str], timeout: float = 180) -> dict[str, dict[str, str]]:
    """Script outputs per port from nmap's XML (the ``output`` attribute: the text as nmap prints it)."""
    import xml.etree.ElementTree as ET

    xml_path = lab.state / "nmap.xml"
    done = lab.run(["nmap", *options, "-oX", str(xml_path), SERVER], timeout)
    if done.returncode != 0:
        raise RuntimeError(f"nmap failed: {done.stderr[-500:]}")
    out: dict[str, dict[str, str]] = {}
    for port in ET.parse(xml_path).getroot().iter("port"):
        key = f"{port.get('portid')}/{port.get('protocol')}"
        out[key] = {s.get("id", ""): s.get("output", "") for s in port.iter("script")}
    return out
