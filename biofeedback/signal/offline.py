"""The whole-recording path: the streaming computations as vectorised numpy, value for value.

`compute_offline` gives, for every input, what `SignalPipeline.push_rr` would have returned for
it. It reproduces the streaming rules exactly: the same intake, the same gaps, the same intake
screen and artifact detector (their vectorised forms, intake.screen_offline and
artifacts.judge_segment), and windows whose values are "as known at that beat" (judged beats
final, newer beats as the intake screen let them in). Time-domain sums are exact integers (µs),
so the results are bit-identical, not merely close. `artifacts=False` skips the detector
(series that were cleaned already).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from biofeedback.signal.arousal import Z_OFFSET, Z_SCALE
from biofeedback.signal.artifacts import LABELS, judge_segment
from biofeedback.signal.config import validate_config
from biofeedback.signal.frequency import MIN_SPAN_S, frequency_domain
from biofeedback.signal.intake import US_PER_MS, accept_offline, screen_offline
from biofeedback.signal.measures import Baseline, FrequencyDomain, SignalConfig
from biofeedback.signal.pipeline import PROVISIONAL, WARM_SHARE
from biofeedback.signal.timedomain import NN50_US

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class WindowArrays:
    """Time-domain metrics per input over one window (NaN where the streaming value is None)."""

    n: I64
    mean_nn_ms: F64
    hr_bpm: F64
    rmssd_ms: F64
    sdnn_ms: F64
    pnn50_pct: F64


@dataclass(frozen=True, slots=True)
class OfflineResult:
    """Per-input arrays (index i = the i-th RR input), as the streaming path computed them."""

    t: F64
    accepted: B
    rr_ms: F64  # the value the beat entered the windows with (NaN when rejected)
    final_rr_ms: F64  # after every judgement (NaN when rejected; intake value if never judged)
    corrected: B  # final state: the detector replaced it, or it kept a provisional value
    artifact: list[str | None]  # final state, as `corrected`
    provisional: B  # the intake screen replaced it (until judged)
    fast_hr_bpm: F64
    short: WindowArrays
    long: WindowArrays
    quality: F64
    corrected_share: F64
    rejected_share: F64
    hrv_available: B
    arousal: F64  # NaN = unknown
    arousal_fast: F64
    arousal_slow: F64
    confidence: F64
    basis: npt.NDArray[np.str_]  # ArousalBasis values
    frequency: list[tuple[int, FrequencyDomain]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Corrections:
    final: I64  # values after every judgement
    corrected: B
    artifact: list[str | None]
    known_upto: I64  # per accepted beat j: the last beat judged by the time j arrived
    judged: B  # the detector judged this beat (at some input)


def _segments(ta: F64, gap_before: B, config: SignalConfig) -> I64:
    """Index of the first beat of each accepted beat's segment."""
    m = len(ta)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.ones(m, dtype=np.bool_)
    if m > 1:
        new[1:] = (np.diff(ta) > config.gap_s) | gap_before[1:]
    new[0] = True
    return np.maximum.accumulate(np.where(new, np.arange(m), 0)).astype(np.int64)


def _correct(raw: I64, seg: I64, config: SignalConfig, enabled: bool) -> _Corrections:
    m = len(raw)
    final = raw.copy()
    corrected = np.zeros(m, dtype=np.bool_)
    artifact: list[str | None] = [None] * m
    known = seg - 1  # per accepted beat j: the last beat judged by the time j arrived
    judged_mask = np.zeros(m, dtype=np.bool_)
    if enabled and m:
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        ends = np.r_[starts[1:], m]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            sj = judge_segment(raw[s:e], config.artifact_lag_beats)
            judged = sj.labels >= 0
            if not judged.any():
                continue
            bad = sj.labels > 0
            final[s:e] = sj.values
            corrected[s:e] = bad
            for k in np.flatnonzero(bad).tolist():
                artifact[s + k] = LABELS[int(sj.labels[k])]
            judged_mask[s:e] = judged
            # judged_at grows with the beat index, so "judged by arrival j" is a search
            order = sj.judged_at[judged]
            upto = np.searchsorted(order, np.arange(e - s), side="right") - 1
            known[s:e] = np.where(upto >= 0, s + upto, s - 1)
    return _Corrections(final, corrected, artifact, known, judged_mask)


def _screen(raw: I64, seg: I64, config: SignalConfig) -> tuple[I64, B]:
    """The intake screen of `SignalPipeline.push_rr`: (values entering the metrics, screened)."""
    thr = float(config.provisional_threshold or 0.0)
    if not thr:
        return raw, np.zeros(len(raw), dtype=np.bool_)
    screened = raw.copy()
    if not len(raw):
        return screened, np.zeros(0, dtype=np.bool_)
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    ends = np.r_[starts[1:], len(raw)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        screened[s:e] = screen_offline(raw[s:e], thr, config.provisional_beats)
    return screened, screened != raw


def _prefix(a: npt.NDArray[np.int64]) -> I64:
    out = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(a, out=out[1:])
    return out


@dataclass(frozen=True, slots=True)
class _Prefixes:
    """Prefix sums of one value series: x, x^2, squared successive differences, NN50 pairs."""

    s1: I64
    s2: I64
    d2: I64  # entry k = sum over pairs (i, i+1) with i < k; padded to len(x) + 1
    nn: I64
    x: I64


def _prefixes(x: I64) -> _Prefixes:
    d = np.diff(x)
    zero = np.zeros(1, dtype=np.int64)  # pads the pair prefixes to len(x) + 1 entries
    nn50 = (np.abs(d) > NN50_US).astype(np.int64)
    return _Prefixes(
        _prefix(x), _prefix(x * x), _prefix(np.r_[d * d, zero]), _prefix(np.r_[nn50, zero]), x
    )


def _windows(
    ta: F64,
    fin: _Prefixes,
    rawp: _Prefixes,
    pc: I64,
    pp: I64,
    cor: _Corrections,
    seg: I64,
    window_s: float,
) -> tuple[WindowArrays, I64]:
    """Metrics per accepted beat over `window_s`, and the corrected count per window."""
    m = len(ta)
    j = np.arange(m, dtype=np.int64)
    lo = np.searchsorted(ta, ta - window_s, side="right").astype(np.int64)
    # the stream always keeps the newest beat, even when t - window_s rounds to t
    lo = np.minimum(np.maximum(lo, seg), j)
    d = cor.known_upto
    xf, raw = fin.x, rawp.x
    # final part [lo, fe), raw part [rs, j]
    fe = np.clip(d + 1, lo, j + 1)
    rs = fe
    pf1, pf2, pfd2, pfn = fin.s1, fin.s2, fin.d2, fin.nn
    pr1, pr2, prd2, prn = rawp.s1, rawp.s2, rawp.d2, rawp.nn
    n = j + 1 - lo
    s1 = (pf1[fe] - pf1[lo]) + (pr1[j + 1] - pr1[rs])
    s2 = (pf2[fe] - pf2[lo]) + (pr2[j + 1] - pr2[rs])
    # successive differences inside the final part: pairs (i, i+1) with lo <= i < fe - 1
    fpairs_end = np.maximum(fe - 1, lo)
    d2 = pfd2[fpairs_end] - pfd2[lo]
    nn = pfn[fpairs_end] - pfn[lo]
    rpairs_end = np.maximum(j, rs)
    d2 = d2 + prd2[rpairs_end] - prd2[rs]
    nn = nn + prn[rpairs_end] - prn[rs]
    junction = (fe > lo) & (rs <= j)
    jd = np.where(junction, raw[np.minimum(rs, m - 1)] - xf[np.maximum(fe - 1, 0)], 0)
    d2 = d2 + jd * jd
    nn = nn + (np.abs(jd) > NN50_US)
    ncorr = (pc[fe] - pc[lo]) + (pp[j + 1] - pp[rs])
    mean_ms = s1 / n / 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (n * s2 - s1 * s1).astype(np.float64) / (n * (n - 1)).astype(np.float64)
        sdnn = np.sqrt(var) / 1000.0
        rmssd = np.sqrt(d2.astype(np.float64) / (n - 1).astype(np.float64)) / 1000.0
        pnn50 = nn / n * 100.0
    few = n < 2
    nan = np.float64(np.nan)
    w = WindowArrays(
        n=n,
        mean_nn_ms=mean_ms,
        hr_bpm=60000.0 / mean_ms,
        rmssd_ms=np.where(few, nan, rmssd),
        sdnn_ms=np.where(few, nan, sdnn),
        pnn50_pct=np.where(few, nan, pnn50),
    )
    return w, ncorr


def _fast_hr(raw: I64, seg: I64, f: int) -> F64:
    m = len(raw)
    out = np.empty(m, dtype=np.float64)
    if m == 0:
        return out
    k = np.arange(m) - seg
    if m >= f:
        from numpy.lib.stride_tricks import sliding_window_view

        med = np.median(sliding_window_view(raw, f), axis=1)
        out[f - 1 :] = 60_000_000.0 / med
    for i in np.flatnonzero(k < f - 1).tolist():
        out[i] = 60_000_000.0 / float(np.median(raw[seg[i] : i + 1]))
    return out


def _log(a: F64) -> F64:
    """ln of positive values with math.log: np.log's SIMD kernels differ from it in the last bit
    for about 1 value in 6000 on AVX-512 machines, and the stream uses math.log."""
    return np.array(list(map(math.log, a.tolist())), dtype=np.float64)


def compute_offline(
    t: npt.ArrayLike,
    rr_ms: npt.ArrayLike,
    config: SignalConfig | None = None,
    baseline: Baseline | None = None,
    *,
    gap_before: npt.ArrayLike | None = None,
    contact: Sequence[bool | None] | npt.ArrayLike | None = None,
    artifacts: bool = True,
    frequency: bool = False,
    paced_hz: float | None = None,
) -> OfflineResult:
    """Every input's metrics, quality and arousal, as `SignalPipeline.push_rr` computes them.

    `gap_before[i]` True means `mark_gap` was called just before input i; `contact[i]` is the
    contact flag given with input i (True, False or None). `artifacts=False`
    matches a pipeline with `artifact_correction=False`. With `frequency=True` the spectra are
    computed where the streaming path computes them, as (input index, FrequencyDomain) pairs.
    """
    c = validate_config(config or SignalConfig())
    if not artifacts:
        c = _no_artifacts(c)
    tt = np.asarray(t, dtype=np.float64)
    rr = np.asarray(rr_ms, dtype=np.float64)
    n_in = len(tt)
    gaps = np.zeros(n_in, dtype=np.bool_) if gap_before is None else np.asarray(gap_before, bool)
    acc = accept_offline(tt, rr, c)
    idx = np.flatnonzero(acc)
    ta = tt[idx]
    raw = np.rint(rr[idx] * US_PER_MS).astype(np.int64)
    # a gap mark anywhere since the previous accepted beat splits the segment
    gap_count = np.cumsum(gaps)
    gap_acc = np.zeros(len(idx), dtype=np.bool_)
    if len(idx) > 1:
        gap_acc[1:] = gap_count[idx[1:]] > gap_count[idx[:-1]]
    seg = _segments(ta, gap_acc, c)
    # the detector works on raw values (judged ones final); the windows' not-yet-judged part
    # holds the screened values
    screened, flagged = _screen(raw, seg, c)
    cor = _correct(raw, seg, c, c.artifact_correction)
    rawp = _prefixes(screened)
    # without corrections the judged values are the raw ones: share the prefix sums
    finp = _prefixes(cor.final) if cor.corrected.any() or flagged.any() else rawp
    pc = _prefix(cor.corrected.astype(np.int64))
    pp = _prefix(flagged.astype(np.int64))
    short, _ = _windows(ta, finp, rawp, pc, pp, cor, seg, c.short_window_s)
    long, ncorr = _windows(ta, finp, rawp, pc, pp, cor, seg, c.long_window_s)
    fast = _fast_hr(raw, seg, c.fast_beats)
    warm_acc = (ta - ta[seg]) >= WARM_SHARE * c.long_window_s if len(idx) else np.zeros(0, bool)

    # map every input to the newest accepted beat at or before it; -1 = none yet / after a mark
    last = np.maximum.accumulate(np.where(acc, np.arange(n_in), -1))
    pos = np.searchsorted(idx, last)  # position in accepted arrays
    has = last >= 0
    if n_in:
        marked = gap_count > np.where(has, gap_count[np.maximum(last, 0)], 0)
        has &= ~marked

    def spread_f(a: F64) -> F64:
        out = np.full(n_in, np.nan)
        out[has] = a[pos[has]]
        return out

    def spread_td(w: WindowArrays) -> WindowArrays:
        n_arr = np.zeros(n_in, dtype=np.int64)
        n_arr[has] = w.n[pos[has]]
        return WindowArrays(
            n_arr,
            spread_f(w.mean_nn_ms),
            spread_f(w.hr_bpm),
            spread_f(w.rmssd_ms),
            spread_f(w.sdnn_ms),
            spread_f(w.pnn50_pct),
        )

    s_short, s_long = spread_td(short), spread_td(long)
    fast_all = spread_f(fast)
    warm = np.zeros(n_in, dtype=np.bool_)
    warm[has] = warm_acc[pos[has]]
    ncorr_all = np.zeros(n_in, dtype=np.int64)
    ncorr_all[has] = ncorr[pos[has]]

    rej = (~acc).astype(np.int64)
    q = c.quality_inputs
    crej = _prefix(rej)
    i_arr = np.arange(n_in)
    lo_q = np.maximum(i_arr + 1 - q, 0)
    rejected_share = (crej[i_arr + 1] - crej[lo_q]) / (i_arr + 1 - lo_q)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected_share = np.where(s_long.n > 0, ncorr_all / s_long.n, 0.0)
    score = np.maximum(0.0, np.minimum(1.0, 1.0 - 2.0 * corrected_share - rejected_share))
    if contact is not None:
        # push_rr(..., contact=False) zeroes the quality of that update
        no_contact = np.array([c_ is False for c_ in np.asarray(contact, dtype=object).tolist()])
        score = np.where(no_contact, 0.0, score)
    rm = np.nan_to_num(s_long.rmssd_ms, nan=0.0)
    hrv_ok = warm & (s_long.n > 0) & (rm > 0)

    value = np.full(n_in, np.nan)
    a_fast = np.full(n_in, np.nan)
    a_slow = np.full(n_in, np.nan)
    conf = np.zeros(n_in)
    basis = np.full(n_in, "unknown", dtype="<U7")
    if baseline is not None:
        ok = ~np.isnan(fast_all) & (score >= c.min_quality)
        z = (fast_all - baseline.hr_mean_bpm) / max(baseline.hr_sd_bpm, c.hr_sd_floor_bpm)
        a_fast = np.where(ok, np.minimum(100.0, np.maximum(0.0, Z_OFFSET + Z_SCALE * z)), np.nan)
        both = ok & hrv_ok & (baseline.ln_rmssd_mean is not None)
        if baseline.ln_rmssd_mean is not None:
            sd = max(baseline.ln_rmssd_sd or 0.0, c.ln_rmssd_sd_floor)
            ln = np.full(n_in, np.nan)
            ln[both] = _log(s_long.rmssd_ms[both])
            zs = (baseline.ln_rmssd_mean - ln) / sd
            a_slow = np.where(
                both, np.minimum(100.0, np.maximum(0.0, Z_OFFSET + Z_SCALE * zs)), np.nan
            )
        w = c.fast_weight
        value = np.where(both, w * a_fast + (1.0 - w) * a_slow, np.where(ok, a_fast, np.nan))
        conf = np.where(ok, np.where(both, score, score * c.hr_only_confidence), 0.0)
        conf = np.where(~np.isnan(fast_all) & ~ok, score, conf)
        basis = np.where(both, "hr+hrv", np.where(ok, "hr_only", "unknown"))

    rr_acc = np.full(n_in, np.nan)
    rr_acc[idx] = screened / 1000.0
    # final state: judged beats as the detector left them, the others as they entered
    fin = np.full(n_in, np.nan)
    fin[idx] = np.where(cor.judged, cor.final, screened) / 1000.0
    fin_corr = np.where(cor.judged, cor.corrected, flagged)
    corrected = np.zeros(n_in, dtype=np.bool_)
    corrected[idx] = fin_corr
    prov = np.zeros(n_in, dtype=np.bool_)
    prov[idx] = flagged
    artifact: list[str | None] = [None] * n_in
    for p_ in np.flatnonzero(fin_corr).tolist():
        artifact[int(idx[p_])] = cor.artifact[p_] if cor.judged[p_] else PROVISIONAL
    freq = _frequency(ta, screened, cor, seg, idx, c, paced_hz) if frequency else []
    return OfflineResult(
        t=tt,
        accepted=acc,
        rr_ms=rr_acc,
        final_rr_ms=fin,
        corrected=corrected,
        artifact=artifact,
        fast_hr_bpm=fast_all,
        short=s_short,
        long=s_long,
        quality=score,
        corrected_share=corrected_share,
        rejected_share=rejected_share,
        hrv_available=hrv_ok,
        arousal=value,
        arousal_fast=a_fast,
        arousal_slow=a_slow,
        confidence=conf,
        basis=basis,
        provisional=prov,
        frequency=freq,
    )


def _frequency(
    ta: F64,
    raw: I64,
    cor: _Corrections,
    seg: I64,
    idx: npt.NDArray[np.intp],
    c: SignalConfig,
    paced_hz: float | None,
) -> list[tuple[int, FrequencyDomain]]:
    out: list[tuple[int, FrequencyDomain]] = []
    hz = c.paced_breathing_hz if paced_hz is None else paced_hz
    last_t: float | None = None
    for j in range(len(ta)):
        if j == seg[j]:
            last_t = None
        t = float(ta[j])
        if t - float(ta[seg[j]]) < MIN_SPAN_S:
            continue
        if last_t is not None and t - last_t < c.frequency_cadence_s:
            continue
        last_t = t
        lo = max(int(seg[j]), int(np.searchsorted(ta, t - c.frequency_window_s, side="right")))
        d = int(cor.known_upto[j])
        vals = np.concatenate((cor.final[lo : max(lo, d + 1)], raw[max(lo, d + 1) : j + 1]))
        xs = [v / 1000.0 for v in vals.tolist()]
        fd = frequency_domain(
            t, c.frequency_window_s, ta[lo : j + 1], xs, hz, c.coherence_half_width_hz
        )
        out.append((int(idx[j]), fd))
    return out


def _no_artifacts(c: SignalConfig) -> SignalConfig:
    from dataclasses import replace

    return replace(c, artifact_correction=False)
