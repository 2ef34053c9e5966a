"""Which scripts a ``--script`` expression names, and where scripts come from.

nmap's grammar, as far as it is useful here: a comma-separated list of
expressions; each is a name, a category, a shell pattern (``http-*``) or
``all``, combined with ``and``, ``or``, ``not`` and parentheses
(``"default or safe"``, ``"http-* and not intrusive"``).  A bare word that
matches nothing is an error, in nmap's words.

Scripts are the built-in modules' ``SCRIPTS`` plus whatever the Python
entry-point group ``leadline.scripts`` offers: an entry point may name a
``Script``, a sequence of them, or a module with ``SCRIPTS``, so a user can
``pip install`` a package of checks.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence

from leadline.detect.scripts.base import Script
from leadline.errors import UsageError

__all__ = ["ENTRY_POINT_GROUP", "available_scripts", "parse_script_args", "select_scripts", "selection"]

ENTRY_POINT_GROUP = "leadline.scripts"

Pred = Callable[[Script], bool]
# nmap's categories: a valid word even when no script installed here carries it.
CATEGORIES = frozenset({"auth", "broadcast", "brute", "default", "discovery", "dos", "exploit", "external", "fuzzer",
                        "intrusive", "malware", "safe", "version", "vuln"})


def builtin_scripts() -> list[Script]:
    from leadline.detect.scripts import http, misc, ssh, tls

    return [*http.SCRIPTS, *ssh.SCRIPTS, *tls.SCRIPTS, *misc.SCRIPTS]


def _as_scripts(obj: object) -> list[Script]:
    if isinstance(obj, Script):
        return [obj]
    found = getattr(obj, "SCRIPTS", obj)
    if isinstance(found, (list, tuple)) and all(isinstance(s, Script) for s in found):
        return list(found)
    raise TypeError("not a Script, a sequence of Scripts or a module with SCRIPTS")


def plugin_scripts(warn: Callable[[str], None] | None = None) -> list[Script]:
    """Scripts from installed packages (entry-point group ``leadline.scripts``); a broken one is skipped."""
    from importlib import metadata  # only scans that run scripts pay for reading installed packages

    found: list[Script] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            found.extend(_as_scripts(ep.load()))
        except Exception as e:  # a third party's bug must not end the scan
            if warn is not None:
                warn(f"script package entry point '{ep.name}' ({ep.value}) could not be loaded: {type(e).__name__}: {e}")
    return found


def available_scripts(warn: Callable[[str], None] | None = None) -> list[Script]:
    """Built-in scripts, then installed ones; a later script of the same name does not replace a built-in."""
    table: dict[str, Script] = {}
    for s in [*builtin_scripts(), *plugin_scripts(warn)]:
        table.setdefault(s.name, s)
    return list(table.values())


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


class _Parser:
    """Recursive descent over ``or`` < ``and`` < ``not`` < atom."""

    def __init__(self, text: str, scripts: Sequence[Script]) -> None:
        self.named: list[Pred] = []  # the name and pattern terms: what they match gets nmap's verbosity boost
        self.tokens = [m.group(1) for m in _TOKEN.finditer(text)]
        self.pos = 0
        self.scripts = scripts
        self.text = text

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise UsageError(f"'{self.text}' is not a valid script expression")
        self.pos += 1
        return tok

    def parse(self) -> Pred:
        pred = self.or_expr()
        if self.peek() is not None:
            raise UsageError(f"'{self.text}' is not a valid script expression")
        return pred

    def or_expr(self) -> Pred:
        left = self.and_expr()
        while self.peek() == "or":
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda s: a(s) or b(s))(left, right)
        return left

    def and_expr(self) -> Pred:
        left = self.not_expr()
        while self.peek() == "and":
            self.take()
            right = self.not_expr()
            left = (lambda a, b: lambda s: a(s) and b(s))(left, right)
        return left

    def not_expr(self) -> Pred:
        if self.peek() == "not":
            self.take()
            inner = self.not_expr()
            return lambda s: not inner(s)
        return self.atom()

    def atom(self) -> Pred:
        tok = self.take()
        if tok == "(":
            inner = self.or_expr()
            if self.take() != ")":
                raise UsageError(f"'{self.text}' is not a valid script expression")
            return inner
        word = tok.lower()
        if word in ("true", "false"):
            return lambda s: word == "true"
        pred = _word(word, self.scripts)
        if word != "all" and word not in CATEGORIES and not any(word in s.categories for s in self.scripts):
            self.named.append(pred)
        return pred


def _word(word: str, scripts: Sequence[Script]) -> Pred:
    if word.endswith(".nse") or word.endswith(".py"):
        word = word.rsplit(".", 1)[0]
    if word == "all":
        return lambda s: True
    if any(c in word for c in "*?["):
        return lambda s: fnmatch.fnmatchcase(s.name, word)
    if word not in CATEGORIES and not any(s.name == word or word in s.categories for s in scripts):
        raise UsageError(f"'{word}' did not match a category, filename, or directory")
    return lambda s: s.name == word or word in s.categories


def select_scripts(expressions: Iterable[str], scripts: Sequence[Script]) -> list[Script]:
    """The scripts any of ``expressions`` selects, in the order they are listed in ``scripts``."""
    return selection(expressions, scripts)[0]


def selection(expressions: Iterable[str], scripts: Sequence[Script]) -> tuple[list[Script], frozenset[str]]:
    """The scripts selected, and the names of those selected by name or pattern.

    nmap runs a script chosen by name (``--script ssh-hostkey``, ``http-*``)
    one verbosity level up, as though -v had been given once more; one
    chosen only through a category (``-sC``) runs at the verbosity given.
    """
    parsers = [_Parser(part, scripts) for raw in expressions for part in _split_commas(raw)]
    preds = [p.parse() for p in parsers]
    chosen = [s for s in scripts if any(p(s) for p in preds)]
    named = frozenset(s.name for s in chosen for parser, pred in zip(parsers, preds)
                      if pred(s) and any(term(s) for term in parser.named))
    return chosen, named


def _split_commas(text: str) -> list[str]:
    """Commas separate expressions, except inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    parts = [p.strip() for p in parts]
    if any(not p for p in parts):
        raise UsageError(f"'{text}' is not a valid script expression")
    return parts


def parse_script_args(text: str) -> dict[str, str]:
    """``--script-args k=v,k2="a,b",flag``: values may be quoted; a bare key means "1"."""
    args: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        m = re.compile(r"\s*([^=,\s]+)\s*(=\s*)?").match(text, i)
        if not m:
            raise UsageError(f"invalid --script-args near '{text[i:i + 20]}'")
        key, i = m.group(1), m.end()
        value = "1"
        if m.group(2):
            if i < n and text[i] in "\"'{":
                close = {"\"": "\"", "'": "'", "{": "}"}[text[i]]
                end = text.find(close, i + 1)
                if end < 0:
                    raise UsageError(f"invalid --script-args: unterminated {text[i]} in '{text}'")
                value, i = text[i + 1:end], end + 1
            else:
                end = text.find(",", i)
                end = n if end < 0 else end
                value, i = text[i:end].strip(), end
        args[key] = value
        rest = re.compile(r"\s*(,|$)").match(text, i)
        if not rest:
            raise UsageError(f"invalid --script-args near '{text[i:i + 20]}'")
        i = rest.end()
    return args
