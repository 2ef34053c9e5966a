"""What starting leadline costs: the package loads its public names on first use; ``leadline local`` skips the scanner.

Each check runs in a fresh interpreter, since this one has long imported
everything.
"""

from __future__ import annotations

import inspect
import json
import pydoc
import subprocess
import sys

import pytest

import leadline

# What `leadline local` never needs: the scan machinery, the API (asyncio), psutil.
SCAN_MACHINERY = ("leadline.api", "leadline.config", "leadline.options", "leadline.pipeline", "leadline.cli.main",
                  "leadline.model", "leadline.output", "asyncio", "psutil")


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_package_loads_no_public_module_yet() -> None:
    loaded = _modules_after("import json, sys, leadline; print(json.dumps(sorted(sys.modules)))")
    assert not loaded & {"leadline.api", "leadline.config", "leadline.model", "leadline.errors", "asyncio"}
    assert "leadline._version" in loaded


def test_names_resolve_to_the_real_objects() -> None:
    from leadline import ScanConfig, scan
    from leadline.api import scan as real_scan
    from leadline.config import ScanConfig as RealConfig

    assert scan is real_scan and ScanConfig is RealConfig and leadline.scan is real_scan
    assert inspect.signature(leadline.scan) == inspect.signature(real_scan)
    assert "scan(targets: 'str | Iterable[str]', options: 'Options' = ''" in pydoc.render_doc(
        leadline.scan, renderer=pydoc.plaintext)
    for name in leadline.__all__:
        assert getattr(leadline, name) is not None, name
    assert set(leadline.__all__) <= set(dir(leadline))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'scann'"):
        leadline.scann  # noqa: B018
    with pytest.raises(ImportError):
        exec("from leadline import scann", {})


def test_star_import_gives_the_public_names() -> None:
    names: dict[str, object] = {}
    exec("from leadline import *", names)
    assert set(leadline.__all__) <= set(names) and names["PortState"] is leadline.PortState


def test_leadline_local_imports_none_of_the_scan_machinery() -> None:
    # The console script's path, up to the moment it exits (os._exit is where the modules are counted).
    code = (
        "import json, os, sys\n"
        "sys.argv = ['leadline', 'local', '-l', '-oJ', os.devnull]\n"
        "def report(code):\n"
        "    print(json.dumps(sorted(sys.modules)), flush=True)\n"
        "    sys.exit(code)\n"
        "os._exit = report\n"
        "from leadline.cli.command import entry\n"
        "entry()\n"
    )
    loaded = _modules_after(code)
    assert {"leadline.local.sockdiag", "leadline.local.procfs", "leadline.local.files"} <= loaded
    heavy = {name for name in loaded for top in SCAN_MACHINERY if name == top or name.startswith(top + ".")}
    assert not heavy
    # Nor these, each some 10 ms of a 200 ms listing (docs/local.md, Performance); -p brings dataclasses along.
    assert not loaded & {"dataclasses", "inspect", "importlib.resources", "pathlib"}


def test_other_commands_still_go_through_the_scanner() -> None:
    done = subprocess.run([sys.executable, "-m", "leadline", "--version"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and done.stdout.startswith(f"leadline version {leadline.__version__}")
