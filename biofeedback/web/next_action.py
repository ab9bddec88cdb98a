"""What the therapist's page says about a session: human words, and what comes next.

Pure functions of a session view (`views.session_view`), so the words are tested in Python and the
page only draws them:

- `state_label`: the state in words, with the step numbered from 1 ("Exposing: step 2",
  "Grounding — paused: arousal, then client"); never a raw id like `step_offered`.
- `offer_action`: what the Offer button does now, worked out exactly as the session would answer
  an `offer_step` command without a step (`ExposureSession._offer_target`): offer a step, offer to
  resume the paused step, or nothing (with the reason). Its label names it ("Offer step 2",
  "Offer to resume step 1"), so the button never says one thing and does another.
- `next_line`: one line for every state: who acts next (therapist, client, or the system), and
  with which button. Outside calibration, a session with no heart signal says to check the strap
  first: nothing can start until it is back.
- `event_words`: a timeline row in words; for what the strap or the service reports that the
  therapist must act on (`PROBLEMS`: a strap whose software failed, an adapter that holds
  no more links, a recording that fails, ...) also the fix and the next line while it lasts.

Step indices in payloads are 0-based; every text here numbers steps from 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JsonDict = dict[str, Any]

#: Session states in words a therapist reads at a glance (docs/dashboard.md).
STATE_WORDS: dict[str, str] = {
    "calibrating": "Calibrating",
    "ready": "Ready",
    "step_offered": "Step offered",
    "exposing": "Exposing",
    "paused": "Paused",
    "grounding": "Grounding",
    "recovered": "Recovered",
    "resume_offered": "Resume offered",
    "step_complete": "Step complete",
    "debrief": "Debrief",
    "ended": "Ended",
}
#: Why a step is paused, in words.
REASON_WORDS: dict[str, str] = {
    "arousal": "arousal",
    "client": "client",
    "therapist": "therapist",
    "signal_lost": "signal lost",
    "step_too_long": "step too long",
}
_PAUSED = frozenset({"paused", "grounding", "recovered", "resume_offered"})
_TECHNIQUES = {
    "paced_breathing": "paced breathing",
    "sensory_5_4_3_2_1": "5-4-3-2-1 senses",
    "cognitive_check": "a thinking check",
    "self_compassion": "self-compassion",
}


def words(raw: str | None, table: dict[str, str]) -> str:
    """A raw id in words: from the table, else the id with spaces (never the underscores)."""
    if raw is None:
        return "unknown"
    return table.get(raw, raw.replace("_", " "))


def pause_text(reasons: list[str]) -> str:
    """Every reason of a pause, oldest first: "arousal, then client"."""
    return ", then ".join(words(r, REASON_WORDS) for r in reasons)


def _step_no(index: int | None) -> str:
    return "the step" if index is None else f"step {index + 1}"


def state_label(s: JsonDict) -> str:
    """The state in words, with its step and, while paused, every reason of the pause."""
    state = s.get("state")
    base = words(state, STATE_WORDS)
    index = s.get("step_index")
    step = _step_no(index)
    if state in ("exposing", "step_offered", "step_complete") and index is not None:
        base = {
            "exposing": f"Exposing: {step}",
            "step_offered": f"{step.capitalize()} offered",
            "step_complete": f"{step.capitalize()} complete",
        }[state]
    elif state == "resume_offered" and index is not None:
        base = f"Resume of {step} offered"
    if state in _PAUSED and s.get("pause_reasons"):
        head = "paused" if state != "paused" else ""
        why = pause_text(s["pause_reasons"])
        return f"{base} — {head + ': ' if head else ''}{why}"
    return base


def next_pending(s: JsonDict) -> int | None:
    """The first step not completed (what an offer without a step would offer)."""
    for step in s.get("steps") or []:
        if step.get("status") not in ("completed", "done"):
            return int(step["index"])
    return None


def offer_action(s: JsonDict) -> JsonDict:
    """What pressing Offer does now: {kind: "step"|"resume"|None, step, label, enabled, why}.

    Mirrors the session's answer to `offer_step` without a step: refused during exposure,
    debrief, the end and a running calibration (unless it failed); in a paused state it offers to
    resume the paused step; otherwise the first step not yet completed. While the client is
    answering an offer the button waits (Pause withdraws an offer).
    """
    state = s.get("state")
    step = s.get("step_index")

    def off(why: str, label: str = "Offer next step") -> JsonDict:
        return {"kind": None, "step": None, "label": label, "enabled": False, "why": why}

    if state is None:
        return off("no session state has arrived yet")
    if state == "exposing":
        return off("a step is running: pause it or mark it complete first")
    if state == "debrief":
        return off("the session is in debrief")
    if state == "ended":
        return off("the session has ended")
    if state == "calibrating" and not s.get("calibration_failed"):
        return off("calibration is still running")
    if s.get("recalibrating") and state != "calibrating":
        return off("a fresh calibration is running: offer once it has finished")
    if state in ("step_offered", "resume_offered"):
        what = "resume " + _step_no(step) if state == "resume_offered" else _step_no(step)
        return off(f"the client is answering the offer of {what}; Pause withdraws it")
    if state in _PAUSED:
        if step is None:
            return off("no paused step is known yet")
        return {
            "kind": "resume",
            "step": step,
            "label": f"Offer to resume {_step_no(step)}",
            "enabled": True,
            "why": None,
        }
    nxt = next_pending(s)
    if nxt is None:
        if not s.get("steps"):
            return off("no agenda has arrived yet")
        return off("every step is complete: end the session to debrief")
    label = f"Offer {_step_no(nxt)}"
    if state == "calibrating":
        label += " without calibration"
    return {"kind": "step", "step": nxt, "label": label, "enabled": True, "why": None}


def next_line(s: JsonDict) -> JsonDict:
    """{who, text, short}: who acts next (therapist, client, system, nobody), with which button;
    `short` is the overview's few words ("You: Offer to resume step 1")."""
    line = _next_line(s)
    line.setdefault("short", _short(s, line))
    return line


# States whose next move is the therapist's offer: without a heart signal the client's yes would be
# refused ("monitoring is lost ... Nothing has started"), so the strap comes first.
_OFFER_STATES = frozenset({"ready", "step_complete", "recovered", "paused"})
CHECK_STRAP = (
    "check it is worn snugly with moistened electrodes, switched on, charged and in range, or "
    "reconnect it"
)


def _no_signal(s: JsonDict, button: str, offer: JsonDict) -> JsonDict | None:
    """The line while the strap sends nothing (None when it does, or it does not matter now)."""
    if s.get("state") not in _OFFER_STATES or s.get("client_ready"):
        return None
    disconnected = s.get("device_connected") is False
    if not disconnected and s.get("monitoring_ok") is not False:
        return None
    if s.get("state") == "paused" and (s.get("pause_reasons") or [None])[-1] == "signal_lost":
        return None  # its own line says so
    what = "The strap is disconnected" if disconnected else "No heart signal from the strap"
    then = f": {button}" if offer["enabled"] else "."
    return {
        "who": "therapist",
        "text": f"{what}: {CHECK_STRAP}. Nothing can start until the signal is back; "
        f"then offer{then}",
        "short": "You: check the strap",
    }


def _short(s: JsonDict, line: JsonDict) -> str:
    state = s.get("state")
    offer = offer_action(s)
    step = _step_no(s.get("step_index"))
    if s.get("client_ready") and offer["enabled"]:
        return f"Client is ready. You: {offer['label']}"
    if line["who"] == "therapist":
        if state == "exposing":
            return f"{step.capitalize()} running"
        if offer["enabled"]:
            return f"You: {offer['label']}"
        return "You: End session" if state in ("ready", "step_complete", "debrief") else "You"
    if line["who"] == "client":
        return f"Client: answering {'resume ' if state == 'resume_offered' else ''}{step}"
    if line["who"] == "system":
        return "Calibrating" if state == "calibrating" or s.get("recalibrating") else "Automatic"
    return "Nothing to do"


def _next_line(s: JsonDict) -> JsonDict:
    state = s.get("state")
    offer = offer_action(s)
    button = offer["label"]
    step = _step_no(s.get("step_index"))
    reasons = s.get("pause_reasons") or []
    last = reasons[-1] if reasons else None

    def who(actor: str, line: str) -> JsonDict:
        return {"who": actor, "text": line}

    if state is None:
        return who("nobody", "Waiting for the session to report its state.")
    no_signal = _no_signal(s, button, offer)
    if no_signal is not None:
        return no_signal
    if s.get("recalibrating") and state not in ("calibrating", "exposing"):
        return who(
            "system", "A fresh calibration is running: the client sits quietly. Offers wait."
        )
    if state == "calibrating":
        if s.get("calibration_failed"):
            return who(
                "therapist",
                "Calibration failed; the service tries again. You may go on without automatic "
                f"pausing: {button}",
            )
        return who("system", "Measuring the client's resting rhythm. Nothing to do until then.")
    if state == "ready":
        if not offer["enabled"]:
            return who("therapist", "Every step is done: End session to debrief.")
        return who("therapist", f"When the client is ready, offer: {button}")
    if state == "step_offered":
        return who("client", f"Waiting for the client's answer to: {step}")
    if state == "resume_offered":
        return who("client", f"Waiting for the client's answer to: resume {step}")
    if state == "exposing":
        return who(
            "therapist",
            f"{step.capitalize()} is running. When it is done: Step complete. To stop: Pause.",
        )
    if state in ("paused", "grounding", "recovered"):
        if s.get("client_ready"):
            return who(
                "therapist",
                f"The client says they're ready to continue. If you agree, offer: {button}",
            )
        if state == "recovered":
            return who("therapist", f"Recovered. When the client is ready, offer: {button}")
        if state == "grounding":
            technique = words(s.get("technique"), _TECHNIQUES) if s.get("technique") else ""
            doing = f"The client is grounding ({technique})" if technique else "Grounding"
            if last == "client":
                return who(
                    "therapist",
                    f"Client paused. {doing}. When they're calm, offer to resume: {button}",
                )
            return who(
                "client",
                f"{doing}; recovery is being watched. When they're calm, offer to resume: {button}",
            )
        lead = {
            "client": "Client paused.",
            "therapist": "You paused.",
            "arousal": "Paused on high arousal.",
            "signal_lost": f"Paused: the strap signal was lost. Check the strap: {CHECK_STRAP}.",
            "step_too_long": "Paused: the step ran its longest continuous time.",
        }.get(last or "", "Paused.")
        return who("therapist", f"{lead} When they're calm, offer to resume: {button}")
    if state == "step_complete":
        if not offer["enabled"]:
            return who(
                "therapist", f"{step.capitalize()} complete. Every step is done: End session."
            )
        return who("therapist", f"{step.capitalize()} complete. When the client is ready: {button}")
    if state == "debrief":
        return who("therapist", "Debrief with the client, then End session to close it.")
    if state == "ended":
        return who("nobody", "The session has ended.")
    return who("therapist", f"State {words(state, STATE_WORDS)}.")


# ---- the event timeline, in words ------------------------------------------------------------

_TRIGGER_WORDS: dict[str, str] = {
    "calibration_ok": "Calibrated",
    "offer_step": "{Step} offered",
    "offer_resume": "Resume of {step} offered",
    "consent": "Client said yes: {step}",
    "decline": "Client said not yet",
    "pause": "Paused by the {actor}",
    "arousal_high": "Paused on high arousal",
    "signal_lost": "Paused: signal lost",
    "step_too_long": "Paused: step too long",
    "start_grounding": "Grounding started",
    "choose_grounding": "Client chose grounding",
    "recovery": "Recovered",
    "complete_step": "{Step} complete",
    "planned_time_reached": "{Step} complete (planned time)",
    "all_steps_done": "Every step done",
    "end": "Session ended",
}
_KIND_WORDS: dict[str, str] = {
    # session events that are not transitions
    "pause_acknowledged": "Pause noted",
    "monitoring": "Monitoring",
    "calibration": "Calibration",
    "calibration_notice": "Calibration looked unusual",
    "checkin_due": "SUDS check-in asked",
    "checkin": "SUDS answer",
    "guidance": "Grounding",
    "thresholds": "Thresholds changed",
    "offer_waiting": "Next offer waits",
    "client_ready": "Client is ready to continue",
    # the strap
    "connected": "Strap connected",
    "signal_lost": "Strap signal lost",
    "signal_restored": "Strap signal back",
    "contact_lost": "Strap lost skin contact",
    "contact_restored": "Skin contact back",
    "battery": "Strap battery",
    "info": "Strap",
    "malformed": "Unreadable strap data",
    "ended": "Strap stopped",
    "error": "Strap problem",
    # the service
    "recording_failed": "Recording failed",
    "recording_resumed": "Recording works again",
    "device_failed": "Strap software failed",
    "adapter_link_limit": "Bluetooth adapter full",
    "assessment_not_saved": "Breathing check not saved",
}

#: Strap and service reports the therapist must act on: event kind -> (what happened, the fix,
#: the overview's few words). The fix is the timeline row's "Fix:" when the event brings none;
#: for the strap's own problems (`STRAP_PROBLEMS`) what happened and the fix are also the next
#: line until the strap connects again (docs/clinic.md: a strap that fails affects only its own
#: client; the adapter's link limit).
PROBLEMS: dict[str, tuple[str, str, str]] = {
    "device_failed": (
        "The strap's software failed: the service opens it again by itself, and the session stays "
        "paused until beats arrive.",
        f"Check the strap: {CHECK_STRAP}. If it keeps failing, change its battery or give the "
        "client another strap.",
        "You: check the strap",
    ),
    "adapter_link_limit": (
        "This client's strap was refused: the Bluetooth adapter holds no more strap links.",
        "Move the client to another adapter or another service (docs/clinic.md), or switch off a "
        "strap no longer in use; this strap keeps trying and connects once a link is free.",
        "You: move to another adapter",
    ),
    "error": (
        "The strap cannot be reached.",
        f"Check the strap: {CHECK_STRAP}.",
        "You: check the strap",
    ),
    "recording_failed": (
        "This session is not being recorded.",
        "Free disk space or fix the recording folder; the service keeps the rows it can and says "
        "when recording works again.",
        "You: recording failed",
    ),
    "assessment_not_saved": (
        "The breathing check's result did not reach the client's profile.",
        "Check the profile folder's disk; the session goes on.",
        "You: check the profile disk",
    ),
}
#: Problems of the strap (from the strap or the service): they change what comes next.
STRAP_PROBLEMS = frozenset({"device_failed", "adapter_link_limit", "error"})

# values that say nothing to a reader (sequence numbers, stamps, what the text already says)
_QUIET_VALUES = frozenset(
    {
        "input_t",
        "offer_seq",
        "last_pause_seq",
        "seq",
        "start_t",
        "paused_at",
        "title",
        "planned_s",
        "breathing",
    }
)
_VALUE_WORDS: dict[str, str] = {
    "arousal": "arousal",
    "upper": "pause above",
    "lower": "recovered below",
    "dwell_s": "dwell s",
    "recovery_s": "recovery s",
    "time_to_recover_s": "recovered after s",
    "pause_reason": "pause reason",
    "earlier_reason": "earlier",
    "exposed_s": "exposed s",
    "peak_arousal": "peak arousal",
}


def _value_text(key: str, value: Any) -> str | None:
    if key in _QUIET_VALUES:
        return None
    if key == "step":
        return _step_no(int(value)) if isinstance(value, int | float) else None
    if isinstance(value, bool):
        return key.replace("_", " ") if value else None
    if isinstance(value, int | float):
        if key.endswith(("_t", "since")) or abs(value) > 1e8:
            return None  # a time stamp: the Time column has the moment
        shown = f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        return f"{_VALUE_WORDS.get(key, key.replace('_', ' '))} {shown}"
    if isinstance(value, str) and value:
        if key in ("pause_reason", "earlier_reason"):
            value = words(value, REASON_WORDS)
        elif key in ("from", "offer", "withdrawn_offer", "prompt", "technique"):
            value = words(value, STATE_WORDS if key == "from" else {})
        return f"{_VALUE_WORDS.get(key, key.replace('_', ' '))}: {value}"
    return None


def _said(value_text: str, said: str) -> bool:
    """The reason already says it: "SUDS 30", or a value's words ("prompt: step end")."""
    _, sep, value = value_text.partition(": ")
    return value_text.casefold() in said or bool(sep and value.casefold() in said)


def problem_line(e: JsonDict) -> JsonDict | None:
    """{who, text, short}: the next line while a strap problem lasts (None: not one).

    The event's own fix comes first when it brings one (a strap's error says what it lacks)."""
    kind = e.get("kind") or ""
    source = "device" if kind == "error" else "service"
    if kind not in STRAP_PROBLEMS or e.get("source") != source:
        return None
    lead, fix, short = PROBLEMS[kind]
    hint = e.get("hint")
    if isinstance(hint, str) and hint:
        fix = f"Fix: {hint}"
    return {"who": "therapist", "text": f"{lead} {fix}", "short": short}


def event_words(e: JsonDict) -> JsonDict:
    """{what, change, why, hint, next}: a timeline row in words (steps from 1, no raw ids);
    `hint` is the fix (the event's own, else what to do about a known problem) and `next` the
    next line while a strap or service problem lasts (None for every other event)."""
    kind = e.get("kind") or ""
    values = e.get("values") or {}
    reason = e.get("reason") or ""
    step_index = values.get("step")
    step = _step_no(int(step_index)) if isinstance(step_index, int | float) else "the step"
    what = _KIND_WORDS.get(kind, words(kind, {}).capitalize() if kind else "Event")
    if e.get("source") == "device" and kind == "signal_lost":
        what = "Strap signal lost"
    elif kind == "transition":
        what = words(e.get("to_state"), STATE_WORDS)  # unless the trigger says more
        trigger, sep, rest = reason.partition(": ")
        if sep and trigger in _TRIGGER_WORDS:
            reason = rest
            what = _TRIGGER_WORDS[trigger].format(
                step=step, Step=step.capitalize(), actor=e.get("actor") or "someone"
            )
            if trigger == "end" and e.get("to_state") == "debrief":
                what = "Moved to debrief"
            if trigger == "arousal_high" and e.get("from_state") in (
                "step_offered",
                "resume_offered",
            ):
                what = "Offer withdrawn on high arousal"
    change = ""
    src, dst = e.get("from_state"), e.get("to_state")
    if src and dst and src != dst:
        change = f"{words(src, STATE_WORDS)} → {words(dst, STATE_WORDS)}"
    why = reason.replace("_", " ")
    said = why.casefold()
    shown = [
        v
        for v in (_value_text(k, x) for k, x in values.items() if k != "offer" or x != "step")
        # left out when the reason already says it ("step 2", "SUDS 30", "paced breathing")
        if v and not _said(v, said)
    ]
    if shown:
        if why.endswith(")"):  # "SUDS 30 (step end)" -> "SUDS 30 (step end; step 1)"
            why = f"{why[:-1]}; {', '.join(shown)})"
        else:
            why = f"{why} ({', '.join(shown)})" if why else ", ".join(shown)
    hint = e.get("hint") or None
    if hint is None and kind in PROBLEMS and e.get("source") in ("service", "device"):
        hint = PROBLEMS[kind][1]
    nxt = problem_line(e)
    return {"what": what, "change": change, "why": why, "hint": hint, "next": nxt}


#: Strap reports that end a strap problem: the strap is back.
STRAP_BACK = frozenset({"connected", "signal_restored"})


def strap_problem(events: Sequence[JsonDict], status: JsonDict | None) -> JsonDict | None:
    """{what, detail, hint, next}: the strap problem that lasts now, or None.

    Worked out once, by the hub, for both the overview row and the client's page (the `problem`
    of its snapshot and of its status and event updates), so the two cannot disagree. Newest
    timeline rows (`event_view`) first; the strap connecting again (or its beats coming back)
    ends it; the service's own word on the strap (`device_failed`,
    `adapter_link_limit`) is the most specific, unless a status newer than it says beats are back;
    a strap `error` lasts while the retained status carries `device_error` (unless the strap is
    back since that status), or until a status newer than it arrives. `next` is the next line
    (`problem_line`, with `short` naming the problem for the overview: "Bluetooth adapter full.
    You: move to another adapter"); it is None when only the status says it.
    """
    st = status or {}
    st_t = st.get("t")
    error: JsonDict | None = None
    found: JsonDict | None = None
    back_t: float | None = None
    for e in reversed(events):
        if e.get("source") == "device" and e.get("kind") in STRAP_BACK:
            back_t = e.get("t")
            break
        if e.get("next") and e.get("source") == "service":
            e_t = e.get("t")
            if st.get("signal") is True and st_t is not None and e_t is not None and st_t > e_t:
                break  # beats are back
            found = e
            break
        if error is None and e.get("next") and e.get("kind") == "error":
            error = e
    if found is None:
        # the strap is back since that status said its error (the status's own update may come
        # late, or not at all): the error is over
        stale = back_t is not None and st_t is not None and back_t > st_t
        if st.get("device_error") and not stale:
            what = error["what"] if error is not None else _KIND_WORDS["error"]
            return _problem(what, st["device_error"], st.get("device_hint"), error)
        if error is None:
            return None
        e_t = error.get("t")
        if st_t is not None and e_t is not None and st_t >= e_t:
            return None  # the status is newer
        found = error
    return _problem(
        found["what"], found.get("why") or found.get("reason"), found.get("hint"), found
    )


def _problem(what: str, detail: Any, hint: Any, e: JsonDict | None) -> JsonDict:
    line = None if e is None else dict(e["next"])
    if line is not None:
        line["short"] = f"{what}. {line['short']}"
    return {"what": what, "detail": detail, "hint": hint, "next": line}
