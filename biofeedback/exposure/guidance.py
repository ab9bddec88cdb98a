"""Grounding guidance: calm prompts and the paced-breathing phase schedule any screen can follow.

A breathing schedule is fully described by `Guidance.start_t` and its `BreathingPattern`: phase k
of cycle n starts at `start_t + n * period + (sum of the earlier phases)`. Every screen computes the
same phases from those two values, so the pacer on the client's tablet and on the therapist's
dashboard stay in step without streaming each phase.
"""

from __future__ import annotations

import math
from dataclasses import replace

from biofeedback.exposure.messages import BreathingPattern, GroundingTechnique, Guidance
from biofeedback.exposure.protocol import ExposureProtocol

#: The personal rates the pacer accepts (breaths/min): the assessment's range and a little beyond.
PERSONAL_RATE_RANGE = (3.0, 10.0)

PHASE_NAMES = ("inhale", "hold_in", "exhale", "hold_out")


def _breathing_prompt(p: BreathingPattern) -> str:
    parts = [f"in for {p.inhale_s:g}"]
    if p.hold_in_s > 0:
        parts.append(f"hold for {p.hold_in_s:g}")
    parts.append(f"out for {p.exhale_s:g}")
    if p.hold_out_s > 0:
        parts.append(f"rest for {p.hold_out_s:g}")
    return "Breathe with the circle: " + ", ".join(parts) + ". There is no rush."


PROMPTS: dict[GroundingTechnique, str] = {
    GroundingTechnique.SENSORY_54321: (
        "Notice 5 things you can see, 4 you can touch, 3 you can hear, 2 you can smell and 1 you "
        "can taste. Take your time with each."
    ),
    GroundingTechnique.COGNITIVE_CHECK: (
        "Where are you right now? Name the room, today's date, and one thing that tells you that "
        "you are safe here."
    ),
    GroundingTechnique.SELF_COMPASSION: (
        "This is hard, and it makes sense to feel this way. You are allowed to go at your own pace."
    ),
}


def make_guidance(
    technique: GroundingTechnique, start_t: float, breathing: BreathingPattern
) -> Guidance:
    """Guidance for `technique` from `start_t` (a breathing pattern only for paced breathing)."""
    if technique is GroundingTechnique.PACED_BREATHING:
        return Guidance(start_t, technique, breathing, _breathing_prompt(breathing))
    return Guidance(start_t, technique, None, PROMPTS[technique])


def at_rate(pattern: BreathingPattern, rate_bpm: float) -> BreathingPattern:
    """`pattern` stretched or shrunk to `rate_bpm`, every phase keeping its share of the breath
    (4/0/6/0 at 6/min becomes 4.36/0/6.55/0 at 5.5/min)."""
    lo, hi = PERSONAL_RATE_RANGE
    if not (math.isfinite(rate_bpm) and lo <= rate_bpm <= hi):
        raise ValueError(f"breathing rate must be {lo:g}..{hi:g} breaths/min, got {rate_bpm!r}")
    k = (60.0 / rate_bpm) / pattern.period_s
    return BreathingPattern(
        inhale_s=pattern.inhale_s * k,
        hold_in_s=pattern.hold_in_s * k,
        exhale_s=pattern.exhale_s * k,
        hold_out_s=pattern.hold_out_s * k,
    )


def personal_breathing(
    default: BreathingPattern,
    personal_rate_bpm: float | None,
    chosen_rate_bpm: float | None = None,
) -> BreathingPattern:
    """The pacer's pattern for a client: the rate they chose in the client view, else their
    measured resonance rate (docs/resonance.md), else the protocol's pattern as written."""
    for rate in (chosen_rate_bpm, personal_rate_bpm):
        if rate is not None:
            return at_rate(default, rate)
    return default


def with_personal_rate(
    protocol: ExposureProtocol,
    personal_rate_bpm: float | None,
    chosen_rate_bpm: float | None = None,
) -> ExposureProtocol:
    """The protocol with its paced breathing at the client's own rate (unchanged when there is
    neither a measured nor a chosen rate). The session then guides at that rate by default."""
    b = personal_breathing(protocol.guidance.breathing, personal_rate_bpm, chosen_rate_bpm)
    if b == protocol.guidance.breathing:
        return protocol
    return replace(protocol, guidance=replace(protocol.guidance, breathing=b))


def _cycle(p: BreathingPattern) -> list[tuple[str, float]]:
    durations = (p.inhale_s, p.hold_in_s, p.exhale_s, p.hold_out_s)
    return [(n, d) for n, d in zip(PHASE_NAMES, durations, strict=True) if d > 0]


def phases(
    guidance: Guidance | None, from_t: float, to_t: float, *, limit: int = 1000
) -> list[tuple[float, str, float]]:
    """Breathing phases overlapping [from_t, to_t) as (start_t, phase_name, duration_s).

    The first item may start before `from_t` (the phase in progress). Empty for guidance without
    breathing, for None, or for an empty interval; at most `limit` phases.
    """
    if guidance is None or guidance.breathing is None or not to_t > from_t:
        return []
    p = guidance.breathing
    period = p.period_s
    cycle = _cycle(p)
    if not (period > 0 and math.isfinite(period) and cycle):
        return []
    start = max(from_t, guidance.start_t)
    n = max(0, math.floor((start - guidance.start_t) / period))
    out: list[tuple[float, str, float]] = []
    while len(out) < limit:
        # Multiplying (not accumulating) keeps late cycles exactly where every screen puts them.
        cycle_start = guidance.start_t + n * period
        if cycle_start >= to_t:
            break
        ps = cycle_start
        for name, dur in cycle:
            if ps >= to_t or len(out) >= limit:
                break
            if ps + dur > from_t:
                out.append((ps, name, dur))
            ps += dur
        n += 1
    return out


def phase_at(guidance: Guidance | None, t: float) -> tuple[str, float, float] | None:
    """(phase_name, phase start, fraction done 0..1) of the breathing phase at `t`, or None."""
    got = phases(guidance, t, t + 1e-9, limit=1)
    if not got:
        return None
    start, name, dur = got[0]
    return name, start, min(1.0, max(0.0, (t - start) / dur))
