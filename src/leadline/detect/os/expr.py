"""nmap-os-db value expressions: does an observed value match a reference's expression?

The grammar (nmap's): alternatives separated by ``|``; an alternative is
a literal (``M5B4ST11NW7``, ``A+``, ````), a hexadecimal range
(``F9-111``), or a comparison (``>A``, ``<1000``).  Numbers are
hexadecimal and compared as numbers, so leading zeros do not matter.
In option strings (the O attributes and the OPS test) an alternative may
hold ranges in brackets, added in nmap 7.95: ``M[>500]ST11W[1-5]`` reads
the hexadecimal digits at each bracket from the value and matches them
against the bracketed expression; the text around must match exactly.
"""

from __future__ import annotations

__all__ = ["expr_match"]

_HEX = frozenset("0123456789ABCDEFabcdef")


def _alternatives(expr: str) -> list[str]:
    """Split at ``|`` outside brackets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "|" and depth == 0:
            parts.append(expr[start:i])
            start = i + 1
    parts.append(expr[start:])
    return parts


def _number(text: str) -> int | None:
    if not text or not set(text) <= _HEX:
        return None
    return int(text, 16)


def _simple(value: str, alt: str) -> bool:
    if value and value[0] in _HEX and alt:
        number = _number(value)
        if alt[0] in "<>":
            bound = _number(alt[1:])
            if number is None or bound is None:
                return False
            return number > bound if alt[0] == ">" else number < bound
        if alt[0] in _HEX:
            low, dash, high = alt.partition("-")
            if dash:
                lo, hi = _number(low), _number(high)
                return number is not None and lo is not None and hi is not None and lo <= number <= hi
            if number is not None and _number(alt) is not None:
                return number == _number(alt)
            return value == alt
        return False
    return value == alt


def _nested(value: str, alt: str) -> bool:
    at = 0  # position in value
    rest = alt
    while "[" in rest:
        open_at = rest.index("[")
        close_at = rest.find("]", open_at)
        if close_at < 0:
            return False
        literal = rest[:open_at]
        if value[at:at + len(literal)] != literal:
            return False
        at += len(literal)
        end = at
        while end < len(value) and value[end] in _HEX:
            end += 1
        if end == at or not expr_match(value[at:end], rest[open_at + 1:close_at], nested=False):
            return False
        at = end
        rest = rest[close_at + 1:]
    return value[at:] == rest


def expr_match(value: str, expr: str, nested: bool = False) -> bool:
    """Whether ``value`` (an observed value) matches ``expr`` (a reference expression)."""
    if expr == "":
        return value == ""
    for alt in _alternatives(expr):
        if alt == "":
            if value == "":
                return True
            continue
        if nested and "[" in alt:
            if _nested(value, alt):
                return True
        elif _simple(value, alt):
            return True
    return False
