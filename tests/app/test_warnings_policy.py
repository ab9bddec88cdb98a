"""The warnings policy in pyproject.toml: ours are errors, a third party's are shown, never fatal.

Run in a child pytest with the project's own configuration, so the test checks the filters that
`./dev test` really applies, not a copy of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    '''
    import types
    import warnings


    def _module(name: str) -> types.ModuleType:
        """A module whose code runs under `name`, as if it were that package's source."""
        mod = types.ModuleType(name)
        exec(
            "import warnings\\n"
            "def emit(category, text):\\n"
            "    warnings.warn(text, category, stacklevel=1)\\n",
            mod.__dict__,
        )
        return mod


    def test_ours_user_warning():
        _module("biofeedback._warning_probe").emit(UserWarning, "probe-ours")


    def test_ours_runtime_warning_in_a_subpackage():
        _module("biofeedback.signal._warning_probe").emit(RuntimeWarning, "probe-ours-sub")


    def test_third_party_deprecation():
        _module("thirdparty_probe").emit(DeprecationWarning, "probe-theirs")


    def test_lookalike_name_is_third_party():
        _module("biofeedbackish_probe").emit(FutureWarning, "probe-lookalike")
    '''
)


def test_own_warnings_fail_and_third_party_deprecations_are_shown(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-q",
            str(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "300"},
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "FAILED test_probe.py::test_ours_user_warning - UserWarning: probe-ours" in out
    assert (
        "FAILED test_probe.py::test_ours_runtime_warning_in_a_subpackage - "
        "RuntimeWarning: probe-ours-sub" in out
    )
    assert "2 failed, 2 passed" in out
    # Shown in the warnings summary, so a maintainer sees it when refreshing the lock.
    assert "DeprecationWarning: probe-theirs" in out
    assert "FutureWarning: probe-lookalike" in out
