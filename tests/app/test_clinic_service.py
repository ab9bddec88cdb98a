"""Several clients in one service: a failing strap or client affects only its own session."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import pytest

from biofeedback.clock import ScaledClock
from biofeedback.config import ServiceConfig, load_config
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import (
    DeviceEvent,
    DeviceEventKind,
    DeviceReading,
    HeartRateMeasurement,
    Notification,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import ConfigError
from biofeedback.exposure import load_protocol
from biofeedback.recording.reader import iter_inputs, list_sessions
from biofeedback.service import app as service_app
from biofeedback.service.app import ServiceOptions, apply_service_overrides, run_service
from biofeedback.service.core import SessionCore
from biofeedback.service.demo_data import demo_person
from biofeedback.service.runner import SessionRunner, is_link_limit_error
from biofeedback.service.topics import Topic
from biofeedback.signal import SignalConfig
from tests.app.test_runner import Collect
from tests.support import REPO_ROOT

PAYLOAD = encode_heart_rate_measurement(HeartRateMeasurement(70, True, True, None, (880,)))


class ScriptedStrap:
    """A device that sends `beats` notifications a session second apart, then fails or ends."""

    def __init__(
        self,
        clock: ScaledClock,
        beats: int,
        fail: BaseException | None,
        then: DeviceEventKind | None = None,
    ) -> None:
        self.name = "scripted"
        self.clock, self.beats, self.fail, self.then = clock, beats, fail, then
        self.timer = BeatTimer(self.name)
        self.opened = 0

    async def __aenter__(self) -> Self:
        self.opened += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def readings(self) -> AsyncIterator[DeviceReading]:
        for _ in range(self.beats):
            await self.clock.sleep(0.86)
            yield self.timer.notification(self.clock.now(), PAYLOAD)
        if self.then is not None:
            yield DeviceEvent(self.clock.now(), self.name, self.then)
        if self.fail is not None:
            raise self.fail
        yield DeviceEvent(self.clock.now(), self.name, DeviceEventKind.ENDED)


def _core(start: float, client_id: str = "c1") -> SessionCore:
    return SessionCore(
        client_id=client_id,
        protocol=load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml"),
        signal_config=SignalConfig(),
        start_t=start,
    )


async def run_straps_in_turn(
    clock: ScaledClock, straps: list[ScriptedStrap], **runner_kw: Any
) -> Collect:
    """One session whose strap is opened again after each failure: the straps in turn (the
    runner's `device_factory`), until one ends; what it published."""
    made = iter(straps)
    pub = Collect()
    runner = SessionRunner(
        core=_core(clock.now()),
        device=None,
        device_factory=lambda: next(made),
        clock=clock,
        publisher=pub,
        **runner_kw,
    )
    async with asyncio.timeout(30):
        await runner.run()
    return pub


async def test_a_crashing_strap_pauses_monitoring_and_is_opened_again() -> None:
    clock = ScaledClock(200.0)
    straps = [
        ScriptedStrap(clock, 3, RuntimeError("parser crashed on byte 3")),
        ScriptedStrap(clock, 4, None),
    ]
    pub = await run_straps_in_turn(clock, straps)
    assert [s.opened for s in straps] == [1, 1]
    events = pub.kinds(Topic.EVENT)
    failed = [e for e in events if e.get("kind") == "device_failed"]
    assert len(failed) == 1
    assert "parser crashed on byte 3" in failed[0]["detail"]
    kinds = [e["kind"] for e in events if e.get("source") == "device"]
    lost, restored = kinds.index("signal_lost"), kinds.index("signal_restored")
    assert lost < restored
    lost_event = next(e for e in events if e.get("kind") == "signal_lost")
    assert "strap software failed" in lost_event["detail"]
    assert len(pub.kinds(Topic.BEAT)) == 7  # every beat of both straps, none invented


async def test_contact_lost_before_a_crash_is_restored_by_the_fresh_strap() -> None:
    """A fresh strap starts with contact and never says it came back: the runner does, so the
    session's monitoring is whole again."""
    clock = ScaledClock(200.0)
    straps = [
        ScriptedStrap(clock, 2, RuntimeError("crash"), then=DeviceEventKind.CONTACT_LOST),
        ScriptedStrap(clock, 3, None),
    ]
    monitoring: list[bool] = []
    pub = await run_straps_in_turn(
        clock, straps, on_snapshot=lambda snap: monitoring.append(snap.monitoring_ok)
    )
    kinds = [e["kind"] for e in pub.kinds(Topic.EVENT) if e.get("source") == "device"]
    assert kinds.index("contact_lost") < kinds.index("signal_lost")
    assert kinds.index("signal_restored") < kinds.index("contact_restored")
    # lost with the contact, whole again once the fresh strap's first beat came (then the
    # second strap's end loses it for good)
    first_loss = monitoring.index(False)
    assert True in monitoring[first_loss:]


async def test_without_a_factory_a_device_failure_still_ends_the_run() -> None:
    clock = ScaledClock(200.0)
    runner = SessionRunner(
        core=_core(clock.now()),
        device=ScriptedStrap(clock, 1, RuntimeError("boom")),
        clock=clock,
        publisher=Collect(),
    )
    with pytest.raises(ExceptionGroup) as info:
        await runner.run()
    assert info.group_contains(RuntimeError, match="boom")


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("org.bluez.Error.Failed: le-connection-concurrent-connection-limit", True),
        ("Connection Rejected due to Limited Resources (0x0d)", True),
        ("HCI: Connection Limit Exceeded", True),
        ("org.bluez.Error.Failed: le-connection-abort-by-local", False),
        ("strap 'X' not found in 10 s of scanning", False),
    ],
)
def test_link_limit_refusals_are_recognised(text: str, limit: bool) -> None:
    assert is_link_limit_error(text) is limit


def refused_at_the_link_limit(hint: str, client_id: str = "c1", t: float = 1000.0) -> Collect:
    """What the runner publishes when the adapter refuses strap 'Polar H10 6' a link
    (bluetoothd's text for it), its service given `hint` for that case."""
    pub = Collect()
    runner = SessionRunner(
        core=_core(t, client_id),
        device=None,
        clock=ScaledClock(1.0, start=t),
        publisher=pub,
        link_limit_hint=hint,
    )
    runner.process(
        DeviceEvent(
            t + 1.0,
            "Polar H10 6",
            DeviceEventKind.ERROR,
            detail="org.bluez.Error.Failed le-connection-concurrent-connection-limit",
            hint="check the strap",
        )
    )
    return pub


def test_an_adapter_at_its_link_limit_gets_an_actionable_error() -> None:
    pub = refused_at_the_link_limit("set max_links_per_adapter to the number it held")
    (told,) = [e for e in pub.kinds(Topic.EVENT) if e.get("kind") == "adapter_link_limit"]
    assert "'Polar H10 6'" in told["detail"]
    assert "refused a link" in told["detail"]
    assert "max_links_per_adapter" in told["detail"]


def test_demo_people_differ_reproducibly_and_the_first_is_the_demo_as_before() -> None:
    assert demo_person(0, 1) == ("SimStrap", 1, None)
    people = [demo_person(i, 1) for i in range(1, 6)]
    assert people == [demo_person(i, 1) for i in range(1, 6)]  # seeded
    rest = {p[2].resting_hr_bpm for p in people if p[2] is not None}
    gains = {p[2].arousal_hr_gain_bpm for p in people if p[2] is not None}
    assert len(rest) == 5
    assert len(gains) == 5
    assert len({p[1] for p in people}) == 5
    assert demo_person(1, 2) != demo_person(1, 1)


def _args(*extra: str) -> argparse.Namespace:
    from biofeedback.cli import build_parser

    return build_parser().parse_args(list(extra))


def test_demo_clients_builds_a_group_and_one_is_the_config_client() -> None:
    one = ServiceConfig.single(load_config(env={}))
    args = _args("demo")
    same = apply_service_overrides(one, args, ServiceOptions.from_args(args))
    assert [c.client_id for c in same.clients] == ["client-001"]
    args = _args("demo", "--clients", "3")
    group = apply_service_overrides(one, args, ServiceOptions.from_args(args))
    assert [c.client_id for c in group.clients] == ["client-001", "client-002", "client-003"]
    assert len({c.recording_dir for c in group.clients}) == 1
    with pytest.raises(ConfigError, match="--clients"):
        ServiceOptions.from_args(_args("demo", "--clients", "0"))
    args = _args("demo", "--clients", "2", "--client-id", "x")
    with pytest.raises(ConfigError, match="--client-id"):
        apply_service_overrides(one, args, ServiceOptions.from_args(args))


def test_per_client_flags_are_refused_with_a_clinic_file() -> None:
    from biofeedback.config import load_service_config

    clinic = load_service_config(REPO_ROOT / "config" / "clinic.example.toml", env={})
    for flags in (["--client-id", "x"], ["--device", "Polar"]):
        args = _args("run", *flags)
        with pytest.raises(ConfigError, match="clinic file"):
            apply_service_overrides(clinic, args, ServiceOptions.from_args(args))


class EndsAfter:
    """Wraps a client's strap: it streams as it would until `started` is set, then sends `beats`
    more notifications with RR and ends (DeviceEventKind.ENDED).

    The session then ends on a count of beats, not on a span of wall time: at --speed 40 a
    20 s --duration is half a second of wall time, and on a loaded machine the simulated beats of
    that half second had not all been read when the time limit ended the session (2 beats).
    """

    def __init__(self, device: Any, started: asyncio.Event, beats: int) -> None:
        self._device, self._started, self._beats = device, started, beats
        self.started_at: float | None = None  # session time of the first reading after `started`

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)

    async def __aenter__(self) -> Self:
        await self._device.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._device.__aexit__(*exc)

    async def readings(self) -> AsyncIterator[DeviceReading]:
        left = self._beats
        async for r in self._device.readings():
            yield r
            if not self._started.is_set():
                continue
            if self.started_at is None:
                self.started_at = r.t
            if isinstance(r, Notification) and r.beats:
                left -= 1
                if left == 0:
                    yield DeviceEvent(r.t, r.device, DeviceEventKind.ENDED, "test: enough beats")
                    return


async def test_a_client_that_fails_to_start_does_not_stop_its_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real service with two simulated clients: the second one's strap cannot even be
    made; the first records beats on after that, to the end of its session; the exit status
    says 1."""
    real = service_app.make_device
    sibling_failed = asyncio.Event()
    first: list[EndsAfter] = []

    def make_device(config: Any, opts: Any, clock: Any, index: int = 0) -> Any:
        if index == 1:
            raise ConfigError("no such strap (a test's broken client)")
        first.append(EndsAfter(real(config, opts, clock, index), sibling_failed, beats=10))
        return first[-1]

    def announce(text: str) -> None:
        said.append(text)
        if "client-002: stopped after an error" in text:
            sibling_failed.set()

    monkeypatch.setattr(service_app, "make_device", make_device)
    monkeypatch.setenv("BIOFEEDBACK_EMBEDDED_BROKER", "amqtt")
    # no --duration: client-001's session ends when its strap has sent 10 beats after
    # client-002 failed (the generous timeout only stops a hung run)
    args = _args(
        "demo", "--clients", "2", "--no-web", "--no-actor", "--mqtt-port", "0",
        "--speed", "40", "--data-dir", str(tmp_path),
    )  # fmt: skip
    opts = ServiceOptions.from_args(args)
    service = apply_service_overrides(ServiceConfig.single(load_config(env={})), args, opts)
    said: list[str] = []
    async with asyncio.timeout(180):
        status = await run_service(service, opts, announce=announce)
    assert status == 1
    assert any("client-002: stopped after an error" in s for s in said), said
    assert any("stopped after an error: client-002" in s for s in said), said
    (strap,) = first  # made once: it never failed
    assert strap.started_at is not None
    (session,) = list_sessions(tmp_path / "recordings", "client-001")
    beats = [i for i in iter_inputs(session) if getattr(i, "beats", ())]
    # every beat client-001 got after its sibling failed is in its recording
    assert len([b for b in beats if b.t >= strap.started_at]) == 10
    # its recording was opened (and closed again, honestly empty) before its strap failed
    for other in list_sessions(tmp_path / "recordings", "client-002"):
        assert not [i for i in iter_inputs(other) if getattr(i, "beats", ())]
