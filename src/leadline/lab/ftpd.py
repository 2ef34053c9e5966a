"""The lab's FTP server for the bounce scan: Debian's vsftpd, twice, in a host of its own.

Port 21 allows ``PORT`` to any address (``port_promiscuous=YES``): the
bounce scan's relay.  Port 2121 keeps vsftpd's default, which refuses a
``PORT`` naming anyone but the client, so the scan's refusal can be tested.
Both take anonymous logins into an empty read-only directory.
"""

from __future__ import annotations

from pathlib import Path

from leadline.lab.topology import Host, Interface, Route, Service, ServiceKind

__all__ = ["FTP", "FTP_BOUNCE_PORT", "FTP_MAC", "FTP_STRICT_PORT", "ftp_host", "vsftpd_argv"]

FTP = "198.18.1.76"
FTP_MAC = "02:4c:11:00:00:76"
FTP_BOUNCE_PORT = 21
FTP_STRICT_PORT = 2121


def ftp_host(routes: tuple[Route, ...]) -> Host:
    return Host(
        "ftp",
        (Interface("lan", f"{FTP}/24", FTP_MAC),),
        routes=routes,
        services=(Service(ServiceKind.FTP_BOUNCE, FTP_BOUNCE_PORT), Service(ServiceKind.FTP_STRICT, FTP_STRICT_PORT)),
        role="FTP server (bounce allowed on 21)",
    )


def vsftpd_argv(state_dir: Path, host: str, port: int, promiscuous: bool) -> list[str]:
    """Write one vsftpd configuration under the lab's state dir; the command line that runs it."""
    base = state_dir / f"vsftpd-{host}-{port}"
    empty = base / "empty"
    empty.mkdir(parents=True, exist_ok=True, mode=0o755)
    config = base / "vsftpd.conf"
    config.write_text(
        f"listen=YES\nlisten_ipv6=NO\nlisten_port={port}\nbackground=NO\n"
        f"anonymous_enable=YES\nanon_root={empty}\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\n"
        "local_enable=NO\nwrite_enable=NO\nconnect_timeout=30\ndata_connection_timeout=30\n"
        f"port_promiscuous={'YES' if promiscuous else 'NO'}\n")
    return ["vsftpd", str(config)]
