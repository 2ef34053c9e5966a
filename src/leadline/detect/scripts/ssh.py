"""SSH scripts: ssh-hostkey (one connection per key type, MD5 by default) and ssh2-enum-algos."""

from __future__ import annotations

import base64

from leadline.detect.scripts.base import Script, ScriptContext, ScriptError, clean, elem, table
from leadline.detect.scripts.rules import port_or_service
from leadline.detect.scripts.sshproto import (
    KEX_OFFER, HostKey, build_kexinit, host_key_info, kex_init_message, parse_kexinit, read_banner, read_packet,
)
from leadline.model import ScriptElement, ScriptResult

__all__ = ["SCRIPTS", "fetch_host_key", "ssh2_enum_algos", "ssh_hostkey"]

ssh_rule = port_or_service((22, 2222, 55554, 22222, 2382, 830), ("ssh", "netconf-ssh"))
CLIENT_BANNER = b"SSH-2.0-leadline\r\n"
# The key types nmap asks for, in its order (SSH-1 is not spoken).
KEY_TYPES = ("ssh-dss", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-ed25519")


def fetch_host_key(ctx: ScriptContext, key_type: str) -> HostKey | None:
    """One connection: KEXINIT offering only ``key_type``, then the key exchange up to the server's key."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        read_banner(conn)
        conn.send(CLIENT_BANNER + build_kexinit(key_type))
        server = parse_kexinit(read_packet(conn))
        # nmap's test, a substring one: the server must list the type among its host key algorithms.
        if key_type not in server["server_host_key_algorithms"]:
            return None
        offered = server["kex_algorithms"].split(",")
        kex = next((k for k in KEX_OFFER if k in offered), None)
        if kex is None:
            return None
        conn.send(kex_init_message(kex))
        key = host_key_info(read_packet(conn))
        return key if key.key_type == key_type else None
    finally:
        conn.close()


def _formats(ctx: ScriptContext) -> set[str]:
    words = set((ctx.arg("ssh_hostkey", "md5") or "md5").replace(",", " ").split())
    if "all" in words:
        words |= {"md5", "sha256", "full"}
    if "hex" in words:
        words.add("md5")
    return words


def ssh_hostkey(ctx: ScriptContext) -> ScriptResult | None:
    """nmap's ssh-hostkey: ``<bits> <md5 fingerprint> (<algorithm>)`` per key the server offers."""
    keys = []
    for key_type in KEY_TYPES:
        try:
            key = fetch_host_key(ctx, key_type)
        except ScriptError:
            key = None
        if key is not None:
            keys.append(key)
    if not keys:
        return None
    formats = _formats(ctx)
    lines: list[str] = []
    elements: list[ScriptElement] = []
    for key in keys:
        shown = []
        if "md5" in formats:
            shown.append(f"{key.bits} {key.md5} ({key.algorithm})")
        if "sha256" in formats:
            shown.append(f"{key.bits} SHA256:{key.sha256} ({key.algorithm})")
        if "full" in formats or ctx.verbosity > 1:
            shown.append(f"{key.key_type} {base64.b64encode(key.blob).decode()}")
        lines.append("\n  " + "\n".join(shown))
        elements.append(table(None, [elem("key", base64.b64encode(key.blob).decode()), elem("bits", key.bits),
                                     elem("type", key.key_type), elem("fingerprint", key.md5.replace(":", ""))]))
    return ScriptResult("ssh-hostkey", "".join(lines), tuple(elements))


ALGO_LISTS = ("kex_algorithms", "server_host_key_algorithms", "encryption_algorithms", "mac_algorithms",
              "compression_algorithms")


def ssh2_enum_algos(ctx: ScriptContext) -> ScriptResult | None:
    """The algorithms the server's KEXINIT lists, counted (and listed from -v on), as nmap shows them."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        read_banner(conn)
        conn.send(CLIENT_BANNER + build_kexinit("ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,ssh-rsa"))
        parsed = parse_kexinit(read_packet(conn))
    finally:
        conn.close()
    names: list[str] = []
    for name in ALGO_LISTS:
        if name in parsed:
            names.append(name)
        elif parsed[f"{name}_client_to_server"] == parsed[f"{name}_server_to_client"]:
            parsed[name] = parsed[f"{name}_client_to_server"]
            names.append(name)
        else:
            names += [f"{name}_client_to_server", f"{name}_server_to_client"]
    lines, elements = [], []
    for name in names:
        items = [clean(a, 256) for a in parsed[name].split(",") if a]
        detail = "".join(f"\n      {a}" for a in items) if ctx.verbosity > 0 else ""
        lines.append(f"\n  {name}: ({len(items)}){detail}")
        elements.append(table(name, [elem(None, a) for a in items]))
    return ScriptResult("ssh2-enum-algos", "".join(lines), tuple(elements))


SCRIPTS = (
    Script("ssh-hostkey", frozenset({"safe", "default", "discovery"}), ssh_rule, ssh_hostkey,
           description="Shows the SSH server's host keys' fingerprints, one connection per key type."),
    Script("ssh2-enum-algos", frozenset({"safe", "discovery"}), ssh_rule, ssh2_enum_algos,
           description="Lists the algorithms an SSH-2 server offers."),
)
