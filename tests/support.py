"""Helpers every test folder may import: `from tests.support import free_port, require, ...`.

A test that needs a part the machine may lack (a system binary, the optional pylsl, the real
recordings in ../shared/data) asks for it through `require`: where the part is missing the test
skips with a reason that names it and says how to get it, except in CI (`CI=true`), where
`.ci/run` provided every part and a missing one fails the run. No test skips for a missing part
any other way, so CI cannot go green on a test that did not run.
"""

from __future__ import annotations

import importlib
import os
import random
import shutil
import socket
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Where the real recordings are: BIOFEEDBACK_SHARED_DATA, else shared/data beside the checkout
# (as .ci/run and the developers' machines lay it out).
SHARED_DATA_ENV = "BIOFEEDBACK_SHARED_DATA"
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or REPO_ROOT.parent / "shared" / "data")
CI_FAILURE_NOTE = "CI=true: a missing part fails the run instead of skipping the test"


def in_ci() -> bool:
    """True when the CI variable says this run is CI (`.ci/run` exports CI=true)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: object, reason: str) -> None:
    """Go on when `condition` holds; else skip with `reason`, or fail with it in CI.

    `reason` names the missing part and how to get it: it is all a reader of the skip or the
    failure sees.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} [{CI_FAILURE_NOTE}]", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str, package: str) -> str:
    """Path of a system binary; skip (fail in CI) with the Debian package to install."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    require(
        path is not None,
        f"{name} not found: install Debian package {package!r} (apt-get install {package})",
    )
    assert path is not None
    return path


def require_module(
    name: str, how: str, *, errors: tuple[type[Exception], ...] = (ImportError,)
) -> ModuleType:
    """Import an optional module; skip (fail in CI) when it is absent or cannot load.

    `how` says how to get it; `errors` are the exceptions that mean "cannot load here" (pylsl
    raises RuntimeError when its native liblsl is missing).
    """
    try:
        return importlib.import_module(name)
    except errors as exc:
        require(False, f"{name} cannot be imported ({type(exc).__name__}: {exc}): {how}")
        raise AssertionError("unreachable") from exc  # require skipped or failed


def require_shared_data() -> Path:
    """The real recordings folder; skip (fail in CI) when it is absent."""
    require(
        SHARED_DATA.is_dir(),
        f"real recordings not present at {SHARED_DATA} (a user's clone has no ../shared; "
        f"put shared/data beside the checkout or set {SHARED_DATA_ENV})",
    )
    return SHARED_DATA


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_random = random.Random()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range.

    A port handed out by binding port 0 comes from the kernel's ephemeral range, the same range
    the local ends of outgoing connections use: between picking it and a server binding it, a
    test's own MQTT or HTTP client could take it as its local port ("address already in use",
    seen in CI). Ports just below that range are never given to outgoing connections.
    """
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    if low > 12_000:
        for _ in range(100):
            port = _random.randrange(low - 10_000, low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """A server could bind the port on 127.0.0.1 again now: nothing listens there (connections
    in TIME_WAIT may remain, as TCP wants; a server restarting on the port would not mind them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
