"""One estimator (docs/arousal.md, "One estimator"): below 60 bpm a strap that sends RR intervals
has notifications without any (it notifies about once a second, the heart beats less often). Such
a notification must not switch the published value to heart rate alone; only RR absent for
`gap_s` does.

The strap is simulated byte for byte: a notification every second carries the RR of the beats
that ended since the previous one (none, one or two) and the heart rate as an integer, encoded as
a Heart Rate Measurement, timed by the service's BeatTimer and fed to the service's SessionCore.
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import HeartRateMeasurement, Notification
from biofeedback.devices.timing import BeatTimer
from biofeedback.exposure import ExposureProtocol, Step
from biofeedback.service.core import SessionCore
from biofeedback.signal import (
    ArousalBasis,
    Baseline,
    BeatUpdate,
    SignalConfig,
    SignalPipeline,
)
from biofeedback.signal.synthetic import rr_series

DEVICE = "strap"


def notifications(
    t: np.ndarray, rr: np.ndarray, *, rr_less: bool = True, period_s: float = 1.0
) -> list[Notification]:
    """What a strap sends for these beats: one notification per `period_s` with the RR of the
    beats that ended since the last one. Without `rr_less`, the notifications that would carry
    no RR are not sent (the RR-only reference)."""
    timer = BeatTimer(DEVICE)
    out: list[Notification] = []
    i = 0
    last_hr = round(60000.0 / rr[0])
    tick = float(t[0])
    while tick <= t[-1]:
        rr_1024: list[int] = []
        while i < len(t) and t[i] <= tick:
            rr_1024.append(round(rr[i] * 1.024))
            last_hr = round(60000.0 / rr[i])
            i += 1
        if rr_1024 or rr_less:
            m = HeartRateMeasurement(last_hr, True, True, None, tuple(rr_1024))
            out.append(timer.notification(tick, encode_heart_rate_measurement(m)))
        tick += period_s
    return out


def published(items: list[Notification], calibration_s: float = 120.0) -> list[BeatUpdate]:
    """Every update the service core publishes for these notifications, after its calibration."""
    proto = ExposureProtocol(name="rest", steps=(Step("rest", "sit", 60.0),))
    core = SessionCore(
        client_id="c-1",
        protocol=proto,
        signal_config=SignalConfig(),
        start_t=items[0].t - 1.0,
        calibration_s=calibration_s,
    )
    ups: list[BeatUpdate] = []
    for n in items:
        ups.extend(core.feed(n).updates)
    assert core.pipeline.baseline is not None, "the calibration must pass"
    return [u for u in ups if u.arousal.value is not None]


def largest_jump(ups: list[BeatUpdate], after_t: float) -> float:
    v = [u.arousal.value for u in ups if u.t > after_t and u.arousal.value is not None]
    return max(abs(b - a) for a, b in itertools.pairwise(v))


def check(t: np.ndarray, rr: np.ndarray) -> tuple[float, float, int]:
    """(largest jump with RR-less notifications, largest jump RR only, RR-less notifications)."""
    mixed_items = notifications(t, rr)
    n_rr_less = sum(1 for n in mixed_items if not n.beats)
    mixed = published(mixed_items)
    reference = published(notifications(t, rr, rr_less=False))
    warm = float(t[0]) + 180.0  # after calibration and the first HRV window
    late = [u for u in mixed if u.t > warm]
    assert all(u.arousal.basis is ArousalBasis.HR_HRV for u in late), "switched basis at rest"
    return largest_jump(mixed, warm), largest_jump(reference, warm), n_rr_less


def test_a_slow_resting_heart_keeps_one_estimator() -> None:
    t, rr = rr_series(600.0, hr_bpm=52.0, rsa_ms=60.0, breath_hz=0.2, seed=11)
    mixed, reference, n_rr_less = check(t, rr)
    assert n_rr_less > 0.1 * 600  # at 52 bpm about one notification in seven has no RR
    assert mixed <= reference + 1e-9


@pytest.mark.data
def test_real_slow_rest_keeps_one_estimator(shared_data: Path) -> None:
    """NeuroKit's 8-minute rest (ECG R peaks, median 56 bpm) as a strap would send it."""
    import neurokit2 as nk
    import pandas as pd

    df = pd.read_csv(shared_data / "neurokit" / "bio_resting_8min_100hz.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(df["ECG"].to_numpy(), sampling_rate=100)
    peaks = np.asarray(info["ECG_R_Peaks"], dtype=float)
    t, rr = 1000.0 + peaks[1:] / 100.0, np.diff(peaks) * 10.0
    assert 50.0 < 60000.0 / float(np.median(rr)) < 60.0
    mixed, reference, n_rr_less = check(t, rr)
    assert n_rr_less > 30
    assert mixed <= reference + 1e-9


def test_rr_less_notification_repeats_the_rr_based_value() -> None:
    t, rr = rr_series(200.0, hr_bpm=55.0, seed=3)
    p = SignalPipeline()
    p.baseline = _baseline()
    last = None
    seen = 0
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        last = p.push_rr(a, b)
        if a > 1100.0:
            u = p.push_hr(a + 0.5, 55.0)  # a notification half a second later, no RR in it
            assert u.arousal.basis is ArousalBasis.HR_HRV
            assert u.arousal.value == last.arousal.value
            assert u.hr_bpm == 55.0  # the strap's heart rate is still shown
            seen += 1
    assert seen > 50


def test_rr_absent_for_gap_s_switches_to_heart_rate_alone() -> None:
    t, rr = rr_series(150.0, hr_bpm=65.0, seed=5)
    p = SignalPipeline()
    p.baseline = _baseline()
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        p.push_rr(a, b)
    last_rr = float(t[-1])
    gap = p.config.gap_s
    for k in range(1, 12):  # the strap goes on with heart rate only
        u = p.push_hr(last_rr + k, 65.0)
        expected = ArousalBasis.HR_ONLY if k > gap else ArousalBasis.HR_HRV
        assert u.arousal.basis is expected, (k, u.arousal)
    u = p.push_rr(last_rr + 12.0, 920.0)  # RR is back: a new segment, the window refills
    assert u.arousal.basis is ArousalBasis.HR_ONLY
    assert u.arousal.reason is not None
    assert "filling" in u.arousal.reason


def test_a_strap_that_never_sends_rr_is_heart_rate_only_at_once() -> None:
    p = SignalPipeline()
    p.baseline = _baseline()
    u = p.push_hr(1.0, 70.0)
    assert u.arousal.basis is ArousalBasis.HR_ONLY
    assert u.arousal.value is not None
    assert math.isfinite(u.arousal.value)


def _baseline() -> Baseline:
    return Baseline("c-1", 0.0, 120.0, 130, 0.0, 60.0, 4.0, 3.8, 0.2, None)
