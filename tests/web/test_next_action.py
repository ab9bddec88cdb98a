"""The therapist's words (biofeedback/web/next_action.py) against the real session (issue 12).

The Offer button's label must say what the service will do with it. Random walks through a real
`ExposureSession` check, after every input, that `offer_action` (computed from the session
payload the dashboard receives) predicts the session's answer to an `offer_step` without a step:
the same kind (step or resume) and the same step, or a refusal when the button is disabled. Every
state gets a "next" line in words that names who acts, and no raw state id leaks into the text.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    ExposureSession,
    OfferStep,
    Pause,
    Recalibrate,
    Role,
    SessionOptions,
    SessionState,
    SignalLost,
    SignalRestored,
    Tick,
)
from biofeedback.service import payloads
from biofeedback.web import next_action, views
from tests.exposure.helpers import protocol

C, T = Role.CLIENT, Role.THERAPIST
RAW_IDS = re.compile(r"step_offered|resume_offered|step_complete|signal_lost|step_too_long|_")


def view_of(s: ExposureSession) -> dict[str, Any]:
    return views.session_view(payloads.session_snapshot("c-1", s.snapshot()))


def check(s: ExposureSession) -> dict[str, Any]:
    """offer_action predicts the session's answer; the next line is words."""
    v = view_of(s)
    action = v["offer_action"]
    trial = copy.deepcopy(s)
    t = s.snapshot().t
    try:
        events = trial.handle(OfferStep(t, T))
    except CommandError:
        answered: tuple[str | None, int | None] = (None, None)
    else:
        offers = [
            e
            for e in events
            if e.kind == "transition"
            and e.to_state in (SessionState.STEP_OFFERED, SessionState.RESUME_OFFERED)
        ]
        # an offer made and withdrawn at once (arousal held high) is still the offer made
        answered = (
            ("resume" if offers[0].to_state is SessionState.RESUME_OFFERED else "step"),
            offers[0].values["step"],
        )
    state = v["state"]
    if state in ("step_offered", "resume_offered"):
        # the service would renew the offer; the button waits while the client answers
        assert not action["enabled"]
    else:
        assert (action["kind"], action["step"]) == answered, (state, action, answered)
    if action["enabled"]:
        word = "Offer to resume" if action["kind"] == "resume" else "Offer"
        assert action["label"].startswith(f"{word} step {action['step'] + 1}")
    else:
        assert action["why"]
    nxt = v["next"]
    assert nxt["who"] in ("therapist", "client", "system", "nobody")
    assert nxt["text"]
    assert not RAW_IDS.search(nxt["text"]), nxt
    assert nxt["short"]
    assert not RAW_IDS.search(nxt["short"]), nxt
    assert not RAW_IDS.search(v["state_label"]), v["state_label"]
    if action["enabled"] and nxt["who"] == "therapist" and state != "exposing":
        assert action["label"] in nxt["text"]  # the line names the button by its label
    return v


ACTIONS = st.sampled_from(
    [
        "calm",
        "high",
        "tick",
        "client_pause",
        "therapist_pause",
        "offer",
        "offer_step_2",
        "consent",
        "decline",
        "complete",
        "end",
        "cal_ok",
        "cal_fail",
        "recalibrate",
        "lost",
        "restored",
        # runs of samples one second apart, so dwell (5 s) and recovery (10 s) are reached
        "held_high",
        "held_calm",
        "held_calm",
        "start_step",
        "start_step",
        "start_step",
        "complete",
        "offer",
    ]
)
SINGLE = {
    "calm": lambda t: ArousalSample(t, 20.0),
    "high": lambda t: ArousalSample(t, 90.0),
    "tick": lambda t: Tick(t),
    "client_pause": lambda t: Pause(t, C),
    "therapist_pause": lambda t: Pause(t, T),
    "offer": lambda t: OfferStep(t, T),
    "offer_step_2": lambda t: OfferStep(t, T, step=1),
    "consent": lambda t: Consent(t, C),
    "decline": lambda t: Decline(t, C),
    "complete": lambda t: CompleteStep(t, T),
    "end": lambda t: EndSession(t, T),
    "cal_ok": lambda t: CalibrationDone(t, True),
    "cal_fail": lambda t: CalibrationDone(t, False, "too few clean beats"),
    "recalibrate": lambda t: Recalibrate(t, T),
    "lost": lambda t: SignalLost(t),
    "restored": lambda t: SignalRestored(t),
}
RUNS = {
    "held_high": ["high"] * 7,
    "held_calm": ["calm"] * 12,
    "start_step": ["calm", "offer", "calm", "consent"],
}


def apply(s: ExposureSession, action: str, t: float) -> float:
    """Apply one action (or run) from time t; returns the time after it."""
    for i, name in enumerate(RUNS.get(action, [action])):
        with contextlib.suppress(CommandError):
            s.handle(SINGLE[name](t + i))
    return t + len(RUNS.get(action, [action]))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    auto=st.booleans(),
    calibrated=st.booleans(),
    steps=st.lists(st.tuples(ACTIONS, st.sampled_from([0.5, 1.0, 3.0, 6.0])), max_size=60),
)
def test_the_offer_button_says_what_the_session_will_do(
    auto: bool, calibrated: bool, steps: list[tuple[str, float]]
) -> None:
    proto = protocol()
    if auto:
        proto = replace(proto, options=SessionOptions(auto_offer=True))
    s = ExposureSession(proto, t=0.0, client_id="c-1", needs_calibration=not calibrated)
    t = 0.0
    SEEN.add(check(s)["state"])
    for action, dt in steps:
        t = apply(s, action, t + dt)
        SEEN.add(check(s)["state"])


SEEN: set[str] = set()


def test_the_walks_reach_every_state() -> None:
    """The random walks above are worth something only if they reach every state."""
    if not SEEN:
        test_the_offer_button_says_what_the_session_will_do()
    assert {s.value for s in SessionState} <= SEEN


def walk(*actions: str) -> ExposureSession:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    t = 0.0
    for a in actions:
        t = apply(s, a, t + 1.0)
    return s


READY = ("calm", "cal_ok")
EXPOSING = (*READY, "calm", "offer", "calm", "consent")


def test_the_lines_of_the_issue() -> None:
    """The examples in issue 12, word for word."""
    v = check(walk(*READY, "offer", "decline"))
    assert v["state"] == "ready"
    assert v["offer_action"]["label"] == "Offer step 1"
    v = check(walk(*EXPOSING, "client_pause"))
    assert {k: v["next"][k] for k in ("who", "text")} == {
        "who": "therapist",
        "text": "Client paused. When they're calm, offer to resume: Offer to resume step 1",
    }
    v = check(walk(*READY, "offer_step_2"))
    assert {k: v["next"][k] for k in ("who", "text")} == {
        "who": "client",
        "text": "Waiting for the client's answer to: step 2",
    }
    assert v["state_label"] == "Step 2 offered"


def test_arousal_then_client_is_shown_whole() -> None:
    s = walk(*EXPOSING)
    t = s.snapshot().t
    for k in range(8):  # held above upper for the dwell: paused on arousal, grounding
        s.handle(ArousalSample(t + 1 + k, 90.0))
    s.handle(Pause(t + 10, C))
    v = check(s)
    assert v["state"] == "grounding"
    assert v["pause_reasons"] == ["arousal", "client"]
    assert v["state_label"] == "Grounding — paused: arousal, then client"
    assert v["next"]["who"] == "therapist"
    assert v["next"]["text"].startswith("Client paused. The client is grounding (paced breathing)")
    assert v["next"]["text"].endswith("offer to resume: Offer to resume step 1")


def test_every_state_has_words() -> None:
    assert set(next_action.STATE_WORDS) == {s.value for s in SessionState}
    for state in SessionState:
        label = next_action.state_label({"state": state.value, "step_index": 1})
        assert not RAW_IDS.search(label), label
        line = next_action.next_line({"state": state.value, "step_index": 1, "steps": []})
        assert line["text"]
        assert not RAW_IDS.search(line["text"]), line


def test_a_client_ready_request_is_the_next_line() -> None:
    s = walk(*EXPOSING, "client_pause")
    payload = payloads.session_snapshot("c-1", s.snapshot())
    payload.update(client_ready=True, client_ready_t=payload["t"])
    v = views.session_view(payload)
    assert v["client_ready"] is True
    assert {k: v["next"][k] for k in ("who", "text")} == {
        "who": "therapist",
        "text": "The client says they're ready to continue. If you agree, offer: "
        "Offer to resume step 1",
    }


def test_failed_calibration_offers_without_it() -> None:
    v = check(walk("calm", "cal_fail"))
    assert v["state"] == "calibrating"
    assert v["offer_action"]["label"] == "Offer step 1 without calibration"
    v = check(walk("calm"))
    assert not v["offer_action"]["enabled"]
    assert v["next"]["who"] == "system"


def test_old_payloads_without_pause_reasons_still_read() -> None:
    v = views.session_view(
        {"v": 1, "t": 1.0, "client": "c", "state": "paused", "pause_reason": "client"}
    )
    assert v["pause_reasons"] == ["client"]
    assert v["state_label"] == "Paused — client"
    junk = views.session_view({"v": 1, "t": 1.0, "client": "c", "state": 7, "steps": "x"})
    assert junk["next"]["text"]
    assert junk["offer_action"]["enabled"] is False


def test_timeline_rows_are_words_with_steps_from_one() -> None:
    """Every event of a session that goes through every kind of moment, as the page shows it."""
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    t = 0.0
    events = []

    def go(*names: str) -> None:
        nonlocal t
        for name in names:
            t += 1.0
            with contextlib.suppress(CommandError):
                events.extend(s.handle(SINGLE[name](t)))

    go("calm", "cal_ok", "calm", "offer_step_2", "decline", "calm", "offer_step_2", "calm")
    go("consent", *["high"] * 7, "client_pause", *["calm"] * 12, "offer", "calm", "consent")
    go("complete", "lost", "restored", "end", "end")
    rows = [views.event_view(payloads.session_event("c-1", e)) for e in events]
    kinds = {r["kind"] for r in rows}
    assert {"transition", "checkin_due", "pause_acknowledged", "monitoring"} <= kinds
    for r in rows:
        for field in ("what", "change", "why"):
            assert not RAW_IDS.search(r[field]), (field, r)
        step = r["values"].get("step")
        if isinstance(step, int):
            shown = f"{r['what']} {r['why']}"
            # numbered from 1, and no other number for it
            assert {int(n) for n in re.findall(r"(?i)step (\d+)", shown)} == {step + 1}, r
    offered = [r for r in rows if r["what"] == "Step 2 offered"]
    assert offered
    assert offered[0]["change"] == "Ready → Step offered"
    assert any(r["what"] == "Client said not yet" for r in rows)
    assert any(r["what"] == "Paused on high arousal" for r in rows)
    assert any("earlier: arousal" in r["why"] for r in rows)


def test_device_errors_and_their_fix_reach_the_page() -> None:
    from biofeedback.devices.readings import DeviceEvent, DeviceEventKind

    e = DeviceEvent(
        5.0,
        "Polar H10",
        DeviceEventKind.ERROR,
        detail="Bluetooth is not available: bluetoothd (BlueZ) is not running",
        hint="start it with `sudo systemctl start bluetooth`",
    )
    row = views.event_view(payloads.device_event("c-1", e))
    assert row["what"] == "Strap problem"
    assert row["why"].startswith("Bluetooth is not available")
    assert row["hint"] == "start it with `sudo systemctl start bluetooth`"
    tracker = payloads.StatusTracker("c-1")
    status = views.status_view(tracker.update(e))
    assert status["device_error"] == e.detail
    assert status["device_hint"] == e.hint
