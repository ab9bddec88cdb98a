"""Model-based check of BleStrap's event contract with hypothesis, through real bleak and D-Bus.

Any sequence of good beats (with or without contact, with or without RR), raw garbage and link
drops must produce exactly the readings a small reference model predicts: one Notification per
packet in order, MALFORMED after each unparsable one, SIGNAL_LOST once per outage and only after
data, SIGNAL_RESTORED before the first good packet after it, contact events only on changes,
CONNECTED/BATTERY per connection, INFO once, and the "HRV unavailable" notice once.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeedback.devices.hrm import encode_heart_rate_measurement, parse_heart_rate_measurement
from biofeedback.devices.readings import DeviceEvent, HeartRateMeasurement, Notification
from biofeedback.errors import ParseError
from tests.devices.fake_bluez import FakeBlueZ, ManualClock, StrapDriver, open_strap

pytestmark = [pytest.mark.dbus]

_beat = st.tuples(
    st.just("beat"),
    st.sampled_from([True, False, None]),  # skin contact reported as
    st.integers(0, 3),  # number of RR intervals
)
_garbage = st.tuples(st.just("garbage"), st.binary(max_size=9))
_drop = st.just(("drop",))
# a strap that stops sending RR for a while (the "HRV unavailable" notice needs 10 in a row)
_no_rr_run = st.integers(1, 12).map(lambda k: [("beat", True, 0)] * k)
OPS = st.lists(
    st.one_of(
        _beat.map(lambda b: [b]), _garbage.map(lambda g: [g]), _drop.map(lambda d: [d]), _no_rr_run
    ),
    min_size=1,
    max_size=16,
).map(lambda runs: [op for run in runs for op in run])


def _payload(op: tuple[object, ...], rr_seed: int) -> bytes:
    if op[0] == "garbage":
        return bytes(op[1])  # type: ignore[arg-type]
    contact, n_rr = op[1], int(op[2])  # type: ignore[call-overload]
    m = HeartRateMeasurement(
        hr_bpm=70,
        contact_supported=contact is not None,
        contact_detected=bool(contact),
        energy_expended_kj=None,
        rr_1024=tuple(800 + (rr_seed + k) % 50 for k in range(n_rr)),
    )
    return encode_heart_rate_measurement(m)


class Model:
    """What BleStrap should emit, as a list of labels ("N" = a notification, else event kinds)."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.signal = "never"
        self.contact: bool | None = None
        self.no_rr = 0
        self.no_rr_said = False
        self.info_said = False

    def connect(self) -> None:
        self.out.append("connected")
        if not self.info_said:
            self.info_said = True
            self.out.append("info")
        self.out.append("battery")

    def packet(self, payload: bytes) -> None:
        try:
            m = parse_heart_rate_measurement(payload)
        except ParseError:
            self.out += ["N", "malformed"]
            return
        if self.signal == "lost":
            self.out.append("signal_restored")
        self.signal = "ok"
        if m.contact is False and self.contact is not False:
            self.out.append("contact_lost")
        elif m.contact is True and self.contact is False:
            self.out.append("contact_restored")
        if m.contact is not None:
            self.contact = m.contact
        if not self.no_rr_said:
            if m.rr_1024:
                self.no_rr = 0
            else:
                self.no_rr += 1
                if self.no_rr >= 10:
                    self.no_rr_said = True
                    self.out.append("info")
        self.out.append("N")

    def drop(self) -> None:
        if self.signal == "ok":
            self.signal = "lost"
            self.out.append("signal_lost")


def _label(r: object) -> str:
    return "N" if isinstance(r, Notification) else str(r.kind)  # type: ignore[attr-defined]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_any_sequence_of_packets_and_drops_keeps_the_contract(
    fake_bluez: FakeBlueZ, ops: list[tuple[object, ...]]
) -> None:
    # one fake strap for all examples (the fixture is per test, not per example)
    fake = fake_bluez.straps[0] if fake_bluez.straps else fake_bluez.add_strap()
    fake.restore()
    ops = [*ops, ("beat", True, 1)]  # a last good packet flushes every earlier reading
    model = Model()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        model.connect()
        for i, op in enumerate(ops):
            if op[0] == "drop":
                fake.drop()
                fake.restore()
                model.drop()
                await drv.until_subscribed()
                model.connect()
                continue
            payload = _payload(op, i)
            clock.advance(0.8 if op[0] == "beat" else 0.1)
            assert await drv.send(payload)
            model.packet(payload)
    assert [_label(r) for r in got.items] == model.out
    notes = [r for r in got.items if isinstance(r, Notification)]
    assert [n.payload for n in notes] == [s.payload for s in drv.sent]
    for n in notes:
        assert (n.error is None) == (n.measurement is not None)
        if n.measurement is not None:
            assert len(n.beats) == len(n.measurement.rr_1024)
            assert all(b.contact == n.measurement.contact for b in n.beats)
    # beat times only move forward within a connection (the timer restarts on reconnect)
    segment: list[float] = []
    for r in got.items:
        if isinstance(r, DeviceEvent) and r.kind == "connected":
            segment = []
        elif isinstance(r, Notification):
            segment += [b.t for b in r.beats]
            assert all(b > a for a, b in itertools.pairwise(segment))
