"""The code stays ruff- and mypy-clean (configured in pyproject.toml), checked with every run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_check() -> None:
    out = _run("ruff", "check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format() -> None:
    out = _run("ruff", "format", "--check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_strict() -> None:
    out = _run("mypy", "--no-incremental")
    assert out.returncode == 0, out.stdout + out.stderr
