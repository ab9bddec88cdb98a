"""StrapSignals: the raw ECG and ACC stages of one strap wired to the RR pipeline, as the service
would: the real H10 record's ECG frames and strap RR, plus synthetic chest acceleration."""

from __future__ import annotations

import numpy as np

from biofeedback.signal import Baseline, SignalPipeline
from biofeedback.signal.strap_signals import StrapSignals
from biofeedback.signal.synthetic import rr_series
from tests.ecg.h10_record import H10Record, load_h10
from tests.ecg.synthetic_acc import breathing_trace, chest_acc


def test_the_h10_record_through_strap_signals() -> None:
    rec: H10Record = load_h10()
    base = Baseline("c-1", 0.0, 120.0, 140, 0.0, 75.0, 4.0, 3.5, 0.3, None)
    p = SignalPipeline(baseline=base)
    s = StrapSignals()
    fs_acc = 50.0
    t_acc, trace, _ = breathing_trace(15.0, float(rec.t[-1]), fs_acc, seed=2)
    acc = chest_acc(t_acc, trace, bursts=((300.0, 20.0),))
    taken = checks = 0
    moving = 0
    breaths = 0
    si = ai = 0
    for i in range(0, rec.t.size, 73):
        out = s.ecg(rec.t[i : i + 73], rec.ecg_uv[i : i + 73])
        checks += len(out.checks)
        taken += s.apply(out, p)
        now = float(rec.t[min(i + 73, rec.t.size) - 1])
        while ai < t_acc.size and t_acc[ai] <= now:  # ACC frames of 0.5 s
            out = s.acc(t_acc[ai : ai + 25], acc[ai : ai + 25])
            s.apply(out, p)
            moving += sum(m.moving for m in out.movement if 300.0 <= m.t <= 320.0)
            breaths += sum(len(u.breaths) for u in out.breathing)
            ai += 25
        while si < rec.strap_t.size and rec.strap_t[si] <= now:
            t, rr = float(rec.strap_t[si]), float(rec.strap_rr_ms[si])
            u = p.push_rr(t, rr)
            if u.beat is not None:
                out = s.strap_rr(t, rr)
                checks += len(out.checks)
                taken += s.apply(out, p)
            si += 1
    assert checks >= 790  # every strap interval checked (a few at the very end still queued)
    assert taken >= 770  # measured 783: normal and ectopic verdicts, all in time
    assert moving >= 18  # the 20 s burst at 300 s, each second
    assert abs(breaths - 15 * (rec.t[-1] - 30.0) / 60.0) <= 10  # ~142 breaths after the first 30 s


def test_movement_reaches_the_arousal_estimate() -> None:
    t_rr, rr = rr_series(200.0, hr_bpm=70.0, seed=4, t0=0.0)
    base = Baseline("c-1", 0.0, 120.0, 140, 0.0, 60.0, 4.0, 3.8, 0.2, None)
    p = SignalPipeline(baseline=base)
    s = StrapSignals(acc_fs=50.0)
    t_acc, trace, _ = breathing_trace(12.0, 200.0, 50.0, seed=1)
    acc = chest_acc(t_acc, trace, bursts=((120.0, 15.0),))
    reasons: dict[float, str] = {}
    ai = 0
    for t, r in zip(t_rr.tolist(), rr.tolist(), strict=True):
        while ai < t_acc.size and t_acc[ai] <= t:
            s.apply(s.acc(t_acc[ai : ai + 25], acc[ai : ai + 25]), p)
            ai += 25
        a = p.push_rr(t, r).arousal
        if a.value is not None:
            reasons[t] = a.reason or ""
    during = [w for t, w in reasons.items() if 122.0 <= t <= 134.0]
    before = [w for t, w in reasons.items() if t < 118.0]
    assert during
    assert all(w.startswith("movement") for w in during)
    assert not any(w.startswith("movement") for w in before)


def test_gaps_and_short_frames() -> None:
    s = StrapSignals()
    assert s.acc([0.0], [[0.0, -1000.0, 0.0]]) == s.acc([], np.zeros((0, 3)))  # rate unknown
    t = np.arange(0.0, 40.0, 0.02)
    acc = chest_acc(t, np.sin(2 * np.pi * 0.25 * t))
    out = s.acc(t[:1000], acc[:1000])
    assert out.movement  # the rate came from the frame's own times
    s.acc_gap()
    s.ecg_gap()
    assert s.breathing is not None
