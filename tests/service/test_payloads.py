"""Every payload encoder's output validates against its JSON Schema, built from real seam objects
(a real SessionSnapshot from a real protocol, real BeatUpdates, device events, guidance)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind, DeviceInfo, Notification
from biofeedback.errors import ParseError
from biofeedback.exposure import ExposureSession, load_protocol
from biofeedback.exposure.guidance import make_guidance
from biofeedback.exposure.messages import (
    ArousalSample,
    BreathingPattern,
    CalibrationDone,
    Consent,
    GroundingTechnique,
    Guidance,
    OfferStep,
    Pause,
    Role,
    SessionEvent,
    SessionState,
    Tick,
)
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.signal.measures import (
    Arousal,
    ArousalBasis,
    BeatUpdate,
    CleanBeat,
    FrequencyDomain,
    SignalQuality,
    TimeDomain,
)
from tests.support import REPO_ROOT

CLIENT = "c-7f3a"


def _update(*, rejected: bool = False, nan: bool = False) -> BeatUpdate:
    beat = (
        None
        if rejected
        else CleanBeat(
            t=100.5, rr_ms=812.0, raw_rr_ms=402.0, corrected=True, artifact="extra", contact=True
        )
    )
    td = TimeDomain(
        window_s=30.0,
        n=37,
        mean_nn_ms=810.0,
        hr_bpm=74.07,
        rmssd_ms=float("nan") if nan else 42.0,
        sdnn_ms=51.0,
        pnn50_pct=20.0,
    )
    return BeatUpdate(
        t=100.5,
        beat=beat,
        rejected="rr 90 ms below 250 ms" if rejected else None,
        hr_bpm=None if rejected else 73.9,
        short=td,
        long=None if rejected else td,
        frequency=None
        if rejected
        else FrequencyDomain(
            t=100.5,
            window_s=120.0,
            lf_ms2=900.0,
            hf_ms2=450.0,
            lf_hf=2.0,
            breathing_rate_bpm=6.1,
            coherence=0.71,
            paced_hz=0.1,
        ),
        quality=SignalQuality(
            score=0.9,
            corrected_share=0.03,
            rejected_share=0.0,
            contact=True,
            hrv_available=True,
        ),
        arousal=Arousal(
            t=100.5,
            value=None if rejected else 63.2,
            confidence=0.8,
            fast=70.0,
            slow=55.0,
            basis=ArousalBasis.UNKNOWN if rejected else ArousalBasis.HR_HRV,
            reason="low quality" if rejected else None,
        ),
        revised=()
        if rejected
        else (
            CleanBeat(
                t=99.7,
                rr_ms=800.0,
                raw_rr_ms=1200.0,
                corrected=True,
                artifact="missed",
                contact=True,
            ),
        ),
    )


@pytest.mark.parametrize("rejected", [False, True])
def test_update_payloads_validate(rejected: bool) -> None:
    pairs = payloads.update_payloads(CLIENT, _update(rejected=rejected))
    assert [k for k, _ in pairs] == [Topic.BEAT, Topic.METRICS, Topic.AROUSAL]
    for kind, p in pairs:
        payloads.validate(kind.value, p)
        assert p["v"] == 1
        assert p["t"] == 100.5
        assert p["client"] == CLIENT
        json.dumps(p, allow_nan=False)
    beat = pairs[0][1]
    if rejected:
        assert beat["rr_ms"] is None
        assert beat["rejected"].startswith("rr 90")
    else:
        assert (beat["rr_ms"], beat["raw_rr_ms"], beat["artifact"]) == (812.0, 402.0, "extra")
        assert beat["revised"][0]["artifact"] == "missed"


def test_nan_becomes_null_not_invalid_json() -> None:
    p = payloads.metrics(CLIENT, _update(nan=True))
    assert p["short"]["rmssd_ms"] is None
    payloads.validate("metrics", p)
    assert payloads.jsonable(float("inf")) is None
    assert payloads.jsonable(math.nan) is None


def _session() -> ExposureSession:
    proto = load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml")
    return ExposureSession(proto, t=0.0, client_id=CLIENT, needs_calibration=False)


def test_session_snapshot_and_events_validate_through_a_real_session() -> None:
    """Drive a real session through exposure, an arousal pause, grounding and a check-in."""
    s = _session()
    events: list[SessionEvent] = []
    snaps = [s.snapshot()]
    t = 0.0

    def run(until: float, value: float) -> None:
        nonlocal t
        while t < until:
            events.extend(s.handle(ArousalSample(t, value)))
            snaps.append(s.snapshot())
            t += 1.0

    run(3, 40.0)
    events.extend(s.handle(CalibrationDone(t, ok=True)))
    events.extend(s.handle(OfferStep(t, Role.THERAPIST, command_id="o1")))
    events.extend(s.handle(Consent(t, Role.CLIENT, command_id="c1")))
    run(40, 95.0)  # sustained high arousal: the session pauses and grounds
    run(120, 20.0)  # recovery
    events.extend(s.handle(Pause(t, Role.CLIENT, note="enough", command_id="p1")))
    events.extend(s.handle(Tick(t + 1)))
    snaps.append(s.snapshot())
    kinds = {e.kind for e in events}
    assert "transition" in kinds
    states = {sn.state for sn in snaps}
    assert SessionState.EXPOSING in states
    assert states & {SessionState.PAUSED, SessionState.GROUNDING}
    for ev in events:
        p = payloads.session_event(CLIENT, ev)
        payloads.validate("event", p)
        if ev.kind.startswith("checkin"):
            payloads.validate("checkin", p)
    for sn in snaps:
        p = payloads.session_snapshot(CLIENT, sn)
        payloads.validate("session", p)
        assert p["state"] == sn.state.value
        assert p["t"] == sn.t
        json.dumps(p, allow_nan=False)
        payloads.validate("guidance", payloads.guidance(CLIENT, sn.t, sn.guidance))
    assert any(sn.guidance is not None for sn in snaps)


def test_guidance_payloads_validate() -> None:
    g = Guidance(
        start_t=50.0,
        technique=GroundingTechnique.PACED_BREATHING,
        breathing=BreathingPattern(4.0, 0.0, 6.0, 0.0),
        prompt="Breathe with the circle.",
    )
    p = payloads.guidance(CLIENT, 51.0, g)
    payloads.validate("guidance", p)
    assert p["breathing"]["rate_bpm"] == 6.0
    off = payloads.guidance(CLIENT, 52.0, None)
    payloads.validate("guidance", off)
    assert off["active"] is False
    real = make_guidance(GroundingTechnique.SENSORY_54321, 60.0, BreathingPattern())
    payloads.validate("guidance", payloads.guidance(CLIENT, 60.0, real))


def test_device_and_service_events_validate() -> None:
    info = DeviceInfo(name="Polar H10", address="AA:BB", manufacturer="Polar", model="H10")
    for e in (
        DeviceEvent(t=1.0, device="Polar H10", kind=DeviceEventKind.CONNECTED, info=info),
        DeviceEvent(t=2.0, device="Polar H10", kind=DeviceEventKind.BATTERY, battery_pct=80),
        DeviceEvent(t=3.0, device="Polar H10", kind=DeviceEventKind.SIGNAL_RESTORED, gap_s=4.5),
    ):
        payloads.validate("event", payloads.device_event(CLIENT, e))
        payloads.validate("status", payloads.StatusTracker(CLIENT).update(e))
    bad = Notification(
        t=4.0, device="x", payload=b"\x10", measurement=None, beats=(), error="short"
    )
    m = payloads.malformed(CLIENT, bad)
    payloads.validate("event", m)
    assert m["payload_hex"] == "10"
    payloads.validate("event", payloads.service_error(CLIENT, 5.0, "recording_failed", "disk full"))


def test_status_tracker_keeps_every_fact() -> None:
    tr = payloads.StatusTracker(CLIENT)
    tr.update(DeviceEvent(t=1.0, device="s", kind=DeviceEventKind.BATTERY, battery_pct=55))
    p = tr.update(DeviceEvent(t=2.0, device="s", kind=DeviceEventKind.CONTACT_LOST))
    payloads.validate("status", p)
    assert (p["battery_pct"], p["contact"], p["online"]) == (55, False, True)
    off = payloads.offline_status(CLIENT, 3.0)
    payloads.validate("status", off)
    assert off["online"] is False


def test_validate_names_the_bad_field() -> None:
    p = payloads.arousal(CLIENT, _update().arousal)
    p["value"] = 140
    with pytest.raises(ParseError, match="arousal payload invalid at value"):
        payloads.validate("arousal", p)
    with pytest.raises(ParseError, match="at client"):
        payloads.validate(
            "reply", {"v": 1, "t": 1, "client": "no spaces", "id": None, "ok": True, "error": None}
        )
    with pytest.raises(ValueError, match="unknown payload kind"):
        payloads.validate("nope", {})
    ev = payloads.session_event(
        CLIENT,
        SessionEvent(
            1, 1.0, "transition", Role.SYSTEM, SessionState.READY, SessionState.READY, "x"
        ),
    )
    ev["to_state"] = "flying"
    with pytest.raises(ParseError):
        payloads.validate("event", ev)


def test_schema_files_are_valid_and_shipped() -> None:
    import jsonschema

    folder = Path(payloads.__file__).parent / "schemas"
    names = {p.stem for p in folder.glob("*.json")}
    assert names == set(payloads.KINDS)
    for kind in payloads.KINDS:
        s = payloads.schema(kind)
        jsonschema.validators.validator_for(s).check_schema(s)
        assert s["title"] == kind


# Values from the signal's documented domains, plus the non-finite floats a numeric routine can
# produce: the encoders must always give valid JSON that matches the schema.
def _maybe(st_value: st.SearchStrategy[float]) -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), st_value, st.sampled_from([math.nan, math.inf, -math.inf]))


pct = st.floats(0, 100)
unit = st.floats(0, 1)
pos = st.floats(0, 1e6)


@st.composite
def beat_updates(draw: st.DrawFn) -> BeatUpdate:
    t = draw(st.floats(0, 2e9))
    td = st.builds(
        TimeDomain,
        window_s=pos,
        n=st.integers(0, 10_000),
        mean_nn_ms=pos,
        hr_bpm=pos,
        rmssd_ms=_maybe(pos),
        sdnn_ms=_maybe(pos),
        pnn50_pct=_maybe(pct),
    )
    beat = st.builds(
        CleanBeat,
        t=st.just(t),
        rr_ms=pos,
        raw_rr_ms=pos,
        corrected=st.booleans(),
        artifact=st.sampled_from([None, "ectopic", "missed", "extra", "longshort"]),
        contact=st.sampled_from([None, True, False]),
    )
    return BeatUpdate(
        t=t,
        beat=draw(st.one_of(st.none(), beat)),
        rejected=draw(st.one_of(st.none(), st.text(max_size=30))),
        hr_bpm=draw(_maybe(pos)),
        short=draw(st.one_of(st.none(), td)),
        long=draw(st.one_of(st.none(), td)),
        frequency=draw(
            st.one_of(
                st.none(),
                st.builds(
                    FrequencyDomain,
                    t=st.just(t),
                    window_s=pos,
                    lf_ms2=_maybe(pos),
                    hf_ms2=_maybe(pos),
                    lf_hf=_maybe(pos),
                    breathing_rate_bpm=_maybe(pos),
                    coherence=_maybe(unit),
                    paced_hz=unit,
                ),
            )
        ),
        quality=draw(
            st.builds(
                SignalQuality,
                score=unit,
                corrected_share=unit,
                rejected_share=unit,
                contact=st.sampled_from([None, True, False]),
                hrv_available=st.booleans(),
                reason=st.one_of(st.none(), st.text(max_size=30)),
            )
        ),
        arousal=draw(
            st.builds(
                Arousal,
                t=st.just(t),
                value=_maybe(pct),
                confidence=unit,
                fast=_maybe(pct),
                slow=_maybe(pct),
                basis=st.sampled_from(list(ArousalBasis)),
                reason=st.one_of(st.none(), st.text(max_size=30)),
            )
        ),
        revised=tuple(draw(st.lists(beat, max_size=3))),
    )


@settings(max_examples=200, deadline=None)
@given(beat_updates())
def test_update_encoders_always_give_schema_valid_json(u: BeatUpdate) -> None:
    for kind, p in payloads.update_payloads(CLIENT, u):
        text = json.dumps(p, allow_nan=False)  # never NaN/Infinity on the wire
        payloads.validate(kind.value, json.loads(text))
