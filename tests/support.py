"""Helpers every test folder may import: `from tests.support import free_port, require_binary`.

A test that needs a system binary (mosquitto, dbus-daemon, chromium) skips with a clear reason
when it is absent, except in CI (`CI=true`), where `.ci/run` installed them and absence fails.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BIOFEEDBACK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    """Path of a system binary; skip (fail in CI) with the Debian package to install."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        msg = f"{name} not found: install Debian package {package!r} (apt-get install {package})"
        if IN_CI:
            pytest.fail(msg + " -- .ci/run should have installed it")
        pytest.skip(msg)
    return path
