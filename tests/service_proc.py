"""`biofeedback run` in a subprocess, as a user starts it, for the end-to-end tests.

The service writes its output to `service.log` in the test's folder and its embedded broker's
read-only login to `observer.json` there; the test gets the process once its MQTT and dashboard
ports answer (a service that exits first fails the test with the log's end). However the test
ends, a service still running gets SIGTERM (the test asserts the exit status itself) and, if it
does not end in time, is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support import REPO_ROOT


def tail(log: Path) -> str:
    """The end of a service's log, for an assertion's message."""
    return log.read_text()[-4000:]


async def wait_port(
    port: int, proc: asyncio.subprocess.Process, log: Path, within_s: float = 60
) -> None:
    """Wait until the service listens on `port`; fail at once if it exited."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"service exited with {proc.returncode}:\n{tail(log)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}:\n{tail(log)}")


@contextlib.asynccontextmanager
async def service_process(
    tmp_path: Path,
    *args: str,
    mqtt_port: int,
    http_port: int,
    secret: str,
    broker: str | None = None,
    within_s: float = 60,
    stop_within_s: float = 30,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`biofeedback run ARGS...` with the therapist's `secret` (and the embedded `broker` choice,
    if given) in its environment. os.environ passes on what the test set (e.g. the private
    D-Bus of the emulated BlueZ)."""
    log = tmp_path / "service.log"
    cmd = [sys.executable, "-m", "biofeedback.cli", "run", *args]
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        BIOFEEDBACK_THERAPIST_SECRET=secret,
        # the embedded broker has no anonymous access: the read-only login for the test's watcher
        BIOFEEDBACK_BROKER_OBSERVER_FILE=str(tmp_path / "observer.json"),
    )
    if broker is not None:
        env["BIOFEEDBACK_EMBEDDED_BROKER"] = broker
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await wait_port(mqtt_port, proc, log, within_s)
        await wait_port(http_port, proc, log, within_s)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(stop_within_s):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
