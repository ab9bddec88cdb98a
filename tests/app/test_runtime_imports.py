"""The service runs without the tests' reference libraries: neurokit2 and pandas.

They are in the `test` extra only (pyproject.toml): the native signal code is tested against
neurokit2, and tests and bench/ read recordings with pandas, but an installation of the service
alone has neither. Three guards, each in its own way:

* no module of the package names them in an import, however deep in a function or rarely run;
* importing every module of the package (service, runner, CLI, recording...) loads neither, not
  even through a third-party library;
* a whole simulated session through the real session core (artifact correction, spectra,
  calibration, arousal pauses), its replay and its report load neither.

Each runs in a fresh interpreter, as the purity tests do (tests/hrv/test_purity.py): this pytest
process has imported them long ago.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

REFERENCE_ONLY = ("neurokit2", "pandas")
PACKAGE = REPO_ROOT / "biofeedback"

# The modules the brief calls the live path, first, so a failure names them even if the walk
# below changes: the service, the clinic, the runner, the session core and the CLI.
ENTRY_MODULES = (
    "biofeedback.cli",
    "biofeedback.service.app",
    "biofeedback.service.clinic",
    "biofeedback.service.runner",
    "biofeedback.service.core",
)

_LOADED = (
    "import json, sys\n"
    f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {REFERENCE_ONLY!r})\n"
)


def _python(code: str, cwd: Path = REPO_ROOT) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _names_a_reference_library(node: ast.AST) -> str | None:
    """The reference library `node` imports, if any (import, from-import, import_module("..."),
    __import__("..."))."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        f = node.func
        called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            names = [node.args[0].value]
    return next((n for n in names if n.split(".")[0] in REFERENCE_ONLY), None)


def test_no_module_of_the_package_imports_a_reference_library() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50  # the walk found the package, not an empty folder
    found = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {name}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if (name := _names_a_reference_library(node)) is not None
    ]
    assert found == [], "neurokit2 and pandas are test-only (pyproject.toml `test` extra)"


def test_the_check_sees_every_form_of_import() -> None:
    # Without this, a checker that never matched would pass the test above forever.
    for code in (
        "import neurokit2 as nk",
        "import pandas",
        "from pandas.api import types",
        "import importlib\nimportlib.import_module('neurokit2')",
        "__import__('pandas.core')",
    ):
        assert any(_names_a_reference_library(n) for n in ast.walk(ast.parse(code))), code
    for code in ("import numpy", "from .pandas import x", "import pandas_like"):
        assert not any(_names_a_reference_library(n) for n in ast.walk(ast.parse(code))), code


def test_importing_every_module_loads_no_reference_library() -> None:
    code = (
        "import importlib, pkgutil, biofeedback\n"
        f"entry = {ENTRY_MODULES!r}\n"
        "for name in entry:\n"
        "    importlib.import_module(name)\n"
        "after_entry = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{REFERENCE_ONLY!r})\n"
        "walked = [m.name for m in pkgutil.walk_packages(biofeedback.__path__, 'biofeedback.')\n"
        "          if m.name != 'biofeedback.__main__']  # __main__ runs the CLI\n"
        "for name in walked:\n"
        "    importlib.import_module(name)\n"
    )
    code = "import sys\n" + code + _LOADED
    code += "print(json.dumps({'entry': after_entry, 'all': bad, 'walked': len(walked)}))\n"
    result = _python(code)
    assert result["entry"] == [], "the service, runner or CLI loads a test-only library"
    assert result["all"] == [], "a module of biofeedback loads a test-only library"
    assert isinstance(result["walked"], int)
    assert result["walked"] > 50


@pytest.mark.slow
def test_a_whole_session_replay_and_report_load_no_reference_library(tmp_path: Path) -> None:
    # The closed loop feeds the real SessionCore from the simulated strap (ectopic beats, a
    # malformed payload, a dropout), one Tick a second, and records it as the runner does.
    code = (
        "from pathlib import Path\n"
        "from biofeedback.recording import open_session, replay_session, write_report\n"
        "from tests.recording.closed_loop import core_from_recording, run_session\n"
        f"root = Path({str(tmp_path)!r})\n"
        "session = run_session(root / 'rec', 420, seed=7)\n"
        "res = replay_session(session, root / 'replay', core_factory=core_from_recording)\n"
        "page = write_report(session, root / 'report')\n"
        "rows = open_session(session).row_counts\n"
    ) + _LOADED
    code += (
        "print(json.dumps({'bad': bad, 'rows': rows, 'same': res.differences == (),\n"
        "                  'report': page.is_file()}))\n"
    )
    result = _python(code)
    rows = result["rows"]
    assert isinstance(rows, dict)
    # The run went through the parts that once needed neurokit2: corrected beats (revisions),
    # spectra and arousal; the replay reproduced it and the report was written.
    for table in ("revisions", "frequency", "arousal"):
        assert rows[table] > 0, rows
    assert result["same"] is True
    assert result["report"] is True
    assert result["bad"] == [], "the live path, replay or report loads a test-only library"
