"""The demo's simulated people: a therapist who offers steps and a client who consents.

The client also agrees to a breathing-rate check (docs/resonance.md) offered from the dashboard,
and the therapist offers no step while one is on offer or running.

They act only through MQTT commands, exactly as the dashboard's buttons would, so the demo runs
the real command path (validation, roles, replies). The client takes a few seconds before each
consent, as a person would; nothing here bypasses the session's rules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from typing import Any

from biofeedback.clock import Clock
from biofeedback.service.topics import SCHEMA_VERSION, Topic, topic

log = logging.getLogger(__name__)

THINK_S = 3.0  # how long the simulated people take before acting (session seconds)


def _command(role: str, cmd: str, **args: Any) -> bytes:
    body = {"v": SCHEMA_VERSION, "id": uuid.uuid4().hex, "role": role, "cmd": cmd, "args": args}
    return json.dumps(body).encode()


def decide(snap: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """What one of the simulated people does about this session state, if anything."""
    state = snap.get("state")
    if snap.get("checkin_due"):
        # Distress a little higher before a step than after recovery, as clients often report.
        value = 45 if state in ("step_offered", "exposing") else 30
        return ("client", "suds", {"value": value})
    if snap.get("consent_needed"):
        return ("client", "consent", {})
    if state == "ready":
        return ("therapist", "offer_step", {})
    if state == "step_complete":
        steps = snap.get("steps") or []
        index = snap.get("step_index")
        if not (isinstance(index, int) and index + 1 < len(steps)):
            return ("therapist", "end", {})
        # A considerate therapist offers the next step only once the client is calm again.
        arousal = snap.get("last_arousal")
        lower = (snap.get("thresholds") or {}).get("lower")
        if isinstance(arousal, int | float) and isinstance(lower, int | float) and arousal < lower:
            return ("therapist", "offer_step", {})
        return None
    if state == "debrief":
        return ("therapist", "end", {})
    if state == "exposing":
        planned = _planned_s(snap)
        since = snap.get("state_since_t")
        t = snap.get("t")
        if (
            planned
            and isinstance(since, int | float)
            and isinstance(t, int | float)
            and t - since >= planned
        ):
            return ("therapist", "complete_step", {})
    return None


def decide_assessment(a: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """The simulated client agrees to a breathing-rate check the therapist offers (from the
    dashboard); while one is on offer or running the simulated therapist offers no step."""
    if a.get("state") == "offered":
        return ("client", "assessment_consent", {})
    return None


def assessment_active(a: dict[str, Any]) -> bool:
    return a.get("state") in ("offered", "running")


def _planned_s(snap: dict[str, Any]) -> float | None:
    steps = snap.get("steps") or []
    index = snap.get("step_index")
    if isinstance(index, int) and 0 <= index < len(steps):
        step = steps[index]
        if isinstance(step, dict):
            value = step.get("planned_s") or step.get("planned_duration_s")
            return float(value) if isinstance(value, int | float) else None
    return None


async def run_actor(settings: Any, client_id: str, clock: Clock) -> None:
    """Watch the retained session state and act like a cooperative client and therapist."""
    from biofeedback.service.mqtt import MqttLink

    session_topic = topic(client_id, Topic.SESSION)
    assessment_topic = topic(client_id, Topic.ASSESSMENT)
    assessment: dict[str, Any] = {}
    cmd_topic = topic(client_id, Topic.CMD)
    latest: dict[str, Any] = {}
    # A clean session: the actor acts on what it sees now, so nothing queued from before may
    # reach it (and amqtt mishandles the 3.1.1 persistent-session probe of a fast reconnect).
    clean = dataclasses.replace(settings, session_expiry_s=0)
    async with MqttLink(clean, client_name=f"bf-demo-actor-{client_id}") as link:
        await link.subscribe(session_topic, qos=1)
        await link.subscribe(assessment_topic, qos=1)

        async def watch() -> None:
            async for msg in link.messages():
                if msg.topic == assessment_topic:
                    try:
                        assessment.clear()
                        assessment.update(json.loads(msg.payload))
                    except ValueError:
                        log.warning("demo actor: unreadable assessment state ignored")
                elif msg.topic == session_topic:
                    try:
                        latest.update(json.loads(msg.payload))
                        latest["_seen"] = clock.now()
                    except ValueError:
                        log.warning("demo actor: unreadable session state ignored")

        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            try:
                last_key: tuple[Any, ...] | None = None
                key_since = clock.now()
                while True:
                    await clock.sleep(0.5)
                    if assessment_active(assessment):
                        action = decide_assessment(assessment)
                    else:
                        action = decide(latest) if latest else None
                    key = (
                        assessment.get("state"),
                        latest.get("state"),
                        latest.get("consent_needed"),
                        latest.get("checkin_due"),
                        action,
                    )
                    if key != last_key:
                        last_key, key_since = key, clock.now()
                        continue
                    if action is not None and clock.now() - key_since >= THINK_S:
                        role, cmd, args = action
                        log.info("demo %s sends %s %s", role, cmd, args or "")
                        link.publish_json(cmd_topic, json.loads(_command(role, cmd, **args)), qos=1)
                        last_key = None  # the state must answer before acting again
            finally:
                watcher.cancel()
