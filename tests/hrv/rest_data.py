"""Resting stretches of the shared recordings (../shared/data, PROVENANCE.md) and what the arousal
estimate does over them after a calibration at their start.

Used by `test_baseline_rest.py`; `python -m tests.hrv.rest_data` prints the table of
docs/arousal.md ("Baseline": "At rest after calibration").

Each rest is calibrated as the service does it: the calibration starts at the first beat and lasts
the protocol's `calibration_s` (clean-beat minimum scaled as `SessionCore` scales it), then the
rest that follows, up to 15 minutes, is scored: the median arousal, and the pauses a session
exposing the client all along would have made with the protocol's thresholds (the session's own
dwell rule, `ExposureSession`; monitoring-lost pauses of gappy wrist PPG are not arousal pauses
and are not counted).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from biofeedback.errors import CalibrationError
from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    Consent,
    ExposureProtocol,
    ExposureSession,
    OfferStep,
    Role,
    Step,
    Thresholds,
    Tick,
    load_protocol,
)
from biofeedback.service.core import MIN_CALIBRATION_BEATS
from biofeedback.signal import Baseline, SignalConfig, SignalPipeline, compute_offline
from tests.support import REPO_ROOT

F64 = npt.NDArray[np.float64]
REST_SCORED_S = 900.0  # "a 15-minute rest"


@dataclass(frozen=True, slots=True)
class Rest:
    """One recording's resting stretch: beats (t, rr) from its start to `end_t`."""

    name: str
    what: str
    t: F64
    rr: F64
    end_t: float
    config: SignalConfig  # E4 wrist IBIs are device-filtered: no artifact correction there


@dataclass(frozen=True, slots=True)
class RestScore:
    """What the estimate did over the rest after one calibration."""

    name: str
    calibration_s: float
    baseline: Baseline | None
    refused: str | None  # the quality gate's reason when the calibration was refused
    scored_s: float
    median: float  # NaN when refused or never known
    known_share: float
    pauses: int


def _ecg_rr(ecg: npt.ArrayLike, fs: float) -> tuple[F64, F64]:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit2 chatter about its own defaults
        _, info = nk.ecg_peaks(np.asarray(ecg, dtype=float), sampling_rate=fs)
    peaks = np.asarray(info["ECG_R_Peaks"], dtype=float)
    return peaks[1:] / fs, np.diff(peaks) / fs * 1000.0


def _series(name: str, what: str, t: F64, rr: F64, end_t: float | None = None) -> Rest:
    end = float(t[-1]) if end_t is None else end_t
    keep = t <= end
    return Rest(name, what, t[keep], rr[keep], end, SignalConfig())


def rests(root: Path) -> Iterator[Rest]:
    """Every shared recording with a documented rest, as RR series (PROVENANCE.md)."""
    import pandas as pd
    import wfdb

    rec = wfdb.rdrecord(
        str(root / "drivedb-17" / "drive17a"), channel_names=["ECG"], smooth_frames=False
    )
    fs = rec.fs * rec.samps_per_frame[0]
    t, rr = _ecg_rr(rec.e_p_signal[0], fs)
    # marker at 15.95 min ends the initial rest (Healey & Picard 2005)
    yield _series("drivedb-17a", "ECG, rest before driving", t, rr, 15.95 * 60.0)
    t, rr = _ecg_rr(np.loadtxt(root / "spider-ecg" / "ECG3.txt"), 100.0)
    # sample 0 is 14:41:18.39, CLIP-DEMO starts 14:47:25 (Triggers.txt)
    yield _series("spider-ecg 3", "ECG, baseline before the clips", t, rr, 366.6)
    for n in ("5min", "8min"):
        df = pd.read_csv(root / "neurokit" / f"bio_resting_{n}_100hz.csv")
        t, rr = _ecg_rr(df["ECG"].to_numpy(), 100.0)
        yield _series(f"neurokit resting {n}", "ECG, rest", t, rr)
    df = pd.read_csv(root / "polar-h10-ecg-pvc" / "polar_h10.csv")
    rr = df["rr_ms"].dropna().to_numpy(dtype=float)
    yield _series("Polar H10", "strap RR, rest, frequent PVCs", np.cumsum(rr) / 1000.0, rr)
    nn = np.loadtxt(root / "hrvanalysis-aura" / "test_nn_intervals.txt")
    yield _series("hrv-analysis", "NN series", np.cumsum(nn) / 1000.0, nn)
    for n in ("Short", "Long"):
        nn = np.load(root / "pyhrv" / f"SampleNNISeries{n}.npy").astype(float)
        yield _series(f"pyHRV {n.lower()}", "NSRDB NN series", np.cumsum(nn) / 1000.0, nn)
    yield from stress_predict_rests(root / "stress-predict")


def stress_predict_rests(root: Path) -> Iterator[Rest]:
    """Stress-Predict: each person's rest before the first labelled task (wrist PPG IBIs)."""
    import pandas as pd

    labels = pd.read_csv(root / "Improved_All_Combined_hr_rsp_binary.csv")
    no_correction = SignalConfig(artifact_correction=False)  # E4 IBIs are device-filtered
    for sdir in sorted(root.glob("S[0-9][0-9]")):
        lab = labels[labels.Participant == int(sdir.name[1:])]
        if lab.empty:
            continue
        with (sdir / "IBI.csv").open() as fh:
            start = float(fh.readline().split(",")[0])
        ibi = pd.read_csv(sdir / "IBI.csv", header=None, skiprows=1).to_numpy(float)
        lt, ll = lab["Time(sec)"].to_numpy(float), lab["Label"].to_numpy()
        t0 = float(lt.min())
        t, rr = start + ibi[:, 0] - t0, ibi[:, 1] * 1000.0
        end = float(lt[ll == 1].min()) - t0
        keep = (t >= 0.0) & (t <= end)
        yield Rest(
            f"Stress-Predict {sdir.name}",
            "wrist PPG, rest before the first task",
            t[keep],
            rr[keep],
            end,
            no_correction,
        )


def default_protocol() -> ExposureProtocol:
    """The defaults: a 180 s calibration, upper 70 held 10 s."""
    return ExposureProtocol(name="defaults", steps=(Step("rest", "sit", 60.0),))


def demo_protocol() -> ExposureProtocol:
    """config/protocols/demo.toml: 60 s calibration, upper 60 held 5 s."""
    return load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml")


def calibrate(rest: Rest, calibration_s: float) -> Baseline:
    """A calibration from the rest's first beat, as the service's SessionCore runs it."""
    c = rest.config
    min_beats = max(
        MIN_CALIBRATION_BEATS, round(c.calibration_min_beats * calibration_s / c.calibration_s)
    )
    cfg = replace(c, calibration_s=calibration_s, calibration_min_beats=min_beats)
    p = SignalPipeline(cfg)
    t0 = float(rest.t[0])
    end = t0 + calibration_s
    p.start_calibration(t0)
    for a, b in zip(rest.t.tolist(), rest.rr.tolist(), strict=True):
        if a > end:
            break
        p.push_rr(a, b)
    return p.finish_calibration(end, rest.name.replace(" ", "-"))


def count_pauses(t: F64, value: F64, confidence: F64, thresholds: Thresholds) -> int:
    """Arousal pauses an exposing session makes over these samples (its own dwell rule).

    After a pause a fresh exposing session takes over once arousal is below `upper` again, so
    each held excursion counts once. Ticks every second complete a dwell between samples.
    """
    th = replace(thresholds, max_step_s=1e9)  # the step-length limit is not what is scored
    proto = ExposureProtocol(name="rest", steps=(Step("rest", "sit", 1e9),), thresholds=th)

    def exposing(at: float) -> ExposureSession:
        s = ExposureSession(proto, t=at, client_id="rest", needs_calibration=True)
        s.handle(ArousalSample(at, 0.0))
        s.handle(CalibrationDone(at, ok=True))
        s.handle(OfferStep(at, Role.THERAPIST))
        s.handle(Consent(at, Role.CLIENT))
        return s

    pauses = 0
    s: ExposureSession | None = None
    last = -math.inf
    for a, v, c in zip(t.tolist(), value.tolist(), confidence.tolist(), strict=True):
        known = math.isfinite(v)
        if s is None:
            if known and v < thresholds.upper:
                s, last = exposing(a), a
            continue
        while a - last > 1.0:  # time passes between beats
            last += 1.0
            s.handle(Tick(last))
        events = s.handle(ArousalSample(a, v if known else None, c if known else 0.0))
        last = a
        for e in events:
            if e.kind == "transition" and e.to_state.value == "paused":
                if e.values.get("pause_reason") == "arousal":
                    pauses += 1
                s = None
                break
    return pauses


def score(rest: Rest, protocol: ExposureProtocol, *, before: bool = False) -> RestScore:
    """Calibrate at the rest's start with `protocol`'s length, score the rest that follows.

    `before=True` scores the baseline as it was computed before issue 11 (means and SDs of the
    per-beat values) from the same calibration, for the comparison in docs/arousal.md.
    """
    cal = protocol.calibration_s
    try:
        base = calibrate(rest, cal)
    except CalibrationError as exc:
        return RestScore(rest.name, cal, None, str(exc), 0.0, math.nan, 0.0, 0)
    start = float(rest.t[0]) + cal
    if before:
        plain = compute_offline(rest.t, rest.rr, rest.config)
        ok = plain.hrv_available & (plain.long.rmssd_ms > 0)
        ln = np.log(np.where(ok, plain.long.rmssd_ms, 1.0))
        base, _ = _placement_baselines(rest, float(rest.t[0]), cal, plain.fast_hr_bpm, ln, ok)
    off = compute_offline(rest.t, rest.rr, rest.config, base)
    stop = min(rest.end_t, start + REST_SCORED_S)
    r = (rest.t > start) & (rest.t <= stop)
    a = off.arousal[r]
    known = np.isfinite(a)
    return RestScore(
        rest.name,
        cal,
        base,
        None,
        stop - start,
        float(np.median(a[known])) if known.any() else math.nan,
        float(known.mean()) if len(a) else 0.0,
        count_pauses(rest.t[r], a, off.confidence[r], protocol.thresholds),
    )


def longer_than(rest: Rest, calibration_s: float) -> bool:
    """Whether the rest goes on after a calibration at its start (what the targets apply to)."""
    return rest.end_t - float(rest.t[0]) > calibration_s


def table(root: Path) -> str:
    """The Markdown table of docs/arousal.md: every rest longer than the calibration, at the
    defaults and with the demo protocol, before this change and now."""
    d, m = default_protocol(), demo_protocol()
    lines = [
        f"| recording | rest scored (defaults / demo) | defaults ({d.calibration_s:.0f} s; "
        f"{d.thresholds.upper:g} for {d.thresholds.dwell_s:g} s): median arousal, pauses (before "
        f"-> now) | demo ({m.calibration_s:.0f} s; {m.thresholds.upper:g} for "
        f"{m.thresholds.dwell_s:g} s): median arousal, pauses (before -> now) |",
        "|---|---|---|---|",
    ]
    refused: dict[str, list[str]] = {"defaults": [], "demo": []}
    no_rest: list[str] = []
    for rest in rests(root):
        cells, spans = [], []
        for label, proto in (("defaults", d), ("demo", m)):
            if not longer_than(rest, proto.calibration_s):
                if label == "defaults":
                    no_rest.append(rest.name)
                cells.append("rest not longer than the calibration")
                spans.append("-")
                continue
            now = score(rest, proto)
            if now.refused is not None:
                refused[label].append(rest.name)
                cells.append("calibration refused: " + now.refused.split(":")[0])
                spans.append("-")
                continue
            was = score(rest, proto, before=True)
            cells.append(f"{was.median:.1f}, {was.pauses} -> **{now.median:.1f}, {now.pauses}**")
            spans.append(f"{now.scored_s / 60.0:.1f}")
        if rest.name.startswith("Stress-Predict") and all(
            c.startswith(("calibration refused", "rest not")) for c in cells
        ):
            continue  # summarised below
        lines.append(
            f"| {rest.name} ({rest.what}) | {' / '.join(spans)} min | {cells[0]} | {cells[1]} |"
        )
    sp = [r for r in refused["defaults"] if r.startswith("Stress-Predict")]
    spd = [r for r in refused["demo"] if r.startswith("Stress-Predict")]
    lines.append(
        f"| Stress-Predict, the others | | {len(sp)} calibrations refused (wrist PPG dropouts, too "
        f"few clean beats); no rest before the IBIs start: "
        f"{', '.join(n.split()[-1] for n in no_rest if n.startswith('Stress')) or 'none'} | "
        f"{len(spd)} refused |"
    )
    return "\n".join(lines)


def _placement_baselines(
    rest: Rest, start: float, calibration_s: float, fast: F64, ln: F64, ok: npt.NDArray[np.bool_]
) -> tuple[Baseline, Baseline]:
    """(before this change, now) baselines of a calibration over [start, start + calibration_s],
    from the per-beat values the pipeline computes (the fast heart rate, the 60 s ln RMSSD)."""
    import statistics

    from biofeedback.signal.baseline import hr_statistics, ln_rmssd_statistics

    end = start + calibration_s
    m = (rest.t >= start) & (rest.t <= end)
    ts, fs = rest.t[m].tolist(), fast[m].tolist()
    mh = m & ok
    tl, ls = rest.t[mh].tolist(), ln[mh].tolist()
    old = Baseline(
        rest.name, end, calibration_s, len(ts), 0.0,
        statistics.fmean(fs), statistics.stdev(fs),
        statistics.fmean(ls), statistics.stdev(ls), None,
    )  # fmt: skip
    w = rest.config.long_window_s
    hc, hs, _ = hr_statistics(ts, fs, start, end, w)
    lc, lsd, _ = ln_rmssd_statistics(tl, ls, start, end, w)
    new = Baseline(rest.name, end, calibration_s, len(ts), 0.0, hc, hs, lc, lsd, None)
    return old, new


def placement_sweep(root: Path, step_s: float = 30.0) -> str:
    """Where the calibration falls: the calibration placed every `step_s` along each long ECG or
    strap rest, the following rest scored (at least 5 min of it). Before and after this change.

    The calmest-minute bias is the spread of these outcomes: a method that represents rest keeps
    the median near 25 and pauses nothing wherever in the rest its calibration happens to fall.
    """
    lines = [
        "| protocol | baseline | placements | median outside 15-35 | with a pause | median range |",
        "|---|---|---|---|---|---|",
    ]
    for proto in (default_protocol(), demo_protocol()):
        cal = proto.calibration_s
        out: dict[str, list[tuple[float, int]]] = {"before": [], "now": []}
        for rest in rests(root):
            if rest.name.startswith("Stress-Predict"):
                continue  # wrist PPG: most placements fail the quality gate
            base = compute_offline(rest.t, rest.rr, rest.config)
            ok = base.hrv_available & (base.long.rmssd_ms > 0)
            ln = np.log(np.where(ok, base.long.rmssd_ms, 1.0))
            s = float(rest.t[0])
            while s + cal + 300.0 <= rest.end_t:
                stop = min(rest.end_t, s + cal + REST_SCORED_S)
                r = (rest.t > s + cal) & (rest.t <= stop)
                for label, b in zip(
                    ("before", "now"),
                    _placement_baselines(rest, s, cal, base.fast_hr_bpm, ln, ok),
                    strict=True,
                ):
                    off = compute_offline(rest.t, rest.rr, rest.config, b)
                    a = off.arousal[r]
                    pauses = count_pauses(rest.t[r], a, off.confidence[r], proto.thresholds)
                    out[label].append((float(np.nanmedian(a)), pauses))
                s += step_s
        for label, rows in out.items():
            med = np.array([x[0] for x in rows])
            paused = np.array([x[1] > 0 for x in rows])
            outside = (med < 15.0) | (med > 35.0)
            lines.append(
                f"| {proto.name} ({cal:.0f} s; {proto.thresholds.upper:g} for "
                f"{proto.thresholds.dwell_s:g} s) | {label} | {len(rows)} | {outside.mean():.0%} | "
                f"{paused.mean():.0%} | {med.min():.1f}-{med.max():.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from tests.support import require_shared_data

    data = require_shared_data()
    print(placement_sweep(data) if "--sweep" in sys.argv else table(data))
