"""A whole session with the broker killed mid-exposure: `biofeedback demo` (simulated strap,
simulated client and therapist acting over MQTT) against a real Mosquitto that gets SIGKILL right
after the client consents to a step, and comes back 4 s (100 session seconds) later.

While the broker is dead the session must still pause on arousal (nothing about that decision
goes through MQTT), the recording must hold every event, and afterwards every event must reach a
dashboard in order with none missing, and the retained state must be the session's real state.
Junk sent to `cmd` meanwhile gets error replies and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from biofeedback.recording.reader import list_sessions, open_session
from biofeedback.service.mqtt import MqttLink
from tests.brokers import mosquitto_plain
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

CLIENT = "c-outage"
_rng = random.Random(6)
JUNK = [
    *(bytes(_rng.randrange(256) for _ in range(_rng.randrange(1, 64))) for _ in range(8)),
    b"",
    b"{",
    b"null",
    b'{"v": 1, "id": "j-1", "role": "client", "cmd": "end"}',  # a client may not end
    b'{"v": 1, "id": "j-2", "role": "system", "cmd": "pause"}',
    b'{"v": 1, "id": "j-3", "role": "client", "cmd": "suds", "args": {"value": 500}}',
]
SPEED = 25
OUTAGE_S = 4.0


async def test_session_keeps_pausing_on_arousal_while_the_broker_is_down(tmp_path: Path) -> None:
    events: dict[int, tuple[dict[str, Any], float]] = {}  # seq -> (payload, wall arrival)
    replies: list[dict[str, Any]] = []
    async with mosquitto_plain(persistence=True) as broker:
        proc = broker.process
        assert proc is not None
        # The dashboard stand-in: 3.1.1 persistent session, so its subscription survives the
        # broker's restart (Mosquitto 2.0.11 restores 3.1.1 sessions, not MQTT 5 ones).
        async with MqttLink(broker.settings(311), "dashboard") as dash:
            await dash.subscribe(f"biofeedback/v1/{CLIENT}/event", qos=1)
            await dash.subscribe(f"biofeedback/v1/{CLIENT}/reply/#", qos=1)
            demo = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "biofeedback.cli", "demo",
                "--speed", str(SPEED), "--mqtt-url", broker.url, "--client-id", CLIENT,
                "--data-dir", str(tmp_path), "--no-web", "--duration", "3000",
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            it = dash.messages()
            killed_at = restarted_at = None
            consent_seq = None
            junk_sent = False
            try:
                async with asyncio.timeout(120):
                    while True:
                        try:
                            msg = await asyncio.wait_for(it.__anext__(), 1.0)
                        except TimeoutError:
                            assert demo.returncode is None, "demo exited early"
                            continue
                        p = json.loads(msg.payload)
                        if msg.topic.split("/")[3] == "reply":
                            replies.append(p)
                            continue
                        if p.get("source") != "session":
                            continue
                        events[p["seq"]] = (p, time.monotonic())
                        if (
                            killed_at is None
                            and p["kind"] == "transition"
                            and p["to_state"] == "exposing"
                        ):
                            consent_seq = p["seq"]
                            await proc.save()  # the dashboard's session survives the kill
                            await proc.kill()
                            killed_at = time.monotonic()
                            await asyncio.sleep(OUTAGE_S)
                            await proc.start()
                            restarted_at = time.monotonic()
                        elif restarted_at is not None and not junk_sent:
                            # The service is back (it re-subscribes before sending what it
                            # held). Junk on cmd while the session runs: error replies only.
                            junk_sent = True
                            for junk in JUNK:
                                dash.publish_bytes(f"biofeedback/v1/{CLIENT}/cmd", junk, qos=1)
                        if p["kind"] == "transition" and p["to_state"] == "ended":
                            break
            finally:
                if demo.returncode is None:
                    demo.send_signal(signal.SIGTERM)
                _, err = await asyncio.wait_for(demo.communicate(), 30)
            assert demo.returncode == 0, err.decode()[-2000:]

            # The retained state is the session's last state.
            async with MqttLink(broker.settings(5), "late") as late:
                await late.subscribe(f"biofeedback/v1/{CLIENT}/session")
                retained = json.loads(
                    (await asyncio.wait_for(late.messages().__anext__(), 5)).payload
                )

    assert killed_at is not None
    assert restarted_at is not None
    assert consent_seq is not None
    seqs = sorted(events)
    # every event reached the dashboard, none missing, including those of the outage
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gaps in {seqs}"
    # right after the consent, the session paused on arousal with the broker dead: the event
    # was held and delivered after the restart
    after = [events[s] for s in seqs if s > consent_seq]
    pause, arrived = next(
        (p, a) for p, a in after if p["kind"] == "transition" and p["to_state"] == "paused"
    )
    assert pause["reason"].startswith("arousal_high"), pause
    assert pause["actor"] == "system"
    assert arrived >= restarted_at
    assert any(p["to_state"] == "grounding" for p, _ in after)
    assert retained["state"] == "ended"
    # every junk command got an error reply naming the problem, and the session went on to the end
    assert junk_sent
    junk_replies = [r for r in replies if r["ok"] is False]
    assert len(junk_replies) >= len(JUNK), [
        line for line in err.decode().splitlines() if "command" in line
    ][-20:]
    assert {r["id"] for r in junk_replies} >= {"j-1", "j-2", "j-3"}
    assert all(r["error"] for r in junk_replies)
    assert retained["seq"] == seqs[-1]

    # nothing recorded is lost: the recording has every event the dashboard saw, and the pause
    [session_dir] = list_sessions(tmp_path / "recordings", CLIENT)
    rec = open_session(session_dir)
    recorded = {int(r["seq"]): r for r in rec.events()}
    assert set(seqs) <= set(recorded)
    assert recorded[pause["seq"]]["to_state"] == "paused"
    assert recorded[pause["seq"]]["t"] == pytest.approx(pause["t"])
