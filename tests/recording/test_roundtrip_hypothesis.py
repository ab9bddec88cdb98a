"""Property: any sequence of session inputs written to a recording reads back equal."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import (
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    HeartRateMeasurement,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.exposure.messages import (
    AdjustThresholds,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    Role,
    SudsAnswer,
    Tick,
)
from biofeedback.recording import SessionRecorder, iter_input_rows
from biofeedback.recording.schema import TABLE_BY_NAME, decode_cell, encode_cell

times = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
opt_f = st.none() | st.floats(allow_nan=False, allow_infinity=False)
text = st.text(max_size=30)  # includes tabs, newlines, backslashes, "n/a"
devices = st.sampled_from(["H10 A1", "tab\tname", "n/a", "back\\slash"])
roles = st.sampled_from(list(Role))

measurements = st.builds(
    HeartRateMeasurement,
    hr_bpm=st.integers(0, 0xFFFF),
    contact_supported=st.booleans(),
    contact_detected=st.booleans(),
    energy_expended_kj=st.none() | st.integers(0, 0xFFFF),
    rr_1024=st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
).filter(lambda m: m.contact_supported or not m.contact_detected)
payloads = measurements.map(encode_heart_rate_measurement) | st.binary(max_size=24)

raw_notifications = st.tuples(st.just("N"), devices, times, payloads)
device_events = st.builds(
    DeviceEvent,
    t=times,
    device=devices,
    kind=st.sampled_from(list(DeviceEventKind)),
    detail=text,
    battery_pct=st.none() | st.integers(0, 100),
    gap_s=opt_f,
    info=st.none() | st.builds(DeviceInfo, name=text, address=text, manufacturer=st.none() | text),
)
cid = text
commands = st.one_of(
    st.builds(Tick, t=times),
    st.builds(Pause, t=times, role=roles, note=text, command_id=cid),
    st.builds(Consent, t=times, role=roles, command_id=cid),
    st.builds(Decline, t=times, role=roles, command_id=cid),
    st.builds(OfferStep, t=times, role=roles, step=st.none() | st.integers(-5, 50), command_id=cid),
    st.builds(CompleteStep, t=times, role=roles, command_id=cid),
    st.builds(EndSession, t=times, role=roles, command_id=cid),
    st.builds(
        AdjustThresholds,
        t=times,
        role=roles,
        upper=opt_f,
        lower=opt_f,
        dwell_s=opt_f,
        recovery_s=opt_f,
        command_id=cid,
    ),
    st.builds(SudsAnswer, t=times, role=roles, value=st.integers(-(2**70), 2**70), command_id=cid),
    st.builds(
        ChooseGrounding,
        t=times,
        role=roles,
        technique=st.sampled_from(list(GroundingTechnique)),
        command_id=cid,
    ),
)


def _materialise(raw: list[Any]) -> list[Any]:
    """Turn raw notifications into Notifications timed as a live strap would time them."""
    timers: dict[str, BeatTimer] = {}
    out = []
    for r in raw:
        if isinstance(r, tuple):
            _, device, t, payload = r
            out.append(timers.setdefault(device, BeatTimer(device)).notification(t, payload))
        else:
            out.append(r)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_notifications | device_events | commands, max_size=25))
def test_any_input_sequence_round_trips(raw: list[Any]) -> None:
    items = _materialise(raw)
    with tempfile.TemporaryDirectory() as d:
        with SessionRecorder(Path(d), client_id="h", meta={}) as rec:
            for seq, item in enumerate(items, start=1):
                rec.input(item, seq)
        back = list(iter_input_rows(rec.path))
    assert [s for s, _ in back] == list(range(1, len(items) + 1))
    assert [i for _, i in back] == items


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_every_cell_round_trips(data: st.DataObject) -> None:
    for spec in TABLE_BY_NAME.values():
        for col in spec.columns:
            strat: st.SearchStrategy[Any] = {
                "float": st.floats(allow_nan=False),
                "int": st.integers(),
                "bool": st.booleans(),
                "text": st.text(),
                "hex": st.binary(),
                "json": st.dictionaries(st.text(), st.integers() | st.text() | st.none()),
            }[str(col.type)]
            v = data.draw(st.none() | strat)
            cell = encode_cell(col, v)
            assert "\t" not in cell
            assert "\n" not in cell
            assert "\r" not in cell
            assert decode_cell(col, cell) == v
