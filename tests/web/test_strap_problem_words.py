"""Everything the service can publish about a client has words and, where the therapist must act,
a fix and a next line (biofeedback/web/next_action.py; issue 14's clinic states).

The lists come from the code itself: every session state, pause reason, transition trigger,
grounding technique and strap event kind (the StrEnums), and every event kind the session emits
and every `service_error` code the service publishes (found in the source, so a new one without
words fails here). The clinic's two strap problems, `device_failed` and `adapter_link_limit`,
are produced by the real `SessionRunner` and read through the dashboard's own `views`.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from biofeedback.clock import ScaledClock
from biofeedback.devices.readings import DeviceEvent, DeviceEventKind
from biofeedback.exposure import GroundingTechnique, PauseReason, SessionState
from biofeedback.exposure.rules import Trigger
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.web import next_action, views
from tests.app.test_clinic_service import (
    ScriptedStrap,
    refused_at_the_link_limit,
    run_straps_in_turn,
)
from tests.support import REPO_ROOT

RAW_ID = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _published_kinds() -> tuple[set[str], set[str]]:
    """(event kinds the session emits, codes the service publishes with `service_error`)."""
    emitted: set[str] = set()
    service: set[str] = set()
    for path in (REPO_ROOT / "biofeedback").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(
                node.func, ast.Attribute | ast.Name
            ):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            at = {"_emit": 0, "service_error": 2}.get(name)
            if at is None or len(node.args) <= at:
                continue
            arg = node.args[at]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                (emitted if name == "_emit" else service).add(arg.value)
    return emitted, service


def test_the_source_scan_finds_what_it_looks_for() -> None:
    emitted, service = _published_kinds()
    assert {"transition", "monitoring", "checkin_due", "client_ready"} <= emitted
    assert {"device_failed", "adapter_link_limit", "recording_failed"} <= service


def test_every_kind_the_service_publishes_has_words() -> None:
    emitted, service = _published_kinds()
    kinds = emitted | service | {k.value for k in DeviceEventKind}
    missing = sorted(k for k in kinds - {"transition"} if k not in next_action._KIND_WORDS)
    assert not missing, f"no words in next_action._KIND_WORDS for {missing}"
    # every service code but the all-clear is a problem with a fix
    assert service - {"recording_resumed"} <= set(next_action.PROBLEMS)
    assert {t.value for t in Trigger} <= set(next_action._TRIGGER_WORDS)
    assert {r.value for r in PauseReason} <= set(next_action.REASON_WORDS)
    assert {g.value for g in GroundingTechnique} <= set(next_action._TECHNIQUES)
    assert set(next_action.STATE_WORDS) == {s.value for s in SessionState}


def test_every_pause_reason_has_its_own_next_line() -> None:
    lines = set()
    for reason in PauseReason:
        s = {"state": "paused", "step_index": 0, "pause_reasons": [reason.value], "steps": []}
        line = next_action.next_line(s)
        assert line["who"] == "therapist"
        assert not line["text"].startswith("Paused. "), reason  # the generic fallback
        assert "Offer to resume step 1" in line["text"]
        lines.add(line["text"])
    assert len(lines) == len(PauseReason)


def row(payload: dict[str, Any]) -> dict[str, Any]:
    return views.event_view(payload)


async def test_a_failed_strap_from_the_real_runner_reads_as_words_with_its_fix() -> None:
    clock = ScaledClock(200.0)
    crash = RuntimeError("parser crashed")
    pub = await run_straps_in_turn(
        clock, [ScriptedStrap(clock, 3, crash), ScriptedStrap(clock, 2, None)]
    )
    (failed,) = [row(e) for e in pub.kinds(Topic.EVENT) if e.get("kind") == "device_failed"]
    assert failed["what"] == "Strap software failed"
    assert "parser crashed" in failed["why"]
    assert failed["hint"].startswith("Check the strap: check it is worn snugly")
    nxt = failed["next"]
    assert nxt["who"] == "therapist"
    assert nxt["text"].startswith("The strap's software failed: the service opens it again")
    assert "change its battery" in nxt["text"]
    assert nxt["short"] == "You: check the strap"
    words = " ".join([failed["what"], failed["hint"], nxt["text"], nxt["short"]])
    assert not RAW_ID.search(words), words
    # the beats came back: nothing else the runner published is a strap problem
    others = [row(e) for e in pub.kinds(Topic.EVENT) if e.get("kind") != "device_failed"]
    assert not [r for r in others if r["next"] is not None]


def test_an_adapter_at_its_link_limit_says_move_the_client() -> None:
    pub = refused_at_the_link_limit("move the other clients to a second service")
    rows = [row(e) for e in pub.kinds(Topic.EVENT)]
    (limit,) = [r for r in rows if r["kind"] == "adapter_link_limit"]
    assert limit["what"] == "Bluetooth adapter full"
    assert "'Polar H10 6'" in limit["why"]
    assert limit["hint"].startswith("Move the client to another adapter or another service")
    assert limit["next"]["text"] == (
        "This client's strap was refused: the Bluetooth adapter holds no more strap links. "
        "Move the client to another adapter or another service (docs/clinic.md), or switch off a "
        "strap no longer in use; this strap keeps trying and connects once a link is free."
    )
    assert limit["next"]["short"] == "You: move to another adapter"
    # the strap's own error keeps its own fix
    (error,) = [r for r in rows if r["kind"] == "error"]
    assert error["hint"] == "check the strap"
    assert error["next"]["text"] == "The strap cannot be reached. Fix: check the strap"


def test_a_strap_error_without_a_fix_gets_one_and_other_events_get_none() -> None:
    e = DeviceEvent(5.0, "H10", DeviceEventKind.ERROR, detail="strap 'H10' not found")
    r = row(payloads.device_event("c-1", e))
    assert r["hint"].startswith("Check the strap")
    assert r["next"]["text"].startswith("The strap cannot be reached. Check the strap")
    for kind in DeviceEventKind:
        if kind is not DeviceEventKind.ERROR:
            r = row(payloads.device_event("c-1", DeviceEvent(5.0, "H10", kind)))
            assert r["next"] is None, kind
    recording = row(payloads.service_error("c-1", 5.0, "recording_failed", "disk full"))
    assert recording["what"] == "Recording failed"
    assert recording["hint"].startswith("Free disk space")
    assert recording["next"] is None  # told, but it does not change who acts next
    # a session event never borrows a strap fix, even with a kind that looks like one
    session_row = row({"v": 1, "t": 5.0, "client": "c-1", "source": "session", "kind": "error"})
    assert session_row["hint"] is None
    assert session_row["next"] is None


def test_without_a_heart_signal_the_next_line_says_check_the_strap() -> None:
    base = {"step_index": None, "steps": [{"index": 0, "title": "a", "status": "pending"}]}
    for state in ("ready", "step_complete", "recovered", "paused"):
        s = {**base, "state": state, "step_index": 0, "monitoring_ok": False}
        if state in ("step_complete",):
            s["steps"] = [*s["steps"], {"index": 1, "title": "b", "status": "pending"}]
        line = next_action.next_line(s)
        assert line["who"] == "therapist"
        assert line["text"].startswith("No heart signal from the strap: check it is worn"), state
        assert "Nothing can start until the signal is back; then offer: Offer" in line["text"]
        assert line["short"] == "You: check the strap"
    gone = next_action.next_line({**base, "state": "ready", "device_connected": False})
    assert gone["text"].startswith("The strap is disconnected: check it is worn")
    # calibration waits for beats by itself; a pause for the lost signal has its own line
    calibrating = next_action.next_line({**base, "state": "calibrating", "monitoring_ok": False})
    assert calibrating["who"] == "system"
    lost = {"state": "paused", "step_index": 0, "pause_reasons": ["signal_lost"], "steps": []}
    line = next_action.next_line({**lost, "monitoring_ok": False})
    assert line["text"].startswith("Paused: the strap signal was lost. Check the strap: check")
    # with the signal, the usual line
    ok = next_action.next_line({**base, "state": "ready", "monitoring_ok": True})
    assert ok["text"] == "When the client is ready, offer: Offer step 1"


def test_docs_name_the_words() -> None:
    """docs/clinic.md tells the therapist what the page says for both clinic problems."""
    text = (REPO_ROOT / "docs" / "clinic.md").read_text(encoding="utf-8")
    for kind in ("device_failed", "adapter_link_limit"):
        assert next_action._KIND_WORDS[kind] in text, kind
