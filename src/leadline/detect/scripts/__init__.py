"""Scripts in Python: nmap's NSE idea (rule, categories, action) over a small I/O context.

``base`` is the contract, ``select`` finds and chooses scripts (built-in
and ``leadline.scripts`` entry points), ``http``/``ssh``/``tls``/``misc``
are the built-in checks.  ``docs/scripts.md`` says how to write one.
"""

from leadline.detect.scripts.base import (
    Conn, HostInfo, Script, ScriptContext, ScriptError, ScriptIO, ScriptTimeout, clean, elem, table,
)
from leadline.detect.scripts.select import ENTRY_POINT_GROUP, available_scripts, parse_script_args, select_scripts

__all__ = [
    "ENTRY_POINT_GROUP", "Conn", "HostInfo", "Script", "ScriptContext", "ScriptError", "ScriptIO", "ScriptTimeout",
    "available_scripts", "clean", "elem", "parse_script_args", "select_scripts", "table",
]
