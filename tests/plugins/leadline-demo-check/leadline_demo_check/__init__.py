"""Two demonstration checks: a port script that reads a greeting, and a host script."""

from __future__ import annotations

from leadline.detect.scripts import HostInfo, Script, ScriptContext, elem
from leadline.model import PortResult, ScriptResult

__all__ = ["SCRIPTS"]


def _greeting_rule(host: HostInfo, port: PortResult | None) -> bool:
    return port is not None and port.port == 7777


def _greeting(ctx: ScriptContext) -> ScriptResult | None:
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        words = conn.recv_until(b"\n", 200)
    finally:
        conn.close()
    # Deliberately unescaped: leadline must clean what a careless script returns.
    return ScriptResult("demo-greeting", f"said: {words.decode('latin-1').strip()}", (elem("said", words.strip()),))


def _host_rule(host: HostInfo, port: PortResult | None) -> bool:
    return True


def _host_note(ctx: ScriptContext) -> ScriptResult | None:
    return ScriptResult("demo-host", f"checked {ctx.host.address} (greeting={ctx.arg('greeting', 'none')})")


SCRIPTS = (
    Script("demo-greeting", frozenset({"demo", "safe"}), _greeting_rule, _greeting),
    Script("demo-host", frozenset({"demo"}), _host_rule, _host_note, host_script=True),
)
