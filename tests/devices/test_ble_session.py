"""A strap dropping mid-exposure, from bleak's BlueZ backend to the session's decisions.

Real chain, in process: fake BlueZ -> bleak -> BleStrap -> the lead's SessionCore (signal pipeline
and exposure state machine). The session calibrates on the strap's beats, the therapist offers a
step, the client consents; then the strap drops: the exposure must pause on the signal loss, the
gap must reach the session, and when the strap returns the session must stay paused (it never
resumes exposure without the client's consent).
"""

from __future__ import annotations

import pytest

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind, Notification
from biofeedback.exposure.messages import (
    Consent,
    OfferStep,
    PauseReason,
    Role,
    SessionState,
    Tick,
)
from biofeedback.exposure.protocol import load_protocol
from biofeedback.service.core import SessionCore
from biofeedback.signal.measures import SignalConfig
from tests.devices.fake_bluez import Collector, FakeBlueZ, ManualClock, StrapDriver, open_strap
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.dbus]

PROTOCOL = REPO_ROOT / "config" / "protocols" / "demo.toml"


class Feeder:
    """Feeds the collected readings to the core in order, with a Tick every session second."""

    def __init__(self, core: SessionCore, got: Collector, start_t: float) -> None:
        self.core, self.got = core, got
        self.fed = 0
        self.next_tick = start_t + 1.0
        self.session_events: list[object] = []

    def _feed(self, item: object) -> None:
        out = self.core.feed(item)  # type: ignore[arg-type]
        self.session_events += out.events

    def catch_up(self, now: float) -> None:
        items = self.got.items
        while self.fed < len(items):
            item = items[self.fed]
            t = item.t
            while self.next_tick <= t:
                self._feed(Tick(self.next_tick))
                self.next_tick += 1.0
            self._feed(item)
            self.fed += 1
        while self.next_tick <= now:
            self._feed(Tick(self.next_tick))
            self.next_tick += 1.0

    @property
    def state(self) -> SessionState:
        return self.core.snapshot.state


async def test_drop_mid_exposure_pauses_and_the_return_does_not_resume(
    fake_bluez: FakeBlueZ,
) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    core = SessionCore(
        client_id="ble-session",
        protocol=load_protocol(PROTOCOL),
        signal_config=SignalConfig(calibration_s=70.0, calibration_min_beats=50),
        start_t=clock.now(),
    )
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got, seed=11)
        feed = Feeder(core, got, clock.now())
        await drv.until_subscribed()
        await drv.beats(80)  # resting calibration on the strap's own beats
        feed.catch_up(clock.now())
        assert core.snapshot.calibrated, core.snapshot.calibration_detail

        clock.advance(1.0)
        feed.catch_up(clock.now())
        core.feed(OfferStep(clock.now(), Role.THERAPIST, command_id="offer-1"))
        assert feed.state is SessionState.STEP_OFFERED
        core.feed(Consent(clock.now(), Role.CLIENT, command_id="consent-1"))
        assert feed.state is SessionState.EXPOSING

        await drv.beats(20)
        feed.catch_up(clock.now())
        assert feed.state is SessionState.EXPOSING  # a calm strap does not pause anything

        fake.drop()
        await got.wait_for(lambda items: any(_lost(i) for i in items))
        feed.catch_up(clock.now())
        snap = core.snapshot
        assert snap.state is SessionState.PAUSED
        assert snap.pause_reason is PauseReason.SIGNAL_LOST
        assert not snap.monitoring_ok

        await drv.pass_time(20)
        fake.restore()
        await drv.until_subscribed()
        await drv.beats(30)
        feed.catch_up(clock.now())

    restored = [i for i in got.items if _restored(i)]
    assert len(restored) == 1
    assert restored[0].gap_s is not None
    assert restored[0].gap_s >= 20
    snap = core.snapshot
    assert snap.monitoring_ok
    # signal back, client calm: the session may offer to resume, never resume by itself
    assert snap.state is not SessionState.EXPOSING
    assert snap.state in {
        SessionState.PAUSED,
        SessionState.GROUNDING,
        SessionState.RECOVERED,
        SessionState.RESUME_OFFERED,
    }
    assert sum(isinstance(i, Notification) for i in got.items) == len(drv.sent)


def _lost(i: object) -> bool:
    return isinstance(i, DeviceEvent) and i.kind is DeviceEventKind.SIGNAL_LOST


def _restored(i: object) -> bool:
    return isinstance(i, DeviceEvent) and i.kind is DeviceEventKind.SIGNAL_RESTORED
