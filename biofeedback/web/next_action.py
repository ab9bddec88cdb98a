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
  with which button.

Step indices in payloads are 0-based; every text here numbers steps from 1.
"""

from __future__ import annotations

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
    """{who, text}: who acts next (therapist, client, system, nobody), and with which button."""
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
            "signal_lost": "Paused: the strap signal was lost. Check the strap.",
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
