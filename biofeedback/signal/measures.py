"""What crosses the signal seam: cleaned beats, HRV metrics, quality, baseline and arousal.

Pure data. Times are float seconds on the session clock, given by the caller.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SignalConfig:
    """Tunables of the signal pipeline (the `[signal]` table of the config file)."""

    short_window_s: float = 30.0
    long_window_s: float = 60.0
    frequency_window_s: float = 120.0  # 60-300 s
    # at most one spectral update per this many seconds (docs/arousal.md, "Frequency domain":
    # a 120 s spectrum moves slowly, and no screen shows it per second)
    frequency_cadence_s: float = 15.0
    calibration_s: float = 120.0
    paced_breathing_hz: float = 0.1  # 6 breaths/min, the default guidance pattern
    min_rr_ms: float = 250.0
    max_rr_ms: float = 2500.0
    gap_s: float = 5.0  # a pause between beats longer than this is a gap: windows restart
    # The two below are read from old recordings and configs and no longer used (the native
    # detector judges every beat with its full context; docs/arousal.md): kept so those load.
    artifact_buffer_beats: int = 64  # was: beats handed to the neurokit2 detector per run
    artifact_every_beats: int = 8  # was: one detector run per this many accepted beats
    artifact_lag_beats: int = 6  # a beat is judged once it has this many successors
    # Provisional screen at intake (docs/arousal.md, "Artifacts"): until the detector has judged
    # it, a beat deviating from the median of the previous `provisional_beats` raw RR of the
    # segment by more than this fraction enters the metrics as that median. 0 or None: off.
    # 0.25 is Kubios' "medium" threshold (0.25 s at 60 bpm) relative to the local RR.
    provisional_threshold: float | None = 0.25
    provisional_beats: int = 9  # odd: the median is then one of the beats, an exact value
    fast_beats: int = 5  # the fast heart rate is the median of this many newest beats
    # While paced breathing is guided, the fast heart rate spans one whole breath (at most this
    # many beats): the heart-rate swing of slow breathing is the guidance working, not arousal.
    paced_fast_max_beats: int = 24
    quality_inputs: int = 30  # rejected share is over this many newest RR inputs
    min_quality: float = 0.3  # below this signal quality the arousal is unknown
    hr_only_confidence: float = 0.6  # confidence factor when arousal rests on heart rate alone
    fast_weight: float = 0.5  # arousal = fast_weight * fast + (1 - fast_weight) * slow
    hr_sd_floor_bpm: float = 4.0  # smallest heart-rate spread a baseline may claim
    ln_rmssd_sd_floor: float = 0.2  # smallest ln RMSSD spread a baseline may claim
    calibration_min_beats: int = 60  # clean beats a calibration needs
    calibration_max_corrected: float = 0.10  # share of corrected beats a calibration tolerates
    calibration_max_rejected: float = 0.20  # share of rejected inputs a calibration tolerates
    coherence_half_width_hz: float = 0.015  # coherence band: paced_breathing_hz +- this
    artifact_correction: bool = True  # False only to measure the rest of the pipeline alone


@dataclass(frozen=True, slots=True)
class CleanBeat:
    """A beat after plausibility checks and artifact correction.

    The beat in the update of its own input is provisional: the artifact detector judges it a
    few beats later. A beat the intake screen found implausible enters the metrics as a local
    median (`corrected` True, `artifact` "provisional"); other beats enter raw (`corrected`
    False). When the detector judges an artifact, the beat comes back corrected in that later
    update's `BeatUpdate.revised` (same `t`); when it judges a screened beat normal, the beat
    comes back there with its raw value and `corrected` False. Beats never judged (the last few
    before a gap) keep their intake value.
    """

    t: float
    rr_ms: float  # the value used for metrics (corrected when `corrected`)
    raw_rr_ms: float  # what the strap sent
    corrected: bool
    artifact: str | None  # "ectopic", "missed", "extra", "longshort", "provisional" or None
    contact: bool | None


@dataclass(frozen=True, slots=True)
class TimeDomain:
    """Time-domain HRV over one window ending at the newest beat."""

    window_s: float
    n: int  # beats in the window
    mean_nn_ms: float
    hr_bpm: float  # 60000 / mean NN
    rmssd_ms: float | None  # None with fewer than 2 intervals
    sdnn_ms: float | None  # ddof=1, as neurokit2
    pnn50_pct: float | None  # NN50 / N * 100 with N intervals, as neurokit2 (pyHRV: N - 1)


@dataclass(frozen=True, slots=True)
class FrequencyDomain:
    """Spectral HRV over a longer window, recomputed at a bounded cadence."""

    t: float
    window_s: float
    lf_ms2: float | None
    hf_ms2: float | None
    lf_hf: float | None
    breathing_rate_bpm: float | None  # from the respiratory sinus arrhythmia peak
    coherence: float | None  # 0..1: share of power in a narrow band around `paced_hz`
    paced_hz: float


@dataclass(frozen=True, slots=True)
class SignalQuality:
    """How far the numbers can be trusted right now."""

    score: float  # 0..1
    corrected_share: float  # of recent beats
    rejected_share: float  # of recent inputs
    contact: bool | None
    hrv_available: bool
    reason: str | None = None  # why the score is low or HRV is unavailable


class ArousalBasis(enum.StrEnum):
    HR_HRV = "hr+hrv"
    HR_ONLY = "hr_only"  # strap sends no RR: lower confidence, said so
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Arousal:
    """The arousal estimate (definition in docs/arousal.md). `value` None means unknown."""

    t: float
    value: float | None  # 0..100
    confidence: float  # 0..1
    fast: float | None  # heart-rate component, 0..100
    slow: float | None  # vagal-withdrawal component, 0..100
    basis: ArousalBasis
    reason: str | None = None  # why unknown / why low confidence


@dataclass(frozen=True, slots=True)
class Baseline:
    """A client's resting baseline, from a calibration that passed the quality gate."""

    client_id: str
    created_t: float
    duration_s: float
    n_beats: int
    corrected_share: float
    hr_mean_bpm: float
    hr_sd_bpm: float
    ln_rmssd_mean: float | None
    ln_rmssd_sd: float | None
    hf_ms2: float | None


@dataclass(frozen=True, slots=True)
class BeatUpdate:
    """Everything the pipeline knows after one input (one RR value or one HR-only sample)."""

    t: float
    beat: CleanBeat | None  # None when the input was rejected or HR-only
    rejected: str | None  # why the input was rejected
    hr_bpm: float | None  # instantaneous HR
    short: TimeDomain | None
    long: TimeDomain | None
    frequency: FrequencyDomain | None  # set only on updates where it was recomputed
    quality: SignalQuality
    arousal: Arousal
    # earlier beats whose value the artifact detector changed during this update: artifacts with
    # their corrected value, and screened beats judged normal restored to raw (corrected False)
    revised: tuple[CleanBeat, ...] = ()


def _fast_init(cls: type[Any]) -> None:
    """Give a frozen slots dataclass an `__init__` that fills its slots through their
    descriptors: the generated one calls `object.__setattr__` per field, ~0.7 µs more per
    object, and the live path builds five of these per beat (docs/benchmarks.md, "Signal").
    Same signature, defaults and values; instances stay frozen (assignment still raises)."""
    fields = dataclasses.fields(cls)
    ns: dict[str, Any] = {}
    params, body = [], []
    for i, f in enumerate(fields):
        ns[f"_s{i}"] = cls.__dict__[f.name].__set__
        if f.default is not dataclasses.MISSING:
            ns[f"_d{i}"] = f.default
            params.append(f"{f.name}=_d{i}")
        else:
            params.append(f.name)
        body.append(f"    _s{i}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(src, ns)  # the source is built above from the class's own field names
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy forbids assigning a method directly


for _cls in (CleanBeat, TimeDomain, FrequencyDomain, SignalQuality, Arousal, BeatUpdate):
    _fast_init(_cls)
