"""The hub and its views: real service payloads in, page-ready state out, junk refused cleanly."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.clock import ScaledClock
from biofeedback.devices.readings import DeviceEvent, DeviceEventKind
from biofeedback.errors import CommandError
from biofeedback.exposure.messages import ArousalSample, Consent, OfferStep, Role, Tick
from biofeedback.exposure.protocol import load_protocol
from biofeedback.exposure.session import ExposureSession
from biofeedback.service import payloads
from biofeedback.service.runner import SessionRunner
from biofeedback.signal.measures import Arousal, ArousalBasis
from biofeedback.web import next_action, views
from biofeedback.web.attention import Attention
from biofeedback.web.hub import MOMENT_FIELDS, Hub, HubLimits, validate_command
from tests.support import REPO_ROOT

T0 = 1_700_000_000.0
DEMO_PROTOCOL = REPO_ROOT / "config" / "protocols" / "demo.toml"


def ingest(hub: Hub, kind: str, body: dict[str, Any], client: str = "c01") -> bool:
    return hub.ingest(f"biofeedback/v1/{client}/{kind}", json.dumps(body).encode())


def arousal(t: float, value: float | None) -> dict[str, Any]:
    basis = ArousalBasis.HR_HRV if value is not None else ArousalBasis.UNKNOWN
    return payloads.arousal("c01", Arousal(t, value, 0.9, value, value, basis))


# ---- real session payloads --------------------------------------------------------------------


def test_real_session_snapshots_and_events_become_page_state() -> None:
    hub = Hub()
    session = ExposureSession(
        load_protocol(DEMO_PROTOCOL), t=T0, client_id="c01", needs_calibration=False
    )
    events = []
    t = T0
    for _ in range(5):
        t += 1.0
        events += session.handle(ArousalSample(t, 30.0))
        events += session.handle(Tick(t))
    if session.snapshot().state.value != "step_offered":  # demo protocol offers by itself
        events += session.handle(OfferStep(t, Role.THERAPIST))
    for ev in events:
        assert ingest(hub, "event", payloads.session_event("c01", ev))
        if ev.kind.startswith("checkin"):
            assert ingest(hub, "checkin", payloads.session_event("c01", ev))
    snap = session.snapshot()
    assert ingest(hub, "session", payloads.session_snapshot("c01", snap))
    state = hub.client("c01")
    assert state is not None
    assert state.session is not None
    view = state.session
    assert view["state"] == "step_offered"
    assert view["consent_needed"] is True
    assert view["consent_for"] == "step"
    assert "Imagine the situation" in (view["consent_text"] or "")
    assert view["step_title"] == "Imagine the situation"
    assert [s["title"] for s in view["steps"]][:2] == [
        "Imagine the situation",
        "Look at a photograph",
    ]
    assert view["thresholds"]["upper"] == 60.0
    assert view["step_anchors"] == [[0, "calm"], [50, "uneasy"], [100, "worst"]]
    assert view["thresholds"]["lower"] == 40.0
    assert state.events
    assert state.events[-1]["to_state"] == "step_offered"
    assert state.spans[-1]["state"] == "step_offered"

    t += 1.0
    new = session.handle(Consent(t, Role.CLIENT))
    for ev in new:
        ingest(hub, "event", payloads.session_event("c01", ev))
        if ev.kind.startswith("checkin"):
            ingest(hub, "checkin", payloads.session_event("c01", ev))
    ingest(hub, "session", payloads.session_snapshot("c01", session.snapshot()))
    view = hub.client("c01").session  # type: ignore[union-attr]
    assert view is not None
    assert view["consent_needed"] is False
    # the demo protocol asks for SUDS at step start: the client screen must offer the slider
    assert view["checkin_due"] is True
    assert view["checkin_prompt"] == "step_start"
    assert hub.client("c01").checkin["due"] is True  # type: ignore[union-attr]


def test_guidance_payload_gives_the_pacer_schedule() -> None:
    from biofeedback.exposure.messages import BreathingPattern, GroundingTechnique, Guidance

    g = Guidance(
        T0, GroundingTechnique.PACED_BREATHING, BreathingPattern(4.0, 1.0, 6.0, 0.0), "Slowly."
    )
    view = views.guidance_view(payloads.guidance("c01", T0 + 3, g))
    assert view["active"] is True
    assert view["start_t"] == T0
    assert view["phases"] == [["inhale", 4.0], ["hold", 1.0], ["exhale", 6.0]]
    assert views.guidance_view(payloads.guidance("c01", T0, None))["active"] is False


def test_status_and_device_events() -> None:
    hub = Hub()
    ingest(
        hub, "status", payloads.online_status("c01", T0, battery_pct=55, device="H10", signal=True)
    )
    s = hub.client("c01").summary()  # type: ignore[union-attr]
    assert (s["online"], s["battery"], s["device"]) == (True, 55.0, "H10")
    ingest(hub, "status", payloads.offline_status("c01", T0 + 5))
    state = hub.client("c01")
    assert state is not None
    assert state.summary()["online"] is False
    assert state.points[-1] == {"t": T0 + 5, "hr": None, "rmssd": None, "arousal": None}


# ---- history and gaps ------------------------------------------------------------------------


def test_history_keeps_five_minutes_and_a_bounded_number_of_points() -> None:
    hub = Hub(HubLimits(history_s=300.0, max_points=250))
    for k in range(400):
        ingest(hub, "arousal", arousal(T0 + k, 50.0))
    pts = hub.client("c01").points  # type: ignore[union-attr]
    assert len(pts) == 250
    assert pts[-1]["t"] == T0 + 399
    hub = Hub(HubLimits(history_s=300.0))
    for k in range(400):
        ingest(hub, "arousal", arousal(T0 + k, 50.0))
    pts = hub.client("c01").points  # type: ignore[union-attr]
    assert pts[0]["t"] >= T0 + 399 - 300


def test_unknown_arousal_is_kept_as_a_gap_not_dropped() -> None:
    hub = Hub()
    ingest(hub, "arousal", arousal(T0, 40.0))
    ingest(hub, "arousal", arousal(T0 + 1, None))
    ingest(hub, "arousal", arousal(T0 + 2, 42.0))
    assert [p["arousal"] for p in hub.client("c01").points] == [40.0, None, 42.0]  # type: ignore[union-attr]


# ---- junk --------------------------------------------------------------------------------------


def test_junk_is_refused_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    caplog.set_level(logging.WARNING, logger="biofeedback.web.hub")
    assert not hub.ingest("biofeedback/v1/c01/metrics", b"\xff\xfe")
    assert not hub.ingest("biofeedback/v1/c01/metrics", b"[1, 2]")
    assert not hub.ingest("biofeedback/v1/c01/metrics", b'{"v": 2, "t": 1}')
    assert not hub.ingest("biofeedback/v1/c01/metrics", b'{"v": 1}')
    assert not hub.ingest("other/topic", b"{}")
    assert not hub.ingest("biofeedback/v1/bad id/metrics", b"{}")
    assert hub.stats["rejected"] == 6
    text = caplog.text
    assert "not JSON" in text
    assert "not an object" in text
    assert "schema version 2" in text
    assert "no time stamp" in text
    assert "not in the biofeedback/v1 tree" in text
    assert hub.clients() == []


def test_client_count_is_bounded() -> None:
    hub = Hub(HubLimits(max_clients=3))
    for i in range(5):
        ingest(hub, "arousal", arousal(T0, 1.0), client=f"c{i}")
    assert hub.clients() == ["c0", "c1", "c2"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=10,
)
KEYS = [
    "t",
    "v",
    "value",
    "hr_bpm",
    "short",
    "quality",
    "state",
    "steps",
    "step_index",
    "thresholds",
    "start_t",
    "breathing",
    "online",
    "battery_pct",
    "consent_needed",
    "checkin_due",
    "suds",
    "values",
    "kind",
    "id",
    "ok",
    "to_state",
    "from_state",
]
payload_dicts = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(
    body=payload_dicts,
    kind=st.sampled_from(
        [
            "status",
            "beat",
            "metrics",
            "arousal",
            "session",
            "guidance",
            "event",
            "checkin",
            "reply",
            "cmd",
        ]
    ),
)
def test_any_json_object_is_handled_without_exceptions(body: dict[str, Any], kind: str) -> None:
    hub = Hub()
    hub.ingest(f"biofeedback/v1/c01/{kind}", json.dumps(body).encode())
    state = hub.client("c01")
    if state is not None:
        # whatever came in, what goes to the browser is valid JSON (no NaN, no objects)
        json.dumps(state.snapshot(), allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_handled_without_exceptions(raw: bytes) -> None:
    Hub().ingest("biofeedback/v1/c01/session", raw)


# ---- commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "cmd", "args", "error"),
    [
        ("client", "adjust_thresholds", {"upper": 80}, "not allowed for role 'client'"),
        ("client", "end", {}, "not allowed"),
        ("therapist", "consent", {}, "not allowed for role 'therapist'"),
        ("therapist", "suds", {"value": 5}, "not allowed"),
        ("system", "pause", {}, "may not send commands"),
        ("therapist", "adjust_thresholds", {}, "at least one"),
        ("therapist", "adjust_thresholds", {"upper": 40, "lower": 60}, "must be below"),
        ("therapist", "adjust_thresholds", {"upper": "high"}, "must be a number"),
        ("therapist", "adjust_thresholds", {"upper": 101}, "0 to 100"),
        ("therapist", "offer_step", {"step": 1.5}, "integer"),
        ("therapist", "offer_step", {"step": True}, "integer"),
        ("client", "suds", {}, "required"),
        ("client", "suds", {"value": 50, "extra": 1}, "unknown argument"),
        ("client", "choose_grounding", {"technique": "run away"}, "technique must be one of"),
        ("client", "pause", {"note": 5}, "note must be text"),
        ("client", "pause", [], "must be an object"),
        ("client", 7, {}, "not allowed"),
    ],
)
def test_commands_are_checked_for_role_and_arguments(
    role: str, cmd: Any, args: Any, error: str
) -> None:
    with pytest.raises(CommandError, match=error):
        validate_command(role, cmd, args)


@pytest.mark.parametrize(
    ("role", "cmd", "args"),
    [
        ("client", "pause", {}),
        ("client", "consent", None),
        ("client", "suds", {"value": 0}),
        ("client", "choose_grounding", {"technique": "sensory_5_4_3_2_1"}),
        ("therapist", "offer_step", {"step": 2}),
        ("therapist", "adjust_thresholds", {"upper": 75, "lower": 50.5, "dwell_s": 8}),
        ("therapist", "end", {}),
    ],
)
def test_valid_commands_match_the_service_schema(role: str, cmd: str, args: Any) -> None:
    checked = validate_command(role, cmd, args)
    payloads.validate(
        "command", {"v": 1, "id": "web-1", "t": T0, "role": role, "cmd": cmd, "args": checked}
    )


# ---- fan-out -----------------------------------------------------------------------------------


async def test_slow_subscriber_is_cut_off_not_buffered_forever() -> None:
    hub = Hub(HubLimits(queue_size=10, overview_every_s=0.0))
    with hub.subscribe("therapist", "c01") as slow, hub.subscribe("therapist", None) as overview:
        for k in range(30):
            ingest(hub, "arousal", arousal(T0 + k, 50.0))
            await asyncio.sleep(0)  # a turn of the loop: the overview's frame goes out
        assert slow.overflowed
        assert slow.queue.get_nowait() is None  # the writer sees the end marker and closes
        assert overview.overflowed  # the overview's frames (one per turn) count too
    assert hub.subscriber_count == 0


def frames(sub: Any) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        out.append(json.loads(sub.queue.get_nowait()))
    return out


def session_body(t: float, state: str, reason: str | None = None) -> dict[str, Any]:
    paused = state in views.PAUSED_STATES
    return {"v": 1, "t": t, "client": "c01", "state": state, "paused": paused,
            "pause_reason": reason if paused else None}  # fmt: skip


async def test_overview_gets_one_frame_per_loop_turn_with_each_clients_newest_row() -> None:
    hub = Hub()
    with hub.subscribe("therapist", None) as overview:
        for k, value in enumerate((10.0, 20.0, 30.0)):
            ingest(hub, "arousal", arousal(T0 + k, value))
            ingest(hub, "arousal", arousal(T0 + k, value + 1), client="c02")
        assert overview.queue.empty()  # nothing is sent before the turn ends
        await asyncio.sleep(0)
        (frame,) = frames(overview)
        assert frame["type"] == "summaries"
        assert [(r["client"], r["arousal"]) for r in frame["summaries"]] == [
            ("c01", 30.0),
            ("c02", 31.0),
        ]
        assert frame["summaries"][0] == hub.client("c01").summary()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        assert frames(overview) == []  # nothing changed: nothing sent


async def test_samples_reach_the_overview_at_most_every_interval_and_a_pause_at_once() -> None:
    # The interval is long against the 50 ms looks inside it: a loaded machine that stalls the
    # loop past the interval would let the flush timer run before the test resumes.
    every_s = 1.0
    hub = Hub(HubLimits(overview_every_s=every_s))
    with hub.subscribe("therapist", None) as overview:
        ingest(hub, "arousal", arousal(T0, 10.0))
        await asyncio.sleep(0)
        assert [r["arousal"] for f in frames(overview) for r in f["summaries"]] == [10.0]
        ingest(hub, "arousal", arousal(T0 + 1, 20.0))
        ingest(hub, "arousal", arousal(T0 + 2, 30.0))
        await asyncio.sleep(0.05)
        assert frames(overview) == []  # inside the interval: the samples wait
        ingest(hub, "session", session_body(T0 + 3, "paused", "arousal"))
        await asyncio.sleep(0)  # a pause does not wait for the interval, and takes them along
        (frame,) = frames(overview)
        assert [(r["state"], r["arousal"]) for r in frame["summaries"]] == [("paused", 30.0)]
        ingest(hub, "arousal", arousal(T0 + 4, 40.0))
        t_sample = asyncio.get_running_loop().time()
        await asyncio.sleep(0.05)
        assert frames(overview) == []
        while overview.queue.empty():  # the sample goes out once the interval is over
            assert asyncio.get_running_loop().time() - t_sample < 30.0, "sample never sent"
            await asyncio.sleep(0.02)
        # not before the interval that began with the pause's frame
        assert asyncio.get_running_loop().time() - t_sample >= 0.9 * every_s
        (frame,) = frames(overview)
        assert [(r["state"], r["arousal"]) for r in frame["summaries"]] == [("paused", 40.0)]


async def test_every_pause_and_resume_in_one_turn_reaches_the_overview_in_order() -> None:
    hub = Hub()
    with hub.subscribe("therapist", None) as overview:
        ingest(hub, "session", session_body(T0, "exposing"))
        ingest(hub, "arousal", arousal(T0 + 1, 70.0))
        ingest(hub, "session", session_body(T0 + 2, "paused", "arousal"))
        ingest(hub, "arousal", arousal(T0 + 3, 71.0))
        ingest(hub, "session", session_body(T0 + 4, "exposing"))
        ingest(hub, "arousal", arousal(T0 + 5, 50.0))
        await asyncio.sleep(0)
        (frame,) = frames(overview)
        rows = frame["summaries"]
        assert [(r["state"], r["paused"]) for r in rows] == [
            ("exposing", False),
            ("paused", True),
            ("exposing", False),
        ]
        # each row as it stood when its state began; the last one the newest
        assert [r["arousal"] for r in rows] == [None, 70.0, 50.0]
        assert rows[-1] == hub.client("c01").summary()  # type: ignore[union-attr]


KINDS = st.sampled_from(["arousal", "metrics", "session", "status"])
STATES = st.sampled_from(["exposing", "paused", "grounding", "ready"])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["c01", "c02"]), KINDS, STATES, st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
async def test_batched_overview_keeps_every_state_change_once_in_order_and_the_newest_row(
    steps: list[tuple[str, str, str, bool, bool]],
) -> None:
    """Against a hub used outside an event loop (one row per message, the unbatched oracle):
    per client and turn, the (state, paused, online) changes are the same, in the same order,
    none twice in a row, and the last row sent equals the oracle's last row."""
    per_turn = HubLimits(overview_every_s=0.0)
    hub, oracle = Hub(per_turn, wall=lambda: 1.0), Hub(per_turn, wall=lambda: 1.0)
    sent: dict[str, list[dict[str, Any]]] = {"c01": [], "c02": []}
    want: dict[str, list[dict[str, Any]]] = {"c01": [], "c02": []}
    projection = ("state", "paused", "online")

    def changes(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for r in rows:
            key = tuple(r[k] for k in projection)
            if not out or out[-1] != key:
                out.append(key)
        return out

    bodies: list[tuple[str, str, dict[str, Any]]] = []
    turns: list[tuple[int, dict[str, list[dict[str, Any]]]]] = []  # (steps so far, rows sent)
    with hub.subscribe("therapist", None) as overview:
        for k, (client, kind, state, online, end_turn) in enumerate(steps):
            t = T0 + k
            body: dict[str, Any]
            if kind == "arousal":
                body = payloads.arousal(
                    client, Arousal(t, 30.0 + k, 0.9, 1, 1, ArousalBasis.HR_HRV)
                )
            elif kind == "metrics":
                body = {"v": 1, "t": t, "client": client, "hr_bpm": 60.0 + k}
            elif kind == "session":
                body = {**session_body(t, state, "client"), "client": client}
            else:
                body = {"v": 1, "t": t, "client": client, "online": online}
            bodies.append((client, kind, body))
            ingest(hub, kind, body, client)  # no await: all in this turn of the loop
            if end_turn or k == len(steps) - 1:
                await asyncio.sleep(0)
                for frame in frames(overview):
                    turn: dict[str, list[dict[str, Any]]] = {"c01": [], "c02": []}
                    for row in frame["summaries"]:
                        turn[row["client"]].append(row)
                    for c, rows in turn.items():
                        for a, b in itertools.pairwise(rows):
                            assert hub_moment(a) != hub_moment(b)  # merged when nothing moved
                        sent[c] += rows
                turns.append((k + 1, {c: list(rows) for c, rows in sent.items()}))

    def run_oracle() -> list[dict[str, Any]]:
        # a worker thread has no event loop, so this hub sends one row per message
        with oracle.subscribe("therapist", None) as o:
            out = []
            for client, kind, body in bodies:
                ingest(oracle, kind, body, client)
                (frame,) = frames(o)
                (row,) = frame["summaries"]
                out.append(row)
            return out

    oracle_rows = await asyncio.to_thread(run_oracle)
    # a sample (arousal, metrics) changes no state: the page must see the row of every other
    # message (a state as it began) and each client's last row of every turn (its newest values)
    ends = {n for n, _ in turns}
    shown = [
        kind not in ("arousal", "metrics")
        or not any(bodies[j][0] == client for j in range(k + 1, min(e for e in ends if e > k)))
        for k, (client, kind, _) in enumerate(bodies)
    ]
    for n, sent_then in turns:
        for c in want:
            want[c] = [r for k, r in enumerate(oracle_rows[:n]) if r["client"] == c and shown[k]]
            assert changes(sent_then[c]) == changes(want[c])
            if want[c]:
                assert sent_then[c][-1] == want[c][-1]


def hub_moment(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in MOMENT_FIELDS)


async def test_clients_only_hear_about_themselves() -> None:
    hub = Hub()
    with hub.subscribe("client", "c01") as mine:
        ingest(hub, "arousal", arousal(T0, 10.0), client="c02")
        assert mine.queue.empty()
        ingest(hub, "arousal", arousal(T0, 11.0), client="c01")
        msg = json.loads(await asyncio.wait_for(mine.queue.get(), 1) or "")
        assert msg["point"]["arousal"] == 11.0


def test_static_dir_exists() -> None:
    from biofeedback.web.routes import STATIC_DIR

    assert isinstance(STATIC_DIR, Path)
    assert (STATIC_DIR / "client.html").is_file()


def test_session_clock_speed_is_estimated_from_live_samples() -> None:
    wall = [1000.0]
    hub = Hub(wall=lambda: wall[0])
    # an old retained session must not make the clock look fast
    ingest(hub, "session", {"v": 1, "t": T0 - 600, "client": "c01", "state": "ready"})
    for k in range(11):
        wall[0] = 1000.0 + k * 0.5
        ingest(hub, "arousal", arousal(T0 + k * 2.5, 40.0))  # 5x faster than the wall clock
    clock = hub.client("c01").clock()  # type: ignore[union-attr]
    assert clock["speed"] == pytest.approx(5.0)
    assert clock["t"] == T0 + 25.0
    assert clock["rx"] == 1005.0
    hub = Hub(wall=lambda: wall[0])
    for k in range(11):
        wall[0] = 2000.0 + k
        ingest(hub, "arousal", arousal(T0 + k * 1.01, 40.0))  # publish jitter, real time
    assert hub.client("c01").clock()["speed"] == 1.0  # type: ignore[union-attr]
    # an older sample arriving late does not move the anchor back
    ingest(hub, "arousal", arousal(T0, 40.0))
    assert hub.client("c01").clock()["t"] == T0 + 10 * 1.01  # type: ignore[union-attr]


def test_last_will_gap_starts_at_the_newest_data() -> None:
    hub = Hub()
    ingest(hub, "arousal", arousal(T0 + 100, 40.0))
    # the will was registered when the service connected, so it carries that older time
    ingest(hub, "status", payloads.offline_status("c01", T0))
    state = hub.client("c01")
    assert state is not None
    assert state.points[-1] == {"t": T0 + 100, "hr": None, "rmssd": None, "arousal": None}
    assert state.summary()["online"] is False


# ---- strap problems on the overview row (issue 14) -------------------------------------------


class _Strap:
    name = "Polar H10 A"


def _feed(hub: Hub, pub: Any, client: str = "c01") -> None:
    for kind, body in pub.sent:
        assert ingest(hub, str(kind), body, client), kind


def _ready(hub: Hub, t: float, client: str = "c01") -> None:
    session = ExposureSession(
        load_protocol(DEMO_PROTOCOL), t=t, client_id=client, needs_calibration=False
    )
    body = payloads.session_snapshot(client, session.snapshot())
    body["monitoring_ok"] = True  # beats are arriving: the session's own line is "offer"
    assert ingest(hub, "session", body, client)


def _back(hub: Hub, kind: DeviceEventKind, t: float, client: str = "c01") -> None:
    back = DeviceEvent(t, _Strap.name, kind)
    assert ingest(hub, "event", payloads.device_event(client, back), client)
    assert ingest(hub, "status", payloads.StatusTracker(client).update(back), client)


def test_a_failed_strap_names_itself_on_the_overview_row_until_it_is_back() -> None:
    from tests.app.test_clinic_service import _core
    from tests.app.test_runner import Collect

    hub = Hub()
    _ready(hub, T0)
    state = hub.client("c01")
    assert state is not None
    calm = state.summary()
    assert calm["next"]["short"] == "You: Offer step 1"
    assert (calm["attention"], calm["strap_problem"]) == (Attention.CALM, None)

    # what the real runner publishes when the strap's code raises
    pub = Collect()
    runner = SessionRunner(
        core=_core(T0, "c01"), device=None, clock=ScaledClock(1.0, start=T0 + 1), publisher=pub
    )
    runner._device_failed(_Strap(), RuntimeError("parser crashed on byte 3"))
    _feed(hub, pub)
    _ready(hub, T0 + 2)  # the session's own line alone would say "offer"
    row = state.summary()
    lead, _, short = next_action.PROBLEMS["device_failed"]
    assert row["strap_problem"] == "Strap software failed"
    assert row["next"]["text"].startswith(lead)  # the words of the client's page
    assert row["next"]["short"] == f"Strap software failed. {short}"
    assert row["next"]["who"] == "therapist"
    assert (row["attention"], row["attention_why"]) == (Attention.SIGNAL, "Strap software failed")
    # the event's own timeline row carries the very same line (one source of truth)
    failed = next(e for e in state.events if e["kind"] == "device_failed")
    assert row["next"]["text"] == failed["next"]["text"]

    # a session message or a sample leaves the problem in place: only the strap ends it
    assert ingest(hub, "arousal", arousal(T0 + 3, 30.0))
    assert state.summary()["strap_problem"] == "Strap software failed"

    _back(hub, DeviceEventKind.SIGNAL_RESTORED, T0 + 4)
    row = state.summary()
    assert row["strap_problem"] is None
    assert row["next"]["short"] == "You: Offer step 1"
    assert row["attention"] != Attention.SIGNAL


def test_a_full_adapter_names_itself_on_the_overview_row_until_the_strap_connects() -> None:
    from tests.app.test_clinic_service import refused_at_the_link_limit

    hub = Hub()
    _ready(hub, T0)
    _feed(hub, refused_at_the_link_limit("move the other clients to a second service", "c01", T0))
    _ready(hub, T0 + 2)  # the session's own line alone would say "offer"
    state = hub.client("c01")
    assert state is not None
    row = state.summary()
    lead, fix, short = next_action.PROBLEMS["adapter_link_limit"]
    assert row["strap_problem"] == "Bluetooth adapter full"
    assert row["next"]["text"] == f"{lead} {fix}"
    assert row["next"]["short"] == f"Bluetooth adapter full. {short}"
    assert (row["attention"], row["attention_why"]) == (Attention.SIGNAL, "Bluetooth adapter full")
    # the problem is worked out when it arrives, not for every row built
    calls = []
    real = next_action.strap_problem
    try:
        next_action.strap_problem = lambda *a: calls.append(a) or real(*a)  # type: ignore[assignment]
        for i in range(20):
            assert ingest(hub, "arousal", arousal(T0 + 3 + i, 30.0))
            state.summary()
    finally:
        next_action.strap_problem = real  # type: ignore[assignment]
    assert calls == []

    _back(hub, DeviceEventKind.CONNECTED, T0 + 30)
    row = state.summary()
    assert (row["strap_problem"], row["attention"]) == (None, Attention.CALM)
    assert row["next"]["short"] == "You: Offer step 1"


async def test_a_strap_problem_and_its_end_in_one_turn_both_reach_the_overview() -> None:
    from tests.app.test_clinic_service import refused_at_the_link_limit

    hub = Hub()
    _ready(hub, T0)
    with hub.subscribe("therapist", None) as overview:
        _feed(hub, refused_at_the_link_limit("use a second service", "c01", T0))
        _back(hub, DeviceEventKind.CONNECTED, T0 + 30)
        await asyncio.sleep(0)
        rows = [r for f in frames(overview) for r in f["summaries"]]
    # the moment the adapter was full is not merged away by the reconnect in the same turn
    problems = [r["strap_problem"] for r in rows]
    assert "Bluetooth adapter full" in problems
    assert problems[-1] is None


def test_an_unreachable_strap_says_its_own_fix_on_the_overview_row_until_it_connects() -> None:
    from tests.app.test_clinic_service import _core
    from tests.app.test_runner import Collect

    hub = Hub()
    _ready(hub, T0)
    pub = Collect()
    runner = SessionRunner(
        core=_core(T0, "c01"), device=None, clock=ScaledClock(1.0, start=T0), publisher=pub
    )
    runner.process(
        DeviceEvent(
            T0 + 1, _Strap.name, DeviceEventKind.ERROR, detail="no adapter", hint="start bluetoothd"
        )
    )
    _feed(hub, pub)
    _ready(hub, T0 + 2)
    state = hub.client("c01")
    assert state is not None
    row = state.summary()
    lead, _, short = next_action.PROBLEMS["error"]
    assert row["strap_problem"] == "Strap problem"
    assert row["next"]["text"] == f"{lead} Fix: start bluetoothd"
    assert row["next"]["short"] == f"Strap problem. {short}"
    assert row["attention"] == Attention.SIGNAL

    _back(hub, DeviceEventKind.CONNECTED, T0 + 5)
    row = state.summary()
    assert (row["strap_problem"], row["next"]["short"]) == (None, "You: Offer step 1")


def test_the_client_page_gets_the_strap_problem_the_overview_row_shows() -> None:
    """One rule, worked out by the hub: the client's page reads `problem` from its snapshot and
    from each status and event update, and never works it out again in the browser."""
    from tests.app.test_clinic_service import refused_at_the_link_limit

    hub = Hub()
    _ready(hub, T0)
    state = hub.client("c01")
    assert state is not None
    assert state.snapshot()["problem"] is None
    with hub.subscribe("therapist", "c01") as page:
        _feed(hub, refused_at_the_link_limit("use a second service", "c01", T0))
        strap = [
            f for f in frames(page) if f["type"] == "update" and f["kind"] in ("status", "event")
        ]
        assert "status" in [f["kind"] for f in strap]
        assert all("problem" in f for f in strap)
        shown = strap[-1]["problem"]
        assert shown == next_action.strap_problem(list(state.events), state.status)
        assert shown["what"] == state.summary()["strap_problem"] == "Bluetooth adapter full"
        assert shown["next"] == state.summary()["next"]
        assert state.snapshot()["problem"] == shown

        _back(hub, DeviceEventKind.CONNECTED, T0 + 30)
        ends = [
            f for f in frames(page) if f["type"] == "update" and f["kind"] in ("status", "event")
        ]
        # the strap's own event ends the problem, before the status that follows it says so
        assert [(f["kind"], f["problem"]) for f in ends] == [("event", None), ("status", None)]
        assert state.snapshot()["problem"] is None


def test_a_strap_back_since_the_status_ends_its_error_even_before_the_next_status() -> None:
    """The retained status's `device_error` is over once the strap connected after it, whether or
    not a newer status has arrived yet; an error after that connection is a problem again."""
    hub = Hub()
    _ready(hub, T0)
    state = hub.client("c01")
    assert state is not None
    tracker = payloads.StatusTracker("c01")

    def strap(kind: DeviceEventKind, t: float, *, status: bool) -> None:
        e = DeviceEvent(t, _Strap.name, kind, detail="no adapter", hint="start bluetoothd")
        assert ingest(hub, "event", payloads.device_event("c01", e), "c01")
        body = tracker.update(e)
        if status:
            assert ingest(hub, "status", body, "c01")

    strap(DeviceEventKind.ERROR, T0 + 1, status=True)
    assert state.summary()["strap_problem"] == "Strap problem"
    strap(DeviceEventKind.CONNECTED, T0 + 5, status=False)  # its status is late
    assert state.summary()["strap_problem"] is None
    assert state.snapshot()["problem"] is None
    strap(DeviceEventKind.ERROR, T0 + 7, status=False)  # a new error after the connection
    problem = state.snapshot()["problem"]
    assert problem is not None
    assert (problem["what"], problem["detail"]) == ("Strap problem", "no adapter")
    strap(DeviceEventKind.CONNECTED, T0 + 9, status=True)
    assert state.summary()["strap_problem"] is None
