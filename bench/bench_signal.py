"""Signal benchmarks: the live path per beat, offline throughput, memory, side by side with the
previous (neurokit2-based) artifact stage run in the same invocation.

Run: .venv/bin/python bench/bench_signal.py [--quick] [--old REV]
Prints a Markdown table for docs/benchmarks.md ("## Signal"). Numbers depend on machine load:
CPU time (`process_time`) is reported next to wall time because the machine is shared.
`--old REV` (default: the commit before the native detector) runs that commit's pipeline from
`git archive` in a subprocess for the "previous stage" rows.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biofeedback.signal import (
    Baseline,
    BeatUpdate,
    SignalConfig,
    SignalPipeline,
    compute_offline,
)
from biofeedback.signal.synthetic import fast_rr_series, rr_series

BASELINE = Baseline("bench", 0.0, 120.0, 150, 0.0, 75.0, 3.0, 3.6, 0.15, 800.0)
CORE = SignalConfig(artifact_correction=False, frequency_cadence_s=1e12)


def per_beat_us(
    cfg: SignalConfig, t: np.ndarray, rr: np.ndarray, repeats: int = 3
) -> tuple[float, float]:
    """Best-of-N (wall, CPU) cost of push_rr per beat in µs, pipeline with a baseline.

    CPU time (time.process_time) is reported too because the machine is shared: wall time
    includes waiting for a core.
    """
    best_wall = best_cpu = float("inf")
    tl, rl = t.tolist(), rr.tolist()
    for _ in range(repeats):
        p = SignalPipeline(cfg, BASELINE)
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        for a, b in zip(tl, rl, strict=True):
            p.push_rr(a, b)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best_wall = min(best_wall, wall / len(tl) * 1e6)
        best_cpu = min(best_cpu, cpu / len(tl) * 1e6)
    return best_wall, best_cpu


def neurokit_per_beat(
    t: np.ndarray, rr: np.ndarray, n_beats: int, repeats: int = 3
) -> tuple[float, float, float]:
    """(wall ms, CPU ms) per beat to recompute both windows with nk.hrv_time, and the worst
    relative difference to the streaming values.

    The streaming path delivers the 30 s and the 60 s window per beat, so the per-beat batch
    equivalent is two `hrv_time` calls. Best of `repeats` passes, like the streaming figure.
    """
    import neurokit2 as nk

    p = SignalPipeline(CORE, BASELINE)
    tl, rl = t.tolist(), rr.tolist()
    for a, b in zip(tl[:200], rl[:200], strict=True):
        p.push_rr(a, b)
    windows = []
    for a, b in zip(tl[200 : 200 + n_beats], rl[200 : 200 + n_beats], strict=True):
        u = p.push_rr(a, b)
        assert u.short is not None
        assert u.long is not None
        windows.append((np.asarray(p.window_values_ms("short")), u.short))
        windows.append((np.asarray(p.window_values_ms("long")), u.long))
    best = best_cpu = float("inf")
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            frames = [nk.hrv_time({"RRI": w}) for w, _ in windows]
            best = min(best, (time.perf_counter() - t0) / n_beats * 1e3)
            best_cpu = min(best_cpu, (time.process_time() - c0) / n_beats * 1e3)
    for df, (_, td) in zip(frames, windows, strict=True):
        for ours, key in (
            (td.rmssd_ms, "RMSSD"),
            (td.sdnn_ms, "SDNN"),
            (td.pnn50_pct, "pNN50"),
            (td.mean_nn_ms, "MeanNN"),
        ):
            ref = float(df[f"HRV_{key}"].iloc[0])
            assert ours is not None
            worst = max(worst, abs(ours - ref) / abs(ref) if ref else abs(ours))
    return best, best_cpu, worst


def component_costs(t: np.ndarray, rr: np.ndarray) -> tuple[float, float, float, float]:
    """(µs CPU per native detector push, ms per spectrum on a 120 s window in closed form, the
    same on the 100 Hz grid (`on_grid=True`, the implementation before the closed form), ms per
    spectrum the previous way: scipy interp1d + welch)."""
    from scipy.interpolate import interp1d
    from scipy.signal import welch

    from biofeedback.signal.artifacts import Detector
    from biofeedback.signal.frequency import frequency_domain

    x = np.rint(rr * 1000).astype(np.int64).tolist()
    best = float("inf")
    for _ in range(3):
        det = Detector()
        c0 = time.process_time()
        for v in x:
            det.push(v)
        best = min(best, (time.process_time() - c0) / len(x) * 1e6)
    spec = []
    span = int(t[-1] - t[0]) - 121
    for lo in range(0, min(span, 1200), 47):  # windows of the lengths the stream meets
        sel = (t >= t[0] + lo) & (t <= t[0] + lo + 120)
        spec.append((t[sel], rr[sel]))

    def old(ts: np.ndarray, xs: np.ndarray) -> None:
        grid = np.arange(ts[0], ts[-1] + 0.01, 0.01)
        f = interp1d(ts, xs, kind="quadratic", bounds_error=False, fill_value=(xs[0], xs[-1]))
        y = f(grid) - np.mean(f(grid))
        n = len(y) // 2
        welch(y, fs=100.0, window="hann", nperseg=n, nfft=2 * n, detrend=False)

    out = []
    for fn in (
        lambda ts, xs: frequency_domain(float(ts[-1]), 120.0, ts, xs, 0.1, 0.015),
        lambda ts, xs: frequency_domain(float(ts[-1]), 120.0, ts, xs, 0.1, 0.015, on_grid=True),
        old,
    ):
        fn(*spec[0])
        c0 = time.process_time()
        for ts, xs in spec:
            fn(ts, xs)
        out.append((time.process_time() - c0) / len(spec) * 1e3)
    return best, out[0], out[1], out[2]


def guided_session(seed: int) -> list[tuple[float, float]]:
    """The simulated strap: 5 min rest, 3 min exposure, 4 min guided breathing at 6/min in
    phase with the pacer, 3 min rest; (t, RR ms) per beat."""
    from biofeedback.devices.physiology import Physiology

    ph = Physiology(start_t=1000.0, seed=seed)
    beats = []
    for until, exposure, pacer in (
        (1300.0, 0.0, None),
        (1480.0, 0.8, None),
        (1720.0, 0.2, 6.0),
        (1900.0, 0.0, None),
    ):
        ph.set_stimulus(exposure=exposure, paced_breathing_bpm=pacer, pacer_t0=1480.0)
        beats += ph.beats_until(until)
    return [(b.t, b.rr_s * 1000.0) for b in beats]


def cadence_effect(
    cadence: float, seeds: tuple[int, ...] = (1, 2, 3)
) -> list[tuple[str, str, str]]:
    """What a spectrum every `cadence` s changes against one every second, on guided sessions:
    the newest value available at each beat (`latest_frequency`), the mean coherence over the
    guidance bout (what the recording's report shows) and when coherence first reaches 0.5."""
    d_coh: list[float] = []
    d_next: list[float] = []  # between consecutive spectra a second apart: the estimator's jitter
    d_rate: list[float] = []
    bout: list[str] = []
    delay: list[float] = []
    for seed in seeds:
        beats = guided_session(seed)
        runs = []
        for cad in (1.0, cadence):
            p = SignalPipeline(SignalConfig(frequency_cadence_s=cad))
            p.set_paced_breathing(0.1)
            latest, rows = [], []
            for a, b in beats:
                u = p.push_rr(a, b)
                if u.frequency is not None:
                    rows.append(u.frequency)
                latest.append(p.latest_frequency)
            runs.append((latest, rows))
        (ref, rows1), (lat, rows) = runs
        coh1 = [r.coherence for r in rows1 if r.coherence is not None]
        d_next += np.abs(np.diff(coh1)).tolist()
        for x, y in zip(ref, lat, strict=True):
            if x is None or y is None or x.coherence is None or y.coherence is None:
                continue
            d_coh.append(abs(x.coherence - y.coherence))
            if x.breathing_rate_bpm is not None and y.breathing_rate_bpm is not None:
                d_rate.append(abs(x.breathing_rate_bpm - y.breathing_rate_bpm))
        means = []
        for rs in (rows1, rows):
            g = [r.coherence for r in rs if 1480.0 <= r.t < 1720.0 and r.coherence is not None]
            means.append(f"{np.mean(g):.3f} ({len(g)})")
        bout.append(" vs ".join(means))
        firsts = [
            next(r.t for r in rs if r.t >= 1480.0 and (r.coherence or 0.0) >= 0.5)
            for rs in (rows1, rows)
        ]
        delay.append(firsts[1] - firsts[0])
    name = f"guided sessions (simulated strap, seeds {', '.join(map(str, seeds))})"
    return [
        (
            f"{name}: newest coherence, spectrum every {cadence:g} s vs every 1 s, absolute"
            " difference p95 / max",
            f"{np.percentile(d_coh, 95):.3f} / {max(d_coh):.3f}",
            "-",
        ),
        (
            f"{name}: coherence of consecutive spectra a second apart, absolute difference"
            " p95 / max",
            f"{np.percentile(d_next, 95):.3f} / {max(d_next):.3f}",
            "-",
        ),
        (
            f"{name}: newest breathing rate, same, absolute difference p95",
            f"{np.percentile(d_rate, 95):.2f} /min",
            "-",
        ),
        (
            f"{name}: mean coherence over the 4 min guidance bout (spectra), 1 s vs {cadence:g} s",
            "; ".join(bout),
            "-",
        ),
        (
            f"{name}: coherence first >= 0.5 after guidance starts, later by",
            ", ".join(f"{d:.0f} s" for d in delay),
            "-",
        ),
    ]


def offline_rate(n: int, artifacts: bool, repeats: int = 3) -> tuple[float, float]:
    """(wall, CPU) beats/s of compute_offline over `n` beats, best of `repeats`."""
    t, rr = fast_rr_series(n, seed=1)
    compute_offline(t[:2000], rr[:2000], None, BASELINE, artifacts=artifacts)
    best = best_cpu = float("inf")
    for _ in range(repeats):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        compute_offline(t, rr, None, BASELINE, artifacts=artifacts)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n / best, n / best_cpu


def neurokit_whole_series(n: int) -> tuple[float, float]:
    """(wall, CPU) beats/s of neurokit2's kubios detector over one whole series of `n` beats."""
    import neurokit2 as nk

    _, rr = fast_rr_series(n, seed=1)
    peaks = np.concatenate(([0], np.cumsum(np.rint(rr * 1000).astype(np.int64))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk.signal_fixpeaks(peaks[:2000], sampling_rate=1_000_000, iterative=False, method="kubios")
        c0, t0 = time.process_time(), time.perf_counter()
        nk.signal_fixpeaks(peaks, sampling_rate=1_000_000, iterative=False, method="kubios")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, n / cpu


_OLD = """
import sys, time, json
import numpy as np
from biofeedback.signal import Baseline, SignalConfig, SignalPipeline, compute_offline
from biofeedback.signal.synthetic import fast_rr_series, rr_series
hours, n_off = json.loads(sys.argv[1])
B = Baseline("bench", 0.0, 120.0, 150, 0.0, 75.0, 3.0, 3.6, 0.15, 800.0)
t, rr = rr_series(3600 * hours, seed=7, hr_bpm=75.0)
tl, rl = t.tolist(), rr.tolist()
out = {}
cfgs = (("full", SignalConfig()), ("no_spectrum", SignalConfig(frequency_cadence_s=1e12)))
for name, cfg in cfgs:
    best = 1e9
    for _ in range(2):
        p = SignalPipeline(cfg, B)
        c0 = time.process_time()
        for a, b in zip(tl, rl):
            p.push_rr(a, b)
        best = min(best, (time.process_time() - c0) / len(tl) * 1e6)
    out[name] = best
t2, rr2 = fast_rr_series(n_off, seed=1)
c0, t0 = time.process_time(), time.perf_counter()
compute_offline(t2, rr2, None, B)
out["offline"] = [n_off / (time.perf_counter() - t0), n_off / (time.process_time() - c0)]
print(json.dumps(out))
"""


def old_stage(rev: str, hours: float, n_off: int) -> dict[str, object]:
    """The previous pipeline (neurokit2 every 8 beats on 64, old screen) from `git archive`."""
    import json
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.run(
            ["git", "archive", rev, "biofeedback"], cwd=root, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
        out = subprocess.run(
            [sys.executable, "-c", _OLD, json.dumps([hours, n_off])],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return dict(json.loads(out))


def clean_series_effect() -> list[tuple[str, str, str]]:
    """Normal beats corrected and live 60 s RMSSD vs the raw window on clean series."""
    from biofeedback.signal.synthetic import paced_breathing_series

    raw_cfg = SignalConfig(artifact_correction=False, provisional_threshold=0.0)
    n = corrected = screened = within = windows = 0
    for seed, hr in enumerate((55.0, 65.0, 80.0)):
        for bpm in (4.5, 5.0, 6.0, 7.0):
            t, rr = paced_breathing_series(bpm, 900, hr_bpm=hr, noise_ms=8.0, jitter=0.2, seed=seed)
            off = compute_offline(t, rr)
            raw = compute_offline(t, rr, raw_cfg)
            n += len(t)
            corrected += sum(a not in (None, "provisional") for a in off.artifact)
            screened += int(off.provisional.sum())
            late = (t - t[0]) > 60.0
            ratio = off.long.rmssd_ms[late] / raw.long.rmssd_ms[late]
            within += int(np.sum(np.abs(ratio - 1.0) <= 0.05))
            windows += int(late.sum())
    return [
        (
            f"paced breathing 4.5-7/min, swing 6 -> 30 bpm, 12 x 15 min ({n} beats):"
            " normal beats corrected / screened at intake",
            f"{100 * corrected / n:.2f} % / {100 * screened / n:.2f} %",
            "<= 0.2 %",
        ),
        (
            "same: live 60 s RMSSD within 5 % of `hrv_time` on the raw window",
            f"{100 * within / windows:.2f} % of {windows} windows",
            ">= 99 %",
        ),
    ]


def memory_per_client(t: np.ndarray, rr: np.ndarray, clients: int = 5) -> tuple[float, float]:
    """(retained KiB per client after an hour of beats, peak KiB per client while feeding)."""
    warm = SignalPipeline(CORE, BASELINE)
    for a, b in zip(t[:300].tolist(), rr[:300].tolist(), strict=True):
        warm.push_rr(a, b)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    ps = [SignalPipeline(replace(CORE, artifact_correction=True), BASELINE) for _ in range(clients)]
    tl, rl = t.tolist(), rr.tolist()
    keep = []
    for a, b in zip(tl, rl, strict=True):
        for p in ps:
            keep.append(p.push_rr(a, b))
            keep.clear()  # the service publishes and drops each update
    gc.collect()
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (cur - base) / clients / 1024, (peak - base) / clients / 1024


def _rmssd(ups: list[BeatUpdate], which: str) -> np.ndarray:
    out = []
    for u in ups:
        td = getattr(u, which)
        out.append(np.nan if td is None or td.rmssd_ms is None else td.rmssd_ms)
    return np.asarray(out)


def excursion(t: np.ndarray, rr: np.ndarray, cfg: SignalConfig) -> dict[str, float]:
    """Live RMSSD vs RMSSD of the final judged series at the same beat (after the first
    minute): worst ratio up and down per window, and the displayed instantaneous HR range."""
    p = SignalPipeline(cfg)
    ups = [p.push_rr(a, b) for a, b in zip(t.tolist(), rr.tolist(), strict=True)]
    fin = {u.beat.t: u.beat.rr_ms for u in ups if u.beat is not None}
    for u in ups:
        fin.update((b.t, b.rr_ms) for b in u.revised)
    ft = sorted(fin)
    q = SignalPipeline(replace(cfg, artifact_correction=False, provisional_threshold=0.0))
    ref = [q.push_rr(a, fin[a]) for a in ft]
    late = (t - t[0]) > 60.0
    out = {}
    for w in ("short", "long"):
        live, judged = _rmssd(ups, w)[late], _rmssd(ref, w)[late]
        i = int(np.nanargmax(live / judged))
        out[w] = float(live[i] / judged[i])
        out[w + "_ms"] = float(live[i])
        out[w + "_judged_ms"] = float(judged[i])
        out[w + "_low"] = float(np.nanmin(live / judged))
    hr = np.asarray([np.nan if u.hr_bpm is None else u.hr_bpm for u in ups])[late]
    out["hr_lo"], out["hr_hi"] = float(np.nanmin(hr)), float(np.nanmax(hr))
    return out


def screen_effect() -> list[tuple[str, str, str]]:
    """The intake screen on the simulated strap (15 min, isolated ectopic pairs): live RMSSD vs
    the final judged series, screen off -> on."""
    from biofeedback.devices.physiology import Physiology

    ph = Physiology(start_t=1000.0, seed=1)
    beats = ph.beats_until(1900.0)
    t = np.asarray([b.t for b in beats])
    rr = np.asarray([b.rr_s * 1000.0 for b in beats])
    name = "simulated strap (15 min, seed 1)"
    on = excursion(t, rr, SignalConfig())
    off = excursion(t, rr, SignalConfig(provisional_threshold=0.0))
    rows = []
    for w, label in (("short", "30 s"), ("long", "60 s")):
        rows.append(
            (
                f"{name}: worst live / judged RMSSD {label}, screen off -> on",
                f"{off[w]:.2f} ({off[w + '_ms']:.0f} vs {off[w + '_judged_ms']:.0f} ms)"
                f" -> {on[w]:.2f} ({on[w + '_ms']:.0f} vs {on[w + '_judged_ms']:.0f} ms)",
                "-",
            )
        )
        rows.append(
            (
                f"{name}: lowest live / judged RMSSD {label}, screen off -> on",
                f"{off[w + '_low']:.2f} -> {on[w + '_low']:.2f}",
                "-",
            )
        )
    rows.append(
        (
            f"{name}: displayed instantaneous HR range, screen off -> on",
            f"{off['hr_lo']:.0f}-{off['hr_hi']:.0f} -> {on['hr_lo']:.0f}-{on['hr_hi']:.0f} bpm",
            "-",
        )
    )
    return rows


DEFAULT_OLD = "683a02aff6dad53b92e5fee8c672769fe50738cc"  # before the native detector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--old", default=DEFAULT_OLD, help="git revision of the previous stage")
    args = ap.parse_args()
    hours = 0.25 if args.quick else 1.0
    t, rr = rr_series(3600 * hours, seed=7, hr_bpm=75.0)
    n_nk = 100 if args.quick else 400
    day = 108_000
    n_off = 20_000 if args.quick else day  # 24 h at 800 ms

    core_us, core_cpu = per_beat_us(CORE, t, rr, repeats=7)  # best of 7: the machine is shared
    _, noscreen_cpu = per_beat_us(replace(CORE, provisional_threshold=0.0), t, rr, repeats=7)
    ect = rr.copy()
    ect[100::50] *= 0.65  # 2 % premature beats: the screen replaces values too
    _, ect_cpu = per_beat_us(CORE, t, ect, repeats=7)
    live = replace(CORE, artifact_correction=True)
    _, live_cpu = per_beat_us(live, t, rr, repeats=5)
    cadences = {}
    default_cadence = SignalConfig().frequency_cadence_s
    for cad in sorted({1.0, 5.0, 10.0, 15.0, 20.0, default_cadence}):
        cadences[cad] = per_beat_us(SignalConfig(frequency_cadence_s=cad), t, rr, repeats=3)
    nk_ms, nk_cpu_ms, worst = neurokit_per_beat(t, rr, n_nk)
    det_us, spec_ms, spec_grid_ms, spec_old_ms = component_costs(t, rr)
    off_core, off_core_cpu = offline_rate(n_off, artifacts=False)
    off_full, off_full_cpu = offline_rate(n_off, artifacts=True)
    nk_whole, nk_whole_cpu = neurokit_whole_series(n_off)
    old = old_stage(args.old, hours, 5_000 if args.quick else 20_000)
    mem_kib, peak_kib = memory_per_client(t, rr)
    old_off = old["offline"]
    assert isinstance(old_off, list)
    old_full, old_bare = old["full"], old["no_spectrum"]
    assert isinstance(old_full, float)
    assert isinstance(old_bare, float)

    rows = [
        (
            "streaming time domain (30 s + 60 s) + quality + arousal, per beat (wall)",
            f"{core_us:.1f} µs",
            "<= 20 µs",
        ),
        ("same, CPU time of the process (`process_time`)", f"{core_cpu:.1f} µs", "<= 20 µs"),
        (
            "same (CPU), intake screen off (`provisional_threshold = 0`)",
            f"{noscreen_cpu:.1f} µs",
            "-",
        ),
        ("same (CPU), screen on, series with 2 % premature beats", f"{ect_cpu:.1f} µs", "<= 20 µs"),
        (
            "+ native artifact detector, per beat (CPU): the live path without the spectrum",
            f"{live_cpu:.1f} µs",
            "-",
        ),
        ("one native detector push (CPU, alone)", f"{det_us:.1f} µs", "-"),
    ]
    for cad, (wall, cpu) in cadences.items():
        default = " (the default `frequency_cadence_s`)" if cad == default_cadence else ""
        rows.append(
            (
                f"full live path, spectrum every {cad:g} s{default}, per beat: CPU (wall)",
                f"{cpu:.1f} µs ({wall:.1f} µs)",
                "<= 50 µs" if cad == default_cadence else "-",
            )
        )
    rows += [
        (
            "previous stage (neurokit2 every 8 beats on 64, spectrum every 1 s), same run, CPU",
            f"{old['full']:.0f} µs",
            "-",
        ),
        ("previous stage without the spectrum, CPU", f"{old['no_spectrum']:.0f} µs", "-"),
        (
            "ratio, full live path at the default cadence / previous stage (same run, CPU; less"
            " load-sensitive than either)",
            f"{cadences[default_cadence][1] / old_full:.4f}",
            "-",
        ),
        (
            "ratio, live path without the spectrum / previous stage without the spectrum",
            f"{live_cpu / old_bare:.4f}",
            "-",
        ),
        (
            "one spectrum (120 s window, Welch on the 100 Hz grid's bins, in closed form from the"
            " spline pieces; mean over window lengths), CPU",
            f"{spec_ms:.3f} ms",
            "-",
        ),
        (
            "same computed on the 100 Hz grid (`psd_grid`, the implementation before), CPU",
            f"{spec_grid_ms:.2f} ms",
            "-",
        ),
        ("same the previous way (scipy interp1d + welch), CPU", f"{spec_old_ms:.2f} ms", "-"),
        (
            f"neurokit2 `hrv_time` on the 30 s and the 60 s window, per beat ({n_nk} beats)",
            f"{nk_ms * 1000:.0f} µs",
            "-",
        ),
        (
            "speed-up of streaming over per-beat `hrv_time` (wall)",
            f"{nk_ms * 1000 / core_us:.0f}x",
            ">= 300x",
        ),
        (
            "speed-up, CPU time of both sides (`process_time`)",
            f"{nk_cpu_ms * 1000 / core_cpu:.0f}x",
            ">= 300x",
        ),
        (
            "worst relative difference to `hrv_time` (MeanNN, SDNN, RMSSD, pNN50)",
            f"{worst:.1e}",
            "<= 1e-9",
        ),
        (
            f"offline, {n_off} beats{' (24 h)' if n_off == day else ''}, no artifact stage:"
            " CPU (wall)",
            f"{off_core_cpu:,.0f} ({off_core:,.0f}) beats/s",
            ">= 1,000,000",
        ),
        (
            "offline with the native artifact stage, same series: CPU (wall)",
            f"{off_full_cpu:,.0f} ({off_full:,.0f}) beats/s",
            ">= 500,000",
        ),
        (
            "neurokit2 `signal_fixpeaks(kubios)` alone over the same whole series: CPU (wall)",
            f"{nk_whole_cpu:,.0f} ({nk_whole:,.0f}) beats/s",
            "-",
        ),
        (
            "previous offline path with correction (20,000 beats): CPU (wall)",
            f"{old_off[1]:,.0f} ({old_off[0]:,.0f}) beats/s",
            "-",
        ),
        (
            f"memory retained per client after {hours:g} h (tracemalloc)",
            f"{mem_kib:.0f} KiB",
            "< 1024 KiB",
        ),
        ("peak traced memory per client while feeding", f"{peak_kib:.0f} KiB", "-"),
        *cadence_effect(default_cadence),
        *clean_series_effect(),
        *screen_effect(),
    ]
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"synthetic streaming series: {len(t)} beats ({hours:g} h at 75 bpm)\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
