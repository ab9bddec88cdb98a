"""The broker drill against the broker the service manages itself: `biofeedback demo` with its
embedded Mosquitto (per-run logins, the role ACL, persistence), whose broker process gets
SIGKILL right after the client consents to a step.

The service restarts it on the same port; the demo's simulated therapist and client go on
commanding through it; a tool holding the read-only observer login, on an MQTT 5 session that
comes back only after the service did, gets every session event in order with none missing;
the session ends in the right state, and the recording holds every event.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from biofeedback.errors import BrokerError
from biofeedback.recording.reader import list_sessions, open_session
from biofeedback.service.mqtt import MqttLink, MqttSettings
from tests.service.embedded_support import next_message
from tests.support import REPO_ROOT, free_port, require_binary

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

CLIENT = "c-drill"
SPEED = 25


def _broker_of(parent: int) -> tuple[int, Path] | None:
    """The mosquitto child of process `parent`: its pid and its folder, if one runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if (
            int(fields[1]) == parent
            and fields[0] != "Z"
            and "mosquitto" in stat[: stat.rindex(")")]
        ):
            return int(entry.name), Path(os.fsdecode(cmdline[cmdline.index(b"-c") + 1])).parent
    return None


async def _wait_for(what: str, probe: Any, limit_s: float = 30.0) -> Any:
    async with asyncio.timeout(limit_s):
        while not (found := await asyncio.to_thread(probe)):  # noqa: ASYNC110 - polls files
            await asyncio.sleep(0.1)
    assert found, what
    return found


async def test_demo_survives_kill9_of_its_own_broker(tmp_path: Path) -> None:
    require_binary("mosquitto", "mosquitto")
    port = free_port()
    observer_file = tmp_path / "observer.json"
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "biofeedback.cli", "demo",
        "--speed", str(SPEED), "--client-id", CLIENT, "--mqtt-port", str(port),
        "--data-dir", str(tmp_path), "--no-web", "--duration", "3000",
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "BIOFEEDBACK_EMBEDDED_BROKER": "mosquitto",
            "BIOFEEDBACK_BROKER_OBSERVER_FILE": str(observer_file),
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    events: dict[int, dict[str, Any]] = {}
    killed: tuple[int, int] | None = None  # (old broker pid, consent seq)
    restarted_pid = None
    err = b""
    try:
        await _wait_for("the observer login", observer_file.is_file)
        login = json.loads(observer_file.read_text())
        assert login["url"] == f"mqtt://127.0.0.1:{port}"

        def settings(**kw: Any) -> MqttSettings:
            return MqttSettings.from_url(login["url"], env={}, connect_timeout_s=3.0, **kw)

        with pytest.raises(BrokerError, match="refused the login"):
            await MqttLink(settings(), "anonymous").__aenter__()
        # back only 3 s after losing the broker, well after the service: what the service sends
        # meanwhile waits in this MQTT 5 session, restored from the broker's database
        tool = MqttLink(
            settings(
                username=login["username"],
                password=login["password"],
                reconnect_min_s=3,
                reconnect_max_s=3,
            ),
            "research-tap",
        )
        async with tool:
            await tool.subscribe(f"biofeedback/v1/{CLIENT}/event", qos=1)
            broker_pid, folder = await _wait_for("the broker", lambda: _broker_of(demo.pid))
            db = folder / "mosquitto.db"
            subscribed_at = time.time_ns()
            await _wait_for(
                "an autosave", lambda: db.exists() and db.stat().st_mtime_ns > subscribed_at
            )
            async with asyncio.timeout(150):
                while True:
                    try:
                        msg = await next_message(tool, 1.0)
                    except TimeoutError:
                        assert demo.returncode is None, "the demo exited early"
                        continue
                    p = msg.json()
                    if p.get("source") != "session":
                        continue
                    events[p["seq"]] = p
                    if killed is None and p.get("to_state") == "exposing":
                        os.kill(broker_pid, signal.SIGKILL)
                        killed = (broker_pid, p["seq"])
                    if p.get("to_state") == "ended":
                        break
            found = _broker_of(demo.pid)
            assert found is not None, "no broker runs after the kill"
            restarted_pid = found[0]
            assert found[1] == folder  # same folder, same database, same logins
            async with MqttLink(
                settings(username=login["username"], password=login["password"]), "late"
            ) as late:
                await late.subscribe(f"biofeedback/v1/{CLIENT}/session", qos=1)
                retained = (await next_message(late)).json()
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(demo.communicate(), 30)
    log = err.decode()
    assert demo.returncode == 0, log[-3000:]
    assert killed is not None, "the client never consented to a step"
    old_pid, consent_seq = killed
    assert restarted_pid != old_pid
    assert "exited unexpectedly" in log
    assert "mosquitto restarted on" in log
    assert "Traceback" not in log, log[-3000:]
    assert login["password"] not in log
    seqs = sorted(events)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gaps in {seqs}"
    after = [events[s] for s in seqs if s > consent_seq]
    # the session went on through the restarted broker: the simulated people's commands
    # (offers, consents, the end) arrived, and the session ended
    assert any(e.get("actor") == "client" for e in after), after
    assert any(e.get("actor") == "therapist" for e in after), after
    assert retained["state"] == "ended"
    assert retained["seq"] == seqs[-1]
    [session_dir] = list_sessions(tmp_path / "recordings", CLIENT)
    recorded = {int(r["seq"]) for r in open_session(session_dir).events()}
    assert set(seqs) <= recorded
