"""Resonance-frequency assessment: score paced-breathing blocks and choose the client's own rate.

Pure: no I/O, no clock. Each block is the clean RR series recorded while the client followed a
pacer at one rate; the pacer itself (its start time, rate and inhale share) is given as data, or a
chest breathing trace when the strap provides one. docs/resonance.md defines every criterion, the
combination and its references (Lehrer, Vaschillo & Vaschillo 2000; Lehrer et al. 2013; Lehrer &
Gevirtz 2014; Shaffer & Meehan 2020).

Spectra come from `biofeedback.signal.frequency` (the neurokit2 `hrv_frequency` method), so a
block's LF and HF power equal neurokit2's on the same window (tests/signal_resonance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeedback.errors import ParseError
from biofeedback.signal.frequency import LF_BAND, frequency_domain, psd

F64 = npt.NDArray[np.float64]

#: Lehrer et al. (2013): five 2-minute blocks from 6.5 down to 4.5 breaths/min.
DEFAULT_RATES_BPM: tuple[float, ...] = (6.5, 6.0, 5.5, 5.0, 4.5)
HR_GRID_HZ = 4.0  # heart rate resampled evenly for the time-domain criteria
COHERENCE_HALF_WIDTH_HZ = 0.015  # as the live coherence (docs/arousal.md)
MIN_WINDOW_S = 60.0  # frequency.py's shortest spectral window
MIN_COVERAGE = 0.85  # share of the window covered by beats for a block to count
MAX_CORRECTED_SHARE = 0.10  # the calibration gate's limit on corrected beats
METHOD = "resonance-v1"


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each criterion counts in the combined score (docs/resonance.md)."""

    amplitude: float = 0.30
    lf_peak: float = 0.25
    phase: float = 0.20
    coherence: float = 0.15
    smoothness: float = 0.10

    def __post_init__(self) -> None:
        vals = (self.amplitude, self.lf_peak, self.phase, self.coherence, self.smoothness)
        if not all(math.isfinite(v) and v >= 0 for v in vals) or sum(vals) <= 0:
            raise ValueError(f"resonance weights must be >= 0 with a positive sum, got {vals}")


@dataclass(frozen=True, slots=True)
class Pacer:
    """A pacer as data: inhale starts at `start_t + n * 60 / rate_bpm`, lasting `inhale_share`
    of the cycle; lung volume rises linearly during the inhale and falls during the exhale."""

    start_t: float
    rate_bpm: float
    inhale_share: float = 0.4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_t) and math.isfinite(self.rate_bpm)):
            raise ValueError("pacer start and rate must be finite")
        if not 2.0 <= self.rate_bpm <= 30.0:
            raise ValueError(f"pacer rate must be 2..30 breaths/min, got {self.rate_bpm}")
        if not 0.1 <= self.inhale_share <= 0.9:
            raise ValueError(f"inhale share must be 0.1..0.9, got {self.inhale_share}")

    @property
    def hz(self) -> float:
        return self.rate_bpm / 60.0

    def volume(self, t: F64) -> F64:
        """Idealised lung volume 0..1 the pacer asks for at times `t`."""
        u = np.mod((t - self.start_t) * self.hz, 1.0)
        a = self.inhale_share
        return np.where(u < a, u / a, 1.0 - (u - a) / (1.0 - a))


@dataclass(frozen=True, slots=True)
class BlockScore:
    """One paced block's criteria (None where the block could not measure it)."""

    rate_bpm: float
    start_t: float  # the scored window
    end_t: float
    n_beats: int
    peak_to_trough_bpm: float | None  # mean over breaths of HR max - HR min
    lf_ms2: float | None  # LF band power 0.04-0.15 Hz (neurokit2's method)
    hf_ms2: float | None
    lf_peak_hz: float | None  # frequency of the largest LF spectral bin
    lf_peak_ms2_hz: float | None  # its spectral density
    phase_deg: float | None  # HR relative to breathing at the pacer frequency; > 0: HR leads
    phase_source: str  # "pacer" or "breathing" (a chest trace)
    coherence: float | None  # share of 0.04-0.4 Hz power within +-0.015 Hz of the pacer
    smoothness: float | None  # share of HR variance in one sinusoid at the pacer frequency
    coverage: float  # share of the window covered by beats
    corrected_share: float  # share of beats the artifact correction replaced
    quality: float  # 0..1, coverage x (1 - corrected share)
    usable: bool  # quality good enough to compete (docs/resonance.md)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """The outcome: the chosen rate (None when no block was usable) and every block's score."""

    rate_bpm: float | None
    blocks: tuple[BlockScore, ...]
    combined: tuple[float | None, ...]  # per block, None when not usable
    complete: bool  # every planned block was measured
    planned_rates_bpm: tuple[float, ...]
    quality: float  # mean quality of the blocks measured (0 when none)
    method: str = METHOD
    weights: Weights = field(default_factory=Weights)
    notes: tuple[str, ...] = ()


def block_window(pacer: Pacer, end_t: float, settle_s: float = 10.0) -> tuple[float, float]:
    """The scored part of a block paced from `pacer.start_t` to `end_t`: whole pacer cycles from
    the first cycle start at least `settle_s` in. Whole cycles put the pacer frequency on a
    spectral bin, so the coherence band holds the same bins at every rate."""
    period = 60.0 / pacer.rate_bpm
    k0 = math.ceil(settle_s / period - 1e-9)
    start = pacer.start_t + k0 * period
    cycles = math.floor((end_t - start) / period + 1e-9)
    if cycles < 1:
        return start, end_t
    return start, start + cycles * period


def _hr_grid(t: F64, rr: F64, t0: float, t1: float) -> tuple[F64, F64]:
    """Heart rate (bpm) of each interval placed at its midpoint (the interval's length reflects
    the vagal drive while it ran, not at its closing beat), linearly interpolated on an even
    grid over [t0, t1]."""
    grid = np.arange(t0, t1, 1.0 / HR_GRID_HZ)
    hr = np.interp(grid, t - rr / 2000.0, 60000.0 / rr)
    return grid, np.asarray(hr, dtype=np.float64)


def _detrend(x: F64) -> F64:
    n = len(x)
    if n < 3:
        return np.asarray(x - x.mean(), dtype=np.float64)
    k = np.arange(n, dtype=np.float64)
    slope, icpt = np.polyfit(k, x, 1)
    return np.asarray(x - (slope * k + icpt), dtype=np.float64)


def _lock_in(grid: F64, x: F64, hz: float) -> complex:
    """Complex amplitude of `x` at `hz`, Hann-weighted so a window of non-whole cycles leaks
    little."""
    w = np.hanning(len(x))
    z = np.sum(w * x * np.exp(-2j * np.pi * hz * grid)) / np.sum(w)
    return complex(z)


def _peak_to_trough(grid: F64, hr: F64, pacer: Pacer) -> float | None:
    """Mean over whole pacer cycles inside the grid of (max HR - min HR) in that cycle."""
    period = 60.0 / pacer.rate_bpm
    n0 = math.ceil((grid[0] - pacer.start_t) / period - 1e-9)
    spans: list[float] = []
    n = n0
    while True:
        a = pacer.start_t + n * period
        b = a + period
        if b > grid[-1] + 1e-9:
            break
        sel = (grid >= a) & (grid < b)
        if np.count_nonzero(sel) >= 4:
            spans.append(float(hr[sel].max() - hr[sel].min()))
        n += 1
    return float(np.mean(spans)) if spans else None


def _smoothness(grid: F64, hr: F64, hz: float) -> float | None:
    """R^2 of a least-squares sinusoid at `hz` on the detrended HR (1: a pure sine wave)."""
    y = _detrend(hr)
    var = float(np.dot(y, y))
    if var <= 0:
        return None
    a = np.column_stack([np.cos(2 * np.pi * hz * grid), np.sin(2 * np.pi * hz * grid)])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    fit = a @ coef
    return float(min(1.0, max(0.0, float(np.dot(fit, fit)) / var)))


def score_block(
    t_s: Sequence[float] | F64,
    rr_ms: Sequence[float] | F64,
    pacer: Pacer,
    *,
    start_t: float,
    end_t: float,
    corrected: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
    breathing: tuple[Sequence[float], Sequence[float]] | None = None,
) -> BlockScore:
    """Score one paced block over the window [start_t, end_t].

    `t_s`, `rr_ms`: clean beats (R-peak time in seconds, RR in ms), `corrected` which of them the
    artifact correction replaced. `breathing`: (times, chest expansion) when a breathing trace is
    available; the phase is then taken against it instead of the pacer's idealised volume.
    """
    if not (math.isfinite(start_t) and math.isfinite(end_t) and end_t > start_t):
        raise ValueError(f"block window must be finite with end > start, got {start_t}..{end_t}")
    t_all = np.asarray(t_s, dtype=np.float64)
    rr_all = np.asarray(rr_ms, dtype=np.float64)
    if t_all.shape != rr_all.shape:
        raise ValueError("beat times and RR values differ in length")
    corr_all = (
        np.zeros(len(t_all), dtype=np.bool_)
        if corrected is None
        else np.asarray(corrected, dtype=np.bool_)
    )
    sel = (t_all >= start_t) & (t_all <= end_t) & np.isfinite(rr_all) & (rr_all > 0)
    t, rr, corr = t_all[sel], rr_all[sel], corr_all[sel]
    length = end_t - start_t
    n = len(t)
    # beats cover the window from each beat's start (t - rr) to its R peak
    coverage = min(1.0, float(rr.sum()) / 1000.0 / length) if n else 0.0
    corrected_share = float(corr.mean()) if n else 0.0
    quality = coverage * (1.0 - corrected_share)
    notes: list[str] = []
    source = "breathing" if breathing is not None else "pacer"
    empty = BlockScore(
        pacer.rate_bpm, start_t, end_t, n, None, None, None, None, None, None, source, None, None,
        coverage, corrected_share, quality, False, (),
    )  # fmt: skip
    if n < 16 or t[-1] - t[0] < MIN_WINDOW_S * 0.98:
        return _replace_notes(empty, ("too few beats for a spectrum (needs 60 s of beats)",))
    if coverage < MIN_COVERAGE:
        notes.append(f"beats cover {coverage:.0%} of the block (needs {MIN_COVERAGE:.0%})")
    if corrected_share > MAX_CORRECTED_SHARE:
        notes.append(
            f"{corrected_share:.0%} of beats corrected (at most {MAX_CORRECTED_SHARE:.0%})"
        )

    fd = frequency_domain(float(t[-1]), length, t, rr, pacer.hz, COHERENCE_HALF_WIDTH_HZ)
    f, p = psd(t, rr, max_hz=LF_BAND[1])
    band = (f >= LF_BAND[0]) & (f < LF_BAND[1])
    lf_peak_hz = lf_peak = None
    if np.any(band) and p[band].max() > 0:
        k = int(np.argmax(p[band]))
        lf_peak_hz = float(f[band][k])
        lf_peak = float(p[band][k])

    grid, hr = _hr_grid(t, rr, float(t[0]), float(t[-1]))
    p2t = _peak_to_trough(grid, hr, pacer)
    smooth = _smoothness(grid, hr, pacer.hz)
    z_hr = _lock_in(grid, _detrend(hr), pacer.hz)
    if breathing is not None:
        bt = np.asarray(breathing[0], dtype=np.float64)
        bv = np.asarray(breathing[1], dtype=np.float64)
        ok = (bt >= grid[0] - 5.0) & (bt <= grid[-1] + 5.0) & np.isfinite(bv)
        if np.count_nonzero(ok) < 8:
            notes.append("breathing trace missing in this block: phase from the pacer")
            source = "pacer"
            ref = pacer.volume(grid)
        else:
            ref = np.asarray(np.interp(grid, bt[ok], bv[ok]), dtype=np.float64)
    else:
        ref = pacer.volume(grid)
    z_ref = _lock_in(grid, _detrend(ref), pacer.hz)
    phase = None
    if abs(z_hr) > 0 and abs(z_ref) > 0:
        phase = math.degrees(math.remainder(np.angle(z_hr) - np.angle(z_ref), 2 * math.pi))
    usable = (
        coverage >= MIN_COVERAGE
        and corrected_share <= MAX_CORRECTED_SHARE
        and p2t is not None
        and fd.lf_ms2 is not None
    )
    return BlockScore(
        rate_bpm=pacer.rate_bpm,
        start_t=start_t,
        end_t=end_t,
        n_beats=n,
        peak_to_trough_bpm=p2t,
        lf_ms2=fd.lf_ms2,
        hf_ms2=fd.hf_ms2,
        lf_peak_hz=lf_peak_hz,
        lf_peak_ms2_hz=lf_peak,
        phase_deg=phase,
        phase_source=source,
        coherence=fd.coherence,
        smoothness=smooth,
        coverage=coverage,
        corrected_share=corrected_share,
        quality=quality,
        usable=usable,
        notes=tuple(notes),
    )


def _replace_notes(b: BlockScore, notes: tuple[str, ...]) -> BlockScore:
    from dataclasses import replace

    return replace(b, notes=notes)


def criterion_scores(blocks: Sequence[BlockScore]) -> list[dict[str, float] | None]:
    """Each usable block's criteria on 0..1 (amplitude and LF peak relative to the best usable
    block; phase as (1 + cos phase) / 2; coherence and smoothness as measured)."""
    usable = [b for b in blocks if b.usable]
    best_amp = max((b.peak_to_trough_bpm or 0.0 for b in usable), default=0.0)
    best_lf = max((b.lf_peak_ms2_hz or 0.0 for b in usable), default=0.0)
    out: list[dict[str, float] | None] = []
    for b in blocks:
        if not b.usable:
            out.append(None)
            continue
        out.append(
            {
                "amplitude": (b.peak_to_trough_bpm or 0.0) / best_amp if best_amp > 0 else 0.0,
                "lf_peak": (b.lf_peak_ms2_hz or 0.0) / best_lf if best_lf > 0 else 0.0,
                "phase": (
                    (1.0 + math.cos(math.radians(b.phase_deg))) / 2.0
                    if b.phase_deg is not None
                    else 0.0
                ),
                "coherence": b.coherence or 0.0,
                "smoothness": b.smoothness or 0.0,
            }
        )
    return out


def choose(
    blocks: Sequence[BlockScore],
    planned_rates_bpm: Sequence[float] = DEFAULT_RATES_BPM,
    weights: Weights | None = None,
) -> Assessment:
    """Combine the blocks measured so far (possibly fewer than planned) into an assessment."""
    w = weights or Weights()
    total = w.amplitude + w.lf_peak + w.phase + w.coherence + w.smoothness
    combined: list[float | None] = []
    for c in criterion_scores(blocks):
        if c is None:
            combined.append(None)
            continue
        s = (
            w.amplitude * c["amplitude"]
            + w.lf_peak * c["lf_peak"]
            + w.phase * c["phase"]
            + w.coherence * c["coherence"]
            + w.smoothness * c["smoothness"]
        )
        combined.append(s / total)
    rate: float | None = None
    notes: list[str] = []
    scored = [(s, i) for i, s in enumerate(combined) if s is not None]
    if scored:
        best, i = max(scored)
        rate = blocks[i].rate_bpm
        others = sorted((s for s, j in scored if j != i), reverse=True)
        if others and best - others[0] < 0.02:
            notes.append("the best two rates scored within 0.02: either suits this client")
    else:
        notes.append("no block had good enough signal to score")
    measured = {round(b.rate_bpm, 6) for b in blocks}
    complete = all(round(r, 6) in measured for r in planned_rates_bpm)
    if not complete:
        notes.append("partial assessment: not every planned rate was measured")
    quality = float(np.mean([b.quality for b in blocks])) if blocks else 0.0
    return Assessment(
        rate_bpm=rate,
        blocks=tuple(blocks),
        combined=tuple(combined),
        complete=complete,
        planned_rates_bpm=tuple(planned_rates_bpm),
        quality=quality,
        weights=w,
        notes=tuple(notes),
    )


class ResonanceScorer:
    """`score_block` and `choose` in the shape `biofeedback.exposure.assessment.Scorer` asks
    for: the session hands over a block's beats, this finds its scored window (whole cycles
    after `settle_s`, `block_window`) and scores it."""

    def score(
        self,
        beats: Sequence[tuple[float, float, bool]],
        breathing: Sequence[tuple[float, float]] | None,
        *,
        block_start_t: float,
        rate_bpm: float,
        inhale_share: float,
        end_t: float,
        settle_s: float,
    ) -> BlockScore:
        pacer = Pacer(block_start_t, rate_bpm, inhale_share)
        a, b = block_window(pacer, end_t, settle_s)
        if b <= a:
            a, b = block_start_t, max(end_t, block_start_t + 1e-3)
        trace = None
        if breathing:
            trace = ([x[0] for x in breathing], [x[1] for x in breathing])
        return score_block(
            [x[0] for x in beats],
            [x[1] for x in beats],
            pacer,
            start_t=a,
            end_t=b,
            corrected=[x[2] for x in beats],
            breathing=trace,
        )

    def choose(
        self,
        blocks: Sequence[BlockScore],
        planned_rates_bpm: Sequence[float],
        weights: Weights | None,
    ) -> Assessment:
        return choose(blocks, planned_rates_bpm, weights)


# ---- JSON (the client's profile keeps assessments; docs/resonance.md "Stored result") -------


def assessment_to_json(a: Assessment) -> dict[str, Any]:
    """A JSON-ready dict of the assessment (finite numbers, None as null)."""
    from dataclasses import asdict

    d = asdict(a)
    d["blocks"] = [asdict(b) for b in a.blocks]
    return d


_WEIGHT_NAMES = ("amplitude", "lf_peak", "phase", "coherence", "smoothness")
_BLOCK_FLOATS = (
    "rate_bpm",
    "start_t",
    "end_t",
    "coverage",
    "corrected_share",
    "quality",
)
_BLOCK_OPTIONAL = (
    "peak_to_trough_bpm",
    "lf_ms2",
    "hf_ms2",
    "lf_peak_hz",
    "lf_peak_ms2_hz",
    "phase_deg",
    "coherence",
    "smoothness",
)


def _num(d: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> float | None:
    if key not in d:
        raise ParseError(f"{where}: missing field {key!r}")
    v = d[key]
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ParseError(f"{where}: field {key!r} must be a finite number, got {v!r}")
    return float(v)


def assessment_from_json(d: object, where: str = "resonance assessment") -> Assessment:
    """Validate and rebuild an assessment; `ParseError` names the field that is wrong."""
    if not isinstance(d, Mapping):
        raise ParseError(f"{where}: must be an object, got {type(d).__name__}")
    raw_blocks = d.get("blocks")
    if not isinstance(raw_blocks, list):
        raise ParseError(f"{where}: field 'blocks' must be a list")
    blocks: list[BlockScore] = []
    for i, rb in enumerate(raw_blocks):
        bw = f"{where}, blocks[{i}]"
        if not isinstance(rb, Mapping):
            raise ParseError(f"{bw}: must be an object")
        vals: dict[str, Any] = {k: _num(rb, k, bw) for k in _BLOCK_FLOATS}
        vals.update({k: _num(rb, k, bw, optional=True) for k in _BLOCK_OPTIONAL})
        nb = rb.get("n_beats")
        if isinstance(nb, bool) or not isinstance(nb, int) or nb < 0:
            raise ParseError(f"{bw}: field 'n_beats' must be a whole number >= 0, got {nb!r}")
        src = rb.get("phase_source")
        if src not in ("pacer", "breathing"):
            raise ParseError(f"{bw}: field 'phase_source' must be 'pacer' or 'breathing'")
        usable = rb.get("usable")
        if not isinstance(usable, bool):
            raise ParseError(f"{bw}: field 'usable' must be true or false")
        notes = rb.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
            raise ParseError(f"{bw}: field 'notes' must be a list of strings")
        blocks.append(
            BlockScore(n_beats=nb, phase_source=src, usable=usable, notes=tuple(notes), **vals)
        )
    rate = _num(d, "rate_bpm", where, optional=True)
    comb = d.get("combined")
    if not isinstance(comb, list) or len(comb) != len(blocks):
        raise ParseError(f"{where}: field 'combined' must list one score (or null) per block")
    combined = tuple(None if c is None else _num({"c": c}, "c", f"{where}, combined") for c in comb)
    planned = d.get("planned_rates_bpm")
    if not isinstance(planned, list) or not planned:
        raise ParseError(f"{where}: field 'planned_rates_bpm' must be a non-empty list")
    planned_t = tuple(
        float(_num({"r": r}, "r", f"{where}, planned_rates_bpm") or 0.0) for r in planned
    )
    complete = d.get("complete")
    if not isinstance(complete, bool):
        raise ParseError(f"{where}: field 'complete' must be true or false")
    quality = _num(d, "quality", where)
    method = d.get("method")
    if not isinstance(method, str):
        raise ParseError(f"{where}: field 'method' must be a string")
    rw = d.get("weights")
    if not isinstance(rw, Mapping):
        raise ParseError(f"{where}: field 'weights' must be an object")
    try:
        weights = Weights(
            **{k: float(_num(rw, k, f"{where}, weights") or 0.0) for k in _WEIGHT_NAMES}
        )
    except ValueError as exc:
        raise ParseError(f"{where}: {exc}") from None
    notes = d.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
        raise ParseError(f"{where}: field 'notes' must be a list of strings")
    return Assessment(
        rate_bpm=rate,
        blocks=tuple(blocks),
        combined=combined,
        complete=complete,
        planned_rates_bpm=planned_t,
        quality=float(quality or 0.0),
        method=method,
        weights=weights,
        notes=tuple(notes),
    )


# ---- the client's history (stored by biofeedback.service.resonance_store) -----------------

HISTORY_SCHEMA = "biofeedback.resonance-history"
HISTORY_VERSION = 1


@dataclass(frozen=True, slots=True)
class ResonanceRecord:
    """One assessment in the client's history: when (ISO 8601 with zone), in which recorded
    session (its folder name, or ""), and the result with every block's scores and quality."""

    date: str
    session: str
    assessment: Assessment


def history_to_json(client_id: str, records: list[ResonanceRecord]) -> dict[str, Any]:
    return {
        "schema": HISTORY_SCHEMA,
        "version": HISTORY_VERSION,
        "client_id": client_id,
        "assessments": [
            {"date": r.date, "session": r.session, "assessment": assessment_to_json(r.assessment)}
            for r in records
        ],
    }


def history_from_json(d: object, where: str) -> list[ResonanceRecord]:
    """Validate a history; `ParseError` names the file and the field that is wrong."""
    if not isinstance(d, dict):
        raise ParseError(f"{where}: must be a JSON object")
    if d.get("schema") != HISTORY_SCHEMA:
        raise ParseError(
            f"{where}: field 'schema' must be {HISTORY_SCHEMA!r}, got {d.get('schema')!r}"
        )
    if d.get("version") != HISTORY_VERSION:
        raise ParseError(
            f"{where}: field 'version' must be {HISTORY_VERSION}, got {d.get('version')!r}"
        )
    items = d.get("assessments")
    if not isinstance(items, list):
        raise ParseError(f"{where}: field 'assessments' must be a list")
    out: list[ResonanceRecord] = []
    for i, item in enumerate(items):
        iw = f"{where}, assessments[{i}]"
        if not isinstance(item, dict):
            raise ParseError(f"{iw}: must be an object")
        date = item.get("date")
        if not isinstance(date, str):
            raise ParseError(f"{iw}: field 'date' must be an ISO 8601 string")
        try:
            datetime.fromisoformat(date)
        except ValueError:
            raise ParseError(f"{iw}: field 'date' is not ISO 8601: {date!r}") from None
        session = item.get("session", "")
        if not isinstance(session, str):
            raise ParseError(f"{iw}: field 'session' must be a string")
        out.append(ResonanceRecord(date, session, assessment_from_json(item.get("assessment"), iw)))
    return out


def personal_rate(records: list[ResonanceRecord]) -> float | None:
    """The newest assessed rate (breaths/min), or None when no assessment chose one."""
    for r in reversed(records):
        rate = r.assessment.rate_bpm
        if rate is not None and math.isfinite(rate):
            return rate
    return None
