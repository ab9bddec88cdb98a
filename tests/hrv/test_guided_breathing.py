"""While paced breathing is guided, its large heart-rate swing is not read as arousal."""

from __future__ import annotations

import statistics

from biofeedback.devices.physiology import Physiology
from biofeedback.signal import SignalConfig, SignalPipeline


def _session(guided: bool) -> tuple[list[float], list[float]]:
    """Rest, exposure, then slow breathing at 6/min; arousal and fast component while breathing."""
    phys = Physiology(start_t=0.0, seed=3)
    p = SignalPipeline(SignalConfig())
    p.start_calibration(0.0)

    def feed(until: float) -> list[tuple[float, float | None, float | None]]:
        out = []
        for b in phys.beats_until(until):
            a = p.push_rr(b.t, b.rr_s * 1000.0, True).arousal
            out.append((b.t, a.value, a.fast))
        return out

    feed(125.0)
    p.finish_calibration(125.0, "c1")
    feed(200.0)
    phys.set_stimulus(exposure=0.9, paced_breathing_bpm=None)
    feed(260.0)
    phys.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0)
    if guided:
        p.set_paced_breathing(0.1)
    late = [(v, f) for t, v, f in feed(400.0) if t > 340.0]
    values = [v for v, _ in late if v is not None]
    fasts = [f for _, f in late if f is not None]
    return values, fasts


def test_guidance_steadies_the_fast_component() -> None:
    _, fast_free = _session(guided=False)
    values, fast_guided = _session(guided=True)
    # the swing of 6/min breathing (about +-8 bpm) dominates an unguided 5-beat median
    assert statistics.pstdev(fast_guided) < 0.6 * statistics.pstdev(fast_free)
    assert statistics.pstdev(values) < 6.0
    assert statistics.mean(values) < 20.0  # recovered: well below a typical lower threshold


def test_guidance_off_restores_the_few_beat_reaction() -> None:
    p = SignalPipeline(SignalConfig())
    p.set_paced_breathing(0.1)
    p.set_paced_breathing(None)
    assert p.paced_hz == 0.1  # coherence stays measured at the last paced rate
    assert p.guided_hz is None


def test_implausible_paced_rate_is_not_guided() -> None:
    p = SignalPipeline(SignalConfig())
    p.set_paced_breathing(2.0)  # 120 breaths/min: ignored with a log line
    assert p.guided_hz is None
