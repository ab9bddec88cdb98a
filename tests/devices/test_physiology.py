"""The simulated client's heart: plausible at rest, reacts to exposure and to paced breathing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from biofeedback.devices.physiology import Physiology, SimBeat, SimProfile
from biofeedback.errors import ConfigError


def _run(
    phases: list[tuple[float, float, float | None]],
    *,
    seed: int = 1,
    profile: SimProfile | None = None,
) -> list[SimBeat]:
    """Beats for consecutive phases of (duration s, exposure, paced bpm)."""
    m = Physiology(start_t=0.0, seed=seed, profile=profile)
    beats: list[SimBeat] = []
    t = 0.0
    for dur, exposure, paced in phases:
        m.set_stimulus(exposure=exposure, paced_breathing_bpm=paced)
        t += dur
        beats.extend(m.beats_until(t))
    return beats


def _window(beats: list[SimBeat], t0: float, t1: float) -> np.ndarray:
    return np.array([b.rr_s * 1000.0 for b in beats if t0 <= b.t < t1 and not b.ectopic])


def _hr(rr_ms: np.ndarray) -> float:
    return float(60000.0 / rr_ms.mean())


def _rmssd(rr_ms: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))


def _peak_hz(beats: list[SimBeat], t0: float, t1: float) -> float:
    """Frequency of the largest spectral peak (0.04-0.4 Hz) of RR resampled at 4 Hz."""
    sel = [b for b in beats if t0 <= b.t < t1]
    t = np.array([b.t for b in sel])
    rr = np.array([b.rr_s for b in sel])
    grid = np.arange(t[0], t[-1], 0.25)
    x = np.interp(grid, t, rr)
    f, p = sps.welch(x - x.mean(), fs=4.0, nperseg=min(len(x), 512), detrend="linear")
    band = (f >= 0.04) & (f <= 0.4)
    return float(f[band][np.argmax(p[band])])


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_resting_heart_is_plausible(seed: int) -> None:
    beats = _run([(180.0, 0.0, None)], seed=seed)
    rr = _window(beats, 30.0, 180.0)
    assert 62.0 <= _hr(rr) <= 78.0
    assert 15.0 <= _rmssd(rr) <= 60.0
    assert all(0.3 <= b.rr_s <= 2.0 for b in beats)
    # times are strictly increasing and each beat ends where the next begins
    t = np.array([b.t for b in beats])
    assert np.all(np.diff(t) > 0)
    np.testing.assert_allclose(np.diff(t), [b.rr_s for b in beats[1:]], atol=1e-9)


def test_same_seed_same_beats_different_seed_different() -> None:
    a = _run([(60.0, 0.0, None), (60.0, 1.0, None)], seed=7)
    b = _run([(60.0, 0.0, None), (60.0, 1.0, None)], seed=7)
    c = _run([(60.0, 0.0, None), (60.0, 1.0, None)], seed=8)
    assert a == b
    assert [x.rr_s for x in a[:50]] != [x.rr_s for x in c[:50]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exposure_raises_hr_and_lowers_rmssd(seed: int) -> None:
    beats = _run([(60.0, 0.0, None), (90.0, 0.9, None)], seed=seed)
    rest = _window(beats, 20.0, 60.0)
    exposed = _window(beats, 110.0, 150.0)
    assert _hr(exposed) - _hr(rest) >= 15.0
    assert _rmssd(exposed) < 0.6 * _rmssd(rest)
    # arousal rises with a time constant of ~20 s: about 63 % of the way after one tau
    a20 = next(b.arousal for b in beats if b.t >= 80.0)
    assert 0.4 <= a20 / 0.9 <= 0.8


def test_arousal_falls_faster_with_slow_paced_breathing() -> None:
    aroused = [(60.0, 0.0, None), (90.0, 1.0, None)]
    paced = _run([*aroused, (60.0, 0.0, 6.0)])
    alone = _run([*aroused, (60.0, 0.0, None)])

    def arousal_at(beats: list[SimBeat], t: float) -> float:
        return next(b.arousal for b in beats if b.t >= t)

    assert arousal_at(paced, 149.0) > 0.9
    assert arousal_at(paced, 180.0) < arousal_at(alone, 180.0)
    assert arousal_at(paced, 200.0) < 0.15
    # HR comes back towards rest within a minute of paced breathing
    rest = _window(paced, 20.0, 60.0)
    assert _hr(_window(paced, 180.0, 210.0)) - _hr(rest) < 8.0
    assert _hr(_window(paced, 180.0, 210.0)) < _hr(_window(paced, 120.0, 150.0)) - 10.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paced_breathing_at_6_per_min_gives_a_dominant_0_1_hz_peak(seed: int) -> None:
    beats = _run([(30.0, 0.0, None), (300.0, 0.0, 6.0)], seed=seed)
    assert _peak_hz(beats, 60.0, 330.0) == pytest.approx(0.1, abs=0.012)
    # and RSA is much larger than during spontaneous breathing
    spont = _run([(330.0, 0.0, None)], seed=seed)
    assert _rmssd(_window(beats, 60.0, 330.0)) > 1.3 * _rmssd(_window(spont, 60.0, 330.0))
    sd_paced = float(np.std(_window(beats, 60.0, 330.0)))
    sd_spont = float(np.std(_window(spont, 60.0, 330.0)))
    assert sd_paced > 2.0 * sd_spont


def test_spontaneous_breathing_peak_is_in_the_hf_band() -> None:
    beats = _run([(330.0, 0.0, None)], profile=SimProfile(lf_ms=5.0))
    assert 0.18 <= _peak_hz(beats, 30.0, 330.0) <= 0.3


def test_ectopic_beats_are_premature_then_compensated() -> None:
    beats = _run([(600.0, 0.0, None)], profile=SimProfile(ectopic_per_min=3.0))
    idx = [i for i, b in enumerate(beats) if b.ectopic]
    assert 10 <= len(idx) // 2 <= 60
    pairs = 0
    for i in range(len(beats) - 1):
        if beats[i].ectopic and beats[i + 1].ectopic and (i == 0 or not beats[i - 1].ectopic):
            premature, pause = beats[i].rr_s, beats[i + 1].rr_s
            assert premature < 0.8 * pause
            pairs += 1
    assert pairs >= 10
    none = _run([(600.0, 0.0, None)], profile=SimProfile(ectopic_per_min=0.0))
    assert not any(b.ectopic for b in none)


def test_beats_until_never_returns_future_beats_and_loses_none() -> None:
    m = Physiology(start_t=100.0, seed=2)
    got: list[SimBeat] = []
    for k in range(1, 121):
        chunk = m.beats_until(100.0 + k * 0.5)
        assert all(b.t <= 100.0 + k * 0.5 for b in chunk)
        got.extend(chunk)
    ref = Physiology(start_t=100.0, seed=2)
    assert got == [ref.next_beat() for _ in got]


@pytest.mark.parametrize(
    ("exposure", "paced"),
    [(-0.1, None), (1.5, None), (float("nan"), None), (0.5, 0.0), (0.5, float("inf"))],
)
def test_bad_stimulus_is_refused_with_a_clear_error(exposure: float, paced: float | None) -> None:
    m = Physiology(start_t=0.0)
    with pytest.raises(ConfigError, match=r"exposure|paced"):
        m.set_stimulus(exposure=exposure, paced_breathing_bpm=paced)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resting_hr_bpm": 0.0},
        {"rise_tau_s": -1.0},
        {"vagal_withdrawal": 1.5},
        {"dropout_every_s": 0.0},
        {"noise_ms": float("nan")},
    ],
)
def test_bad_profile_names_the_field(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        SimProfile(**kwargs)  # type: ignore[arg-type]


def _coherence_share(beats: list[SimBeat], t0: float, t1: float) -> float:
    """Lomb-Scargle power within 0.1 +- 0.015 Hz as a share of 0.04-0.4 Hz (uneven beat times)."""
    sel = [b for b in beats if t0 <= b.t < t1 and not b.ectopic]
    t = np.array([b.t for b in sel])
    rr = np.array([b.rr_s for b in sel])
    f = np.linspace(0.04, 0.4, 721)
    p = sps.lombscargle(t, rr - rr.mean(), 2 * np.pi * f)
    return float(p[np.abs(f - 0.1) <= 0.015].sum() / p.sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_paced_breathing_concentrates_power_at_0_1_hz(seed: int) -> None:
    paced = _run([(30.0, 0.0, None), (300.0, 0.0, 6.0)], seed=seed)
    spont = _run([(330.0, 0.0, None)], seed=seed)
    assert _coherence_share(paced, 60.0, 330.0) > 0.8
    assert _coherence_share(spont, 60.0, 330.0) < 0.25
    # paced at 12/min moves the RSA peak to 0.2 Hz instead
    fast = _run([(30.0, 0.0, None), (300.0, 0.0, 12.0)], seed=seed, profile=SimProfile(lf_ms=5.0))
    assert _peak_hz(fast, 60.0, 330.0) == pytest.approx(0.2, abs=0.015)


def test_profile_from_a_config_table() -> None:
    p = SimProfile.from_mapping(
        {"resting_hr_bpm": 62, "dropout_every_s": 150, "hr_only": True, "battery_start_pct": 40}
    )
    assert (p.resting_hr_bpm, p.dropout_every_s, p.hr_only, p.battery_start_pct) == (
        62.0,
        150.0,
        True,
        40,
    )
    assert SimProfile.from_mapping({}) == SimProfile()


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"resting_hr": 60}, "unknown key 'resting_hr'"),
        ({"hr_only": "yes"}, "hr_only must be true or false"),
        ({"battery_start_pct": 50.5}, "battery_start_pct must be an integer"),
        ({"rise_tau_s": "20"}, "rise_tau_s must be a number"),
        ({"rise_tau_s": True}, "rise_tau_s must be a number"),
        ({"rise_tau_s": -3}, "rise_tau_s must be > 0"),
    ],
)
def test_bad_config_table_names_source_and_key(table: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"\[device\.simulated\]") as err:
        SimProfile.from_mapping(table, source="[device.simulated]")
    assert fragment in str(err.value)
