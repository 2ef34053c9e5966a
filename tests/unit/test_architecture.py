"""The shape of the package, checked from its source: sizes, import cycles, layering.

The rules (docs/design.md, issue 6): no function longer than 80 lines, no
class longer than 300, no import cycle among leadline's modules, and
nothing under ``engines/`` importing ``output``, ``scanner`` or
``pipeline``.  Everything is read with ``ast``; the package is never
imported, so a broken module cannot hide a violation.

How imports are counted, and why:
- every ``import`` / ``from ... import`` of a leadline module anywhere in
  a file counts, lazy ones inside functions too: a lazy import that
  closes a cycle only moves the failure to run time;
- imports under ``if TYPE_CHECKING:`` do not make cycles (they never
  run), but they do count for layering (``engines`` must not even name
  ``output``'s types; hand it a protocol instead);
- relative imports are resolved against the importing module's package;
- ``from leadline.x import name`` imports ``leadline.x.name`` when that is
  a module, otherwise ``leadline.x``;
- importing ``leadline.a.b`` does not count as importing ``leadline`` or
  ``leadline.a``, although Python runs their ``__init__`` first:
  counting it would put every module on a cycle through the package's
  ``__init__``.

The helpers return the violations as lines of text, so the same checks
run from the command line: ``python tests/unit/test_architecture.py``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "FORBIDDEN_FOR_ENGINES",
    "MAX_CLASS_LINES",
    "MAX_FUNCTION_LINES",
    "Module",
    "all_violations",
    "import_cycles",
    "layer_violations",
    "load_package",
    "long_classes",
    "long_functions",
]

SOURCE = Path(__file__).resolve().parents[2] / "src" / "leadline"
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 300
ENGINES = "leadline.engines"
FORBIDDEN_FOR_ENGINES = ("leadline.output", "leadline.scanner", "leadline.pipeline")


@dataclass(frozen=True)
class Import:
    """One edge of the import graph: ``target`` is imported at ``line``."""

    target: str
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``


@dataclass
class Module:
    """A parsed source file of the package."""

    name: str  # dotted: leadline.core.packet.tcp; a package's __init__ is the package
    path: Path
    shown: str  # the path as failures print it: src/leadline/core/packet/tcp.py
    tree: ast.Module
    is_package: bool
    imports: list[Import] = field(default_factory=list)

    @property
    def package(self) -> str:
        """The package relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def load_package(root: Path = SOURCE) -> dict[str, Module]:
    """Every module under ``root`` (a package directory), parsed, with its leadline imports."""
    modules: dict[str, Module] = {}
    base = root.parent.parent if root.parent.name == "src" else root.parent
    for path in sorted(root.rglob("*.py")):
        name, is_package = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, path, str(path.relative_to(base)), tree, is_package)
    top = root.name
    for module in modules.values():
        module.imports = list(_imports(module, set(modules), top))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below ``node``, with whether it sits under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child.test, type_only
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:  # the else branch does run
                yield stmt, type_only
                yield from _walk(stmt, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def _known(name: str, known: set[str]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _from_base(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.package.split(".")
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"{module.path}:{node.lineno}: relative import beyond the top package")
    base = ".".join(package[: len(package) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _imports(module: Module, known: set[str], top: str) -> Iterator[Import]:
    for node, type_only in _walk(module.tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == top or target.startswith(top + "."):
                resolved = _known(target, known)
                if resolved is not None:
                    yield Import(resolved, node.lineno, type_only)


def _where(module: Module, line: int) -> str:
    return f"{module.shown}:{line}"


def long_functions(modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions and methods longer than ``limit`` lines (decorators excluded), longest first."""
    found: list[tuple[int, str]] = []
    for module in modules.values():
        for qualname, node in _definitions(module.tree, ""):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append((length, f"{module.name}:{qualname} ({_where(module, node.lineno)}) is {length} lines"))
    return [text for _, text in sorted(found, key=lambda f: (-f[0], f[1]))]


def long_classes(modules: dict[str, Module], limit: int = MAX_CLASS_LINES) -> list[str]:
    """Classes longer than ``limit`` lines (decorators excluded), longest first."""
    found: list[tuple[int, str]] = []
    for module in modules.values():
        for qualname, node in _definitions(module.tree, ""):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append((length, f"{module.name}:{qualname} ({_where(module, node.lineno)}) is {length} lines"))
    return [text for _, text in sorted(found, key=lambda f: (-f[0], f[1]))]


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definitions(node: ast.AST, prefix: str) -> Iterator[tuple[str, Definition]]:
    """(qualified name, node) of every def and class, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            qualname = f"{prefix}{child.name}"
            yield qualname, child
            inner = f"{qualname}.<locals>." if not isinstance(child, ast.ClassDef) else f"{qualname}."
            yield from _definitions(child, inner)
        else:
            yield from _definitions(child, prefix)


def _graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, for imports that run (TYPE_CHECKING ones left out)."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for module in modules.values():
        for imp in module.imports:
            if not imp.type_only and imp.target != module.name:
                graph[module.name].setdefault(imp.target, imp.line)
    return graph


def _components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def _shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # a component always has one


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One line per import cycle: its modules, and a shortest cycle with the line of each import."""
    graph = _graph(modules)
    out = []
    for component in _components(graph):
        cycle = _shortest_cycle(graph, component)
        steps = " -> ".join(
            f"{a} ({_where(modules[a], graph[a][b])})" for a, b in zip(cycle, cycle[1:], strict=False)
        )
        out.append(f"cycle among {', '.join(component)}: {steps} -> {cycle[-1]}")
    return out


def _forbidden(target: str) -> bool:
    return any(target == f or target.startswith(f + ".") for f in FORBIDDEN_FOR_ENGINES)


def layer_violations(modules: dict[str, Module]) -> list[str]:
    """Imports of output, scanner or pipeline from under engines/ (type-only ones too)."""
    out = []
    for module in modules.values():
        if module.name != ENGINES and not module.name.startswith(ENGINES + "."):
            continue
        for imp in module.imports:
            if _forbidden(imp.target):
                kind = " (under TYPE_CHECKING)" if imp.type_only else ""
                out.append(f"{module.name} imports {imp.target}{kind} at {_where(module, imp.line)}")
    return sorted(out)


def all_violations(root: Path = SOURCE) -> dict[str, list[str]]:
    """Every rule's violations for the package at ``root``, by rule."""
    modules = load_package(root)
    return {
        f"functions over {MAX_FUNCTION_LINES} lines": long_functions(modules),
        f"classes over {MAX_CLASS_LINES} lines": long_classes(modules),
        "import cycles": import_cycles(modules),
        "engines importing output/scanner/pipeline": layer_violations(modules),
    }


# -- the rules, on the package ---------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return load_package(SOURCE)


def _report(what: str, found: list[str]) -> str:
    return f"{len(found)} {what}:\n  " + "\n  ".join(found)


def test_the_package_is_found(package: dict[str, Module]) -> None:
    assert "leadline" in package and "leadline.core.packet.tcp" in package
    assert sum(len(m.imports) for m in package.values()) > 50  # the graph is not silently empty


def test_no_function_is_longer_than_80_lines(package: dict[str, Module]) -> None:
    found = long_functions(package)
    assert not found, _report(f"functions longer than {MAX_FUNCTION_LINES} lines", found)


def test_no_class_is_longer_than_300_lines(package: dict[str, Module]) -> None:
    found = long_classes(package)
    assert not found, _report(f"classes longer than {MAX_CLASS_LINES} lines", found)


def test_no_import_cycle(package: dict[str, Module]) -> None:
    found = import_cycles(package)
    assert not found, _report("import cycles", found)


def test_engines_import_neither_output_nor_scanner(package: dict[str, Module]) -> None:
    found = layer_violations(package)
    assert not found, _report("forbidden imports under engines/", found)


# -- the checker itself, on small packages written here ----------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / "leadline"
    for relative, text in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def _edges(package: Path) -> dict[str, set[str]]:
    return {name: {i.target for i in m.imports} for name, m in load_package(package).items()}


def test_imports_resolve_relative_submodule_and_attribute_forms(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "__init__.py": "from leadline.api import scan\n",
        "api.py": "from .core import tcp, CONSTANT\nfrom . import model\nimport leadline.core.udp as u\nimport os\n",
        "model.py": "",
        "core/__init__.py": "CONSTANT = 1\n",
        "core/tcp.py": "from ..model import Thing\nfrom .udp import parse\n",
        "core/udp.py": "from leadline.core import *\n",
    })
    edges = _edges(package)
    assert edges["leadline"] == {"leadline.api"}
    assert edges["leadline.api"] == {"leadline.core.tcp", "leadline.core", "leadline.model", "leadline.core.udp"}
    assert edges["leadline.core.tcp"] == {"leadline.model", "leadline.core.udp"}
    assert edges["leadline.core.udp"] == {"leadline.core"}


def test_a_lazy_import_closes_a_cycle_and_type_checking_does_not(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "__init__.py": "",
        "a.py": "import leadline.b\n",
        "b.py": "def later():\n    from leadline import c\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from leadline import b\nelse:\n    from . import a\n",
        "d.py": "import typing\nif typing.TYPE_CHECKING:\n    import leadline.a\n",
    })
    modules = load_package(package)
    (line,) = import_cycles(modules)
    assert line.startswith("cycle among leadline.a, leadline.b, leadline.c: leadline.a (")
    assert "leadline/b.py:2" in line and "leadline/c.py:5" in line and line.endswith("-> leadline.a")
    assert [i.type_only for i in modules["leadline.d"].imports] == [True]


def test_a_submodule_import_does_not_count_as_importing_its_package(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "__init__.py": "from leadline.core.tcp import x\n",
        "core/__init__.py": "",
        "core/tcp.py": "import leadline.core.udp\nfrom leadline.core.udp import y\n",
        "core/udp.py": "",
    })
    assert import_cycles(load_package(package)) == []


def test_sizes_exclude_decorators_and_name_nested_definitions(tmp_path: Path) -> None:
    def body(indent: int, count: int) -> str:
        return "".join(f"{' ' * indent}x{i} = {i}\n" for i in range(count))

    table = "TABLE = {\n" + "".join(f"    {i}: {i},\n" for i in range(400)) + "}\n"  # lines 1-402
    fits = "@decorator\n@decorator\ndef fits():\n" + body(4, 79)  # def at 405: 80 lines
    method = "    def method(self):\n" + body(8, 80)  # 486: 81 lines
    outer = "    def outer(self):\n        def inner():\n" + body(12, 80)  # 567 and 568: 82 and 81
    big = "class Big:\n" + method + outer + body(4, 140)  # 485 to 788
    package = _write(tmp_path, {"__init__.py": "", "m.py": table + fits + big})
    modules = load_package(package)
    assert long_functions(modules) == [
        "leadline.m:Big.outer (leadline/m.py:567) is 82 lines",
        "leadline.m:Big.method (leadline/m.py:486) is 81 lines",
        "leadline.m:Big.outer.<locals>.inner (leadline/m.py:568) is 81 lines",
    ]
    assert long_classes(modules) == ["leadline.m:Big (leadline/m.py:485) is 304 lines"]


def test_engines_may_not_name_output_even_for_types(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "__init__.py": "",
        "output/__init__.py": "",
        "output/pcap.py": "",
        "scanner.py": "",
        "engines/__init__.py": "",
        "engines/raw.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..output.pcap import Writer\n",
        "engines/connect.py": "def f():\n    import leadline.scanner\n",
        "engines/fine.py": "from leadline import core_thing\n",
    })
    assert layer_violations(load_package(package)) == [
        "leadline.engines.connect imports leadline.scanner at leadline/engines/connect.py:2",
        "leadline.engines.raw imports leadline.output.pcap (under TYPE_CHECKING) at leadline/engines/raw.py:3",
    ]


def main() -> int:
    """Print every violation; exit 1 when there is any."""
    violations = all_violations()
    for rule, found in violations.items():
        print(f"{rule}: {len(found)}")
        for line in found:
            print(f"  {line}")
    return 1 if any(violations.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
