"""A synthetic session stream for recording tests and benchmarks (no pipeline needed).

Real bytes: notifications are encoded as a strap sends them and timed with `BeatTimer`, so they
exercise the same parse path as live data. The beat updates and events are plausible stand-ins for
the pipeline's and state machine's outputs; they are not physiology.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

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
    Consent,
    GroundingTechnique,
    OfferStep,
    Pause,
    Role,
    SessionEvent,
    SessionState,
    SudsAnswer,
    Tick,
)
from biofeedback.recording.inputs import RecordedInput
from biofeedback.signal.measures import (
    Arousal,
    ArousalBasis,
    BeatUpdate,
    CleanBeat,
    FrequencyDomain,
    SignalQuality,
    TimeDomain,
)

DEVICE = "SimStrap 1234"


@dataclass(frozen=True, slots=True)
class Step:
    """One processed input with what it produced."""

    seq: int
    item: RecordedInput
    updates: tuple[BeatUpdate, ...]
    events: tuple[SessionEvent, ...]


def _update(t: float, rr: float, hr: float, rng: random.Random, n: int) -> BeatUpdate:
    corrected = rng.random() < 0.02
    beat = CleanBeat(
        t=t,
        rr_ms=rr,
        raw_rr_ms=rr * (1.4 if corrected else 1.0),
        corrected=corrected,
        artifact="ectopic" if corrected else None,
        contact=True,
    )
    short = TimeDomain(30.0, min(n, 30), rr, hr, 40.0 + 10 * math.sin(t / 60), 50.0, 12.5)
    freq = (
        FrequencyDomain(t, 120.0, 800.0, 600.0, 800.0 / 600.0, 6.1, rng.random(), 0.1)
        if n % 5 == 0
        else None
    )
    value = 50 + 30 * math.sin(t / 300)
    return BeatUpdate(
        t=t,
        beat=beat,
        rejected=None,
        hr_bpm=hr,
        short=short if n > 2 else None,
        long=None,
        frequency=freq,
        quality=SignalQuality(0.9, 0.02, 0.0, True, n > 2, None if n > 2 else "warming up"),
        arousal=Arousal(t, value, 0.8, value, None, ArousalBasis.HR_HRV, None),
    )


def synthetic_session(
    duration_s: float, *, start_t: float = 1_764_000_000.0, seed: int = 0
) -> Iterator[Step]:
    """About one notification (1-2 RR values) and one Tick per second, with device events,
    commands, the odd malformed payload and transition events; deterministic for a seed."""
    rng = random.Random(seed)
    timer = BeatTimer(DEVICE)
    seq = 0
    ev_seq = 0
    state = SessionState.READY
    n_beats = 0
    t = start_t
    next_tick = start_t + 1.0
    end = start_t + duration_s
    seq += 1
    info = DeviceInfo(DEVICE, "AA:BB:CC:DD:EE:FF", "Sim", "H-1", "1.0.0")
    yield Step(seq, DeviceEvent(start_t, DEVICE, DeviceEventKind.CONNECTED, info=info), (), ())
    while t < end:
        hr = 70 + 15 * math.sin((t - start_t) / 200) + rng.gauss(0, 1)
        rrs = [round(60_000 / hr * 1.024 + rng.gauss(0, 20)) for _ in range(rng.choice((1, 1, 2)))]
        t += sum(rrs) / 1024 + rng.random() * 0.05
        while next_tick <= t:
            seq += 1
            yield Step(seq, Tick(next_tick), (), ())
            next_tick += 1.0
        seq += 1
        if rng.random() < 0.003:
            payload = bytes([0x10, 70, 1])  # odd RR field: a corrupt notification
        else:
            m = HeartRateMeasurement(round(hr), True, True, None, tuple(rrs))
            payload = encode_heart_rate_measurement(m)
        n = timer.notification(t, payload)
        updates = []
        for b in n.beats:
            n_beats += 1
            updates.append(_update(b.t, b.rr_ms, 60_000 / b.rr_ms, rng, n_beats))
        yield Step(seq, n, tuple(updates), ())
        r = rng.random()
        if r < 0.01:
            seq += 1
            yield Step(seq, DeviceEvent(t, DEVICE, DeviceEventKind.BATTERY, battery_pct=80), (), ())
        elif r < 0.03:
            seq += 1
            cmd = rng.choice(
                (
                    Pause(t, Role.CLIENT, "too much", f"c{seq}"),
                    Consent(t, Role.CLIENT, f"c{seq}"),
                    OfferStep(t, Role.THERAPIST, None, f"c{seq}"),
                    SudsAnswer(t, Role.CLIENT, rng.randint(0, 100), f"c{seq}"),
                    AdjustThresholds(t, Role.THERAPIST, 70.0, 40.0, None, 30.0, f"c{seq}"),
                    ChooseGrounding(t, Role.CLIENT, GroundingTechnique.PACED_BREATHING),
                )
            )
            new = rng.choice(list(SessionState))
            ev_seq += 1
            ev = SessionEvent(
                ev_seq,
                t,
                "transition",
                getattr(cmd, "role", Role.SYSTEM),
                state,
                new,
                f"{type(cmd).__name__} from {cmd.role}",
                {"arousal": 55.5, "note": "tab\there"},
            )
            state = new
            yield Step(seq, cmd, (), (ev,))
