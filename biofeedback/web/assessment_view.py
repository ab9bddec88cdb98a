"""The resonance assessment's `assessment` payload as the pages draw it (docs/resonance.md).

Every field checked and bounded: a malformed payload draws as "nothing known", never as a wrong
number. The client page uses the state, the consent text and the rate chosen; the therapist's
detail page also the plan (to draw the pacer of every block), the per-block scores and the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biofeedback.web.views import JsonDict, num, payload_time, text

STATES = ("ready", "offered", "running", "stopped", "done")
MAX_BLOCKS = 20


def _block(b: Any) -> JsonDict | None:
    if not isinstance(b, Mapping):
        return None
    rate = num(b.get("rate_bpm"), 0.5, 30.0)
    if rate is None:
        return None
    notes = b.get("notes")
    return {
        "rate_bpm": rate,
        "start_t": num(b.get("start_t"), 0.0),
        "end_t": num(b.get("end_t"), 0.0),
        "peak_to_trough_bpm": num(b.get("peak_to_trough_bpm"), 0.0, 200.0),
        "lf_peak_hz": num(b.get("lf_peak_hz"), 0.0, 1.0),
        "lf_peak_ms2_hz": num(b.get("lf_peak_ms2_hz"), 0.0),
        "phase_deg": num(b.get("phase_deg"), -180.0, 180.0),
        "coherence": num(b.get("coherence"), 0.0, 1.0),
        "smoothness": num(b.get("smoothness"), 0.0, 1.0),
        "quality": num(b.get("quality"), 0.0, 1.0),
        "usable": b.get("usable") is True,
        "notes": [n[:200] for n in notes[:5] if isinstance(n, str)]
        if isinstance(notes, list)
        else [],
    }


def _blocks(raw: Any) -> list[JsonDict]:
    if not isinstance(raw, list):
        return []
    out = [_block(b) for b in raw[:MAX_BLOCKS]]
    return [b for b in out if b is not None]


def assessment_view(payload: Mapping[str, Any]) -> JsonDict:
    """What the pages need of one `assessment` payload."""
    state = payload.get("state")
    result = payload.get("result")
    res: JsonDict | None = None
    if isinstance(result, Mapping):
        combined = result.get("combined")
        res = {
            "rate_bpm": num(result.get("rate_bpm"), 0.5, 30.0),
            "complete": result.get("complete") is True,
            "combined": [num(c, 0.0, 1.0) for c in combined[:MAX_BLOCKS]]
            if isinstance(combined, list)
            else [],
            "blocks": _blocks(result.get("blocks")),
        }
    rates = payload.get("rates_bpm")
    pacer = payload.get("pacer")
    return {
        "t": payload_time(payload),
        "state": state if state in STATES else None,
        "started_t": num(payload.get("started_t"), 0.0),
        "block_index": num(payload.get("block_index"), 0.0, MAX_BLOCKS),
        "phase": payload.get("phase") if payload.get("phase") in ("block", "rest") else None,
        "phase_ends_t": num(payload.get("phase_ends_t"), 0.0),
        "remaining_s": num(payload.get("remaining_s"), 0.0, 3600.0),
        "rate_bpm": num(payload.get("rate_bpm"), 0.5, 30.0),
        "rates_bpm": [r for r in (num(x, 0.5, 30.0) for x in rates[:MAX_BLOCKS]) if r is not None]
        if isinstance(rates, list)
        else [],
        "block_s": num(payload.get("block_s"), 0.0, 3600.0),
        "rest_s": num(payload.get("rest_s"), 0.0, 3600.0),
        "inhale_share": num(payload.get("inhale_share"), 0.0, 1.0),
        "consent_needed": text(payload.get("consent_needed"), 500),
        "pacing": isinstance(pacer, Mapping) and pacer.get("active") is True,
        "blocks": _blocks(payload.get("blocks")),
        "result": res,
        "chosen_rate_bpm": num(payload.get("chosen_rate_bpm"), 0.5, 30.0),
    }
