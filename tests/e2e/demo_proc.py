"""`biofeedback demo` started as a user starts it, for the end-to-end tests.

A subprocess in its own process group (as a terminal's foreground job, so a test can send it
Ctrl-C with `os.killpg`), on free ports, its embedded broker's read-only login written to a file
(`Demo.observer_login`); once both ports listen the test gets a `Demo`. However the test ends,
a demo still running is sent SIGTERM (which lets it stop its broker) and, if it does not end,
killed; its pipes are closed either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support import REPO_ROOT, free_port

SECRET = "e2e-therapist-secret"
CLIENT = "client-001"  # the demo's client (config/biofeedback.toml)


def wait_port(port: int, timeout: float) -> None:
    """Wait until something listens on a loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class Demo:
    def __init__(
        self,
        proc: subprocess.Popen[str],
        http: int,
        mqtt_port: int,
        data: Path,
        broker: str,
        observer: Path,
    ) -> None:
        self.proc, self.http, self.mqtt_port, self.data = proc, http, mqtt_port, data
        self.broker = broker  # the BIOFEEDBACK_EMBEDDED_BROKER the demo was started with
        self.observer = observer  # where the demo puts the broker's read-only login

    def observer_login(self, timeout: float = 10.0) -> tuple[str, str]:
        """The read-only login a local MQTT tool uses (the embedded broker has no anonymous
        access); the demo writes it once its broker runs."""
        deadline = time.monotonic() + timeout
        while not self.observer.is_file():
            assert time.monotonic() < deadline, f"no observer login at {self.observer}"
            time.sleep(0.1)
        login = json.loads(self.observer.read_text())
        assert login["url"] == f"mqtt://127.0.0.1:{self.mqtt_port}", login
        return login["username"], login["password"]


@contextlib.contextmanager
def run_demo(
    data: Path,
    *args: str,
    speed: float = 25,
    broker: str = "auto",
    secret: str = SECRET,
    mqtt_port: int | None = None,
    within_s: float = 30,
) -> Iterator[Demo]:
    """`biofeedback demo --speed S --http-port H --mqtt-port M --data-dir DATA --duration 3600
    ARGS...` with the therapist's secret and the broker choice in its environment. The session
    is long (an hour of session time); the test ends it. `mqtt_port=0`: the demo picks its own
    port, and only the dashboard's is waited for."""
    http = free_port()
    mqtt_port = free_port() if mqtt_port is None else mqtt_port
    observer = data / "observer.json"
    env = dict(
        os.environ,
        BIOFEEDBACK_THERAPIST_SECRET=secret,
        BIOFEEDBACK_EMBEDDED_BROKER=broker,
        BIOFEEDBACK_BROKER_OBSERVER_FILE=str(observer),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable, "-m", "biofeedback.cli", "demo", *args,
        "--speed", f"{speed:g}", "--http-port", str(http), "--mqtt-port", str(mqtt_port),
        "--data-dir", str(data), "--duration", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        if mqtt_port:
            wait_port(mqtt_port, within_s)
        wait_port(http, within_s)
        yield Demo(proc, http, mqtt_port, data, broker, observer)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # lets the demo stop its broker
        try:
            proc.communicate(timeout=20)  # also closes the pipes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
