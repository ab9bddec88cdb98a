"""Several clients in one service: one supervised session per client under one TaskGroup.

Each client gets what a single-client service has: its own `SessionCore`, strap, recording,
baseline, MQTT link (with its own last will, so a dead link marks only that client offline) and
command pump. A single-client run is the clinic of one; there is no second code path.

Isolation, from the inside out:

- a strap that drops, refuses connections or goes stale is handled by the strap itself (it
  reconnects with backoff and reports the gap): that client's session pauses for lost
  monitoring, the others see nothing;
- a strap whose code fails (a driver or parser bug) is restarted by the session runner
  (`SessionRunner(device_factory=...)`) after recording the loss: again only that session pauses;
- anything else that ends a client's task with an exception (its recording folder cannot be
  opened, a bug in its session) is caught by that client's supervisor here: logged with its
  traceback, and that client stops; the TaskGroup never sees it, so no sibling is cancelled.

Ctrl-C or SIGTERM cancels the TaskGroup, which cancels every client; each one's context managers
close its recording, publish its last state and say goodbye on its link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeedback.clock import Clock
from biofeedback.config import AppConfig, ServiceConfig
from biofeedback.exposure import ExposureProtocol, SessionSnapshot
from biofeedback.service import payloads
from biofeedback.service.core import SessionCore
from biofeedback.service.runner import SessionRunner
from biofeedback.service.topics import Topic, topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """One client, checked before anything starts."""

    index: int  # position in the config (the demo's simulated people differ by it)
    config: AppConfig
    target: str | None  # the strap (None: the demo's simulator)
    baseline: Any  # the client's saved baseline, or None (calibrates first)
    protocol: ExposureProtocol

    @property
    def client_id(self) -> str:
        return self.config.client_id


def plan_clients(service: ServiceConfig, opts: Any) -> list[ClientPlan]:
    """Check every client as `check` does (strap chosen, protocol valid) before anything starts.

    The first client's problem is raised: a service that cannot start all its clients does not
    start (a typo found at 9:00, not when the third client sits down).
    """
    from biofeedback.exposure.guidance import with_personal_rate
    from biofeedback.service.app import load_baseline, strap_target
    from biofeedback.service.preflight import preflight
    from biofeedback.service.resonance_store import load_history, personal_rate

    plans: list[ClientPlan] = []
    for index, config in enumerate(service.clients):
        target = strap_target(config, opts)
        baseline = None if opts.demo else load_baseline(config)
        protocol = preflight(config, baseline=baseline)
        # the pacer breathes at the client's measured resonance rate by default (docs/resonance.md)
        rate = personal_rate(load_history(config.baseline_dir, config.client_id))
        protocol = with_personal_rate(protocol, rate)
        plans.append(ClientPlan(index, config, target, baseline, protocol))
    return plans


def link_limit_hint(service: ServiceConfig, straps: int) -> str:
    """What to do when the adapter refuses a link at run time (its real limit is lower)."""
    limit = service.bluetooth.max_links_per_adapter
    return (
        f"This service connects {straps} strap(s) through one adapter "
        f"([bluetooth].max_links_per_adapter = {limit}) and this adapter holds fewer: set "
        "max_links_per_adapter to the number it held, move the other clients to a second "
        "service with its own adapter, or use an adapter that holds more (docs/clinic.md)"
    )


async def run_clients(
    plans: list[ClientPlan],
    *,
    service: ServiceConfig,
    broker: Any,
    clock: Clock,
    opts: Any,
    say: Callable[[str], None],
) -> list[str]:
    """Run every client until each has ended; returns the ids of those that failed."""
    straps = sum(1 for p in plans if p.target is not None)
    hint = link_limit_hint(service, straps) if straps else ""
    tasks: dict[str, asyncio.Task[bool]] = {}
    async with asyncio.TaskGroup() as tg:
        for plan in plans:
            tasks[plan.client_id] = tg.create_task(
                supervise_client(plan, broker=broker, clock=clock, opts=opts, say=say, hint=hint),
                name=f"client {plan.client_id}",
            )
    return [client_id for client_id, task in tasks.items() if not task.result()]


async def supervise_client(
    plan: ClientPlan,
    *,
    broker: Any,
    clock: Clock,
    opts: Any,
    say: Callable[[str], None],
    hint: str = "",
) -> bool:
    """Run one client; an exception ends this client only (logged), never its siblings.

    Returns True when the client's session ended normally. Cancellation (Ctrl-C) passes through.
    """
    try:
        await run_client(plan, broker=broker, clock=clock, opts=opts, say=say, hint=hint)
    except Exception as exc:
        log.error(
            "client %s stopped after an error; the other clients go on: %s",
            plan.client_id,
            exc,
            exc_info=True,
        )
        say(f"client {plan.client_id}: stopped after an error: {exc}")
        return False
    return True


async def run_client(
    plan: ClientPlan,
    *,
    broker: Any,
    clock: Clock,
    opts: Any,
    say: Callable[[str], None],
    hint: str = "",
) -> None:
    """One client's live session: its MQTT link, core, recording, strap, commands (and, in the
    demo, its simulated client and therapist), until its strap ends or time is up."""
    from biofeedback.service.app import (
        _open_recorder,
        make_device,
        mqtt_settings,
        save_baseline,
        stimulus_for,
    )
    from biofeedback.service.chest_signals import with_chest_signals
    from biofeedback.service.commands import serve_commands
    from biofeedback.service.mqtt import MqttLink
    from biofeedback.service.resonance_store import save_assessment

    config = plan.config
    client = config.client_id
    async with contextlib.AsyncExitStack() as stack:
        link = await stack.enter_async_context(
            MqttLink(
                mqtt_settings(config, broker),
                client_name=f"bf-service-{client}",
                will=(
                    topic(client, Topic.STATUS),
                    json.dumps(payloads.offline_status(client)).encode(),
                    True,
                ),
            )
        )
        start_t = clock.now()
        core = SessionCore(
            client_id=client,
            protocol=plan.protocol,
            signal_config=config.signal,
            start_t=start_t,
            baseline=plan.baseline,
        )
        recorder = _open_recorder(stack, config, opts, core, start_t)

        def on_snapshot(snap: SessionSnapshot) -> None:
            # the simulated strap's person reacts to the session (a real one needs no telling)
            set_stimulus = getattr(runner.device, "set_stimulus", None)
            if set_stimulus is not None:
                exposure, breathing = stimulus_for(snap)
                set_stimulus(exposure=exposure, paced_breathing_bpm=breathing)

        runner = SessionRunner(
            core=core,
            device=None,
            # a strap's raw ECG / ACC (if any) go to the recording and MQTT beside the beats, and
            # through the live ECG, movement and breathing stages (service/chest_signals.py)
            device_factory=lambda: with_chest_signals(
                make_device(config, opts, clock, index=plan.index),
                client,
                link,
                recorder,
                submit=lambda item: runner.process(item),
                guidance=lambda: core.snapshot.guidance,
            ),
            clock=clock,
            publisher=link,
            recorder=recorder,
            on_snapshot=on_snapshot,
            # the demo's simulated person is never anyone's baseline
            on_baseline=None if opts.demo else (lambda b: save_baseline(config, b)),
            # the resonance assessment's result belongs to the client's profile (the demo's
            # profile lives in the demo's own data folder)
            on_assessment=lambda result: save_assessment(
                config.baseline_dir,
                client,
                result,
                clock.now(),
                Path(str(getattr(recorder, "path", ""))).name,
            ),
            stop_after_s=opts.duration_s,
            link_limit_hint=hint,
        )
        if recorder is not None:
            say(f"recording to {getattr(recorder, 'path', config.recording_dir)}")
        async with asyncio.TaskGroup() as tg:
            pump = tg.create_task(
                serve_commands(link, client, now=clock.now, submit=runner.submit),
                name=f"commands {client}",
            )
            actor = None
            if opts.actor:
                from biofeedback.service.demo_actor import run_actor

                actor_settings = mqtt_settings(config, broker, "demo-actor")
                actor = tg.create_task(
                    run_actor(actor_settings, client, clock), name=f"demo-actor {client}"
                )
            await runner.run()
            pump.cancel()
            if actor is not None:
                actor.cancel()
