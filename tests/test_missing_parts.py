"""A part the tests need but the machine lacks: skipped with its reason, a failure in CI.

tests.support.require is the one way a test skips for a missing part; here it is checked both
directly and end to end, by running a real-data test in a subprocess with the recordings folder
pointed somewhere that does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, SHARED_DATA_ENV, require, require_binary

# a test that reads the real recordings through the `shared_data` fixture
REAL_DATA_TEST = "tests/devices/test_hrm.py::test_captured_payloads_decode_to_the_spec_columns"


def test_require_skips_with_the_reason_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^gizmo missing: apt-get install gizmo$"):
        require(False, "gizmo missing: apt-get install gizmo")


@pytest.mark.parametrize("value", ["true", "1", "TRUE", "yes"])
def test_require_fails_in_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"^gizmo missing \[CI=true: a missing part"):
        require(False, "gizmo missing")


@pytest.mark.parametrize("ci", ["true", None])
def test_a_present_part_passes(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    require(True, "never shown")  # neither skips nor fails


def test_ci_false_is_not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require(False, "gizmo missing")


def test_a_missing_binary_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match="apt-get install bf-no-such-package"):
        require_binary("bf-no-such-binary", "bf-no-such-package")


def _run_real_data_test(missing: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[SHARED_DATA_ENV] = str(missing)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", REAL_DATA_TEST, "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_missing_shared_data_fails_the_run_in_ci(tmp_path: Path) -> None:
    missing = tmp_path / "no-shared" / "data"
    run = _run_real_data_test(missing, ci=True)
    out = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert f"real recordings not present at {missing}" in out, out
    assert "CI=true: a missing part fails the run" in out, out
    assert "1 error" in out, out  # the fixture failed: the test did not run
    assert "skipped" not in out, out


def test_missing_shared_data_skips_with_the_reason_outside_ci(tmp_path: Path) -> None:
    missing = tmp_path / "no-shared" / "data"
    run = _run_real_data_test(missing, ci=False)
    out = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.OK, out
    assert "1 skipped" in out, out
    assert f"real recordings not present at {missing}" in out, out  # pytest's -ra summary
    assert SHARED_DATA_ENV in out, out
