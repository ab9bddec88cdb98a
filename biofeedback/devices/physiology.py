"""A deterministic model of one person's heartbeat under exposure and paced breathing.

Pure: no clock, no asyncio, no I/O. Time is passed in (`start_t`, `beats_until(t)`) and all
randomness comes from one seeded generator, so a seed and the same sequence of stimulus changes
give the same beats on every machine. The simulated strap (`biofeedback.devices.simulated`) turns
these beats into real 0x2A37 bytes.

What the model produces, beat by beat (RR in seconds):

    RR = 60 / (HR_rest + hr_gain * arousal)                    mean interval (sympathetic drive)
         + rsa(f_breath) * (1 - vagal_withdrawal * arousal)    respiratory sinus arrhythmia
               * -sin(breathing phase)                         (RR shortens on inspiration)
         + lf_amp * sin(Mayer-wave phase, ~0.1 Hz)             baroreflex oscillation
         + slow random walk of the mean + white noise

* `arousal` (0..1) follows the exposure intensity as a first-order lag: time constant
  `rise_tau_s` while it climbs, `fall_tau_s` while it falls on its own, `paced_fall_tau_s` while the
  client breathes at a slow paced rate (<= `slow_breathing_bpm`).
* The breathing rate wanders around `spontaneous_breathing_bpm`, speeds up with arousal, and
  converges on the pacer's rate within a few seconds when guidance runs.
* RSA amplitude follows a resonance curve peaking at 0.1 Hz (6 breaths/min), so slow paced
  breathing gives large, regular oscillations concentrated at 0.1 Hz (cardiac coherence).
* Baroreflex resonance (`resonance_bpm` set, docs/resonance.md): the heart-rate response to
  breathing is the breathing itself passed through a direct vagal path plus a second-order
  band-pass baroreflex loop centred on the client's own resonance rate,
  G(f) = 1 + (resonance_gain - 1) / (1 + j Q (f/f0 - f0/f)). At f0 the loop adds in phase: the
  largest peak-to-trough HR and HR in phase with lung volume (0 deg, Vaschillo et al. 2002,
  2006); below f0 HR leads breathing, above it HR lags. Mayer waves wander around f0, so the LF
  peak sits there. When the pacer's start time is given (`set_stimulus(pacer_t0=...)`) the
  client's breathing also locks in phase to the pacer, `pacer_lag_s` behind it. With
  `resonance_bpm` None (the default) the model is the fixed 0.1 Hz curve above, unchanged.
* Slow paced breathing also lowers the mean HR by up to `paced_hr_drop_bpm` (long exhales favour
  the vagus), settling in over ~20 s.
* Ectopic beats: a premature beat (`ectopic_prematurity` of the current interval) followed by a
  compensatory pause so that the pair spans two normal intervals, as a Poisson process.

Tuning (defaults), checked through the real parser and `biofeedback.signal.SignalPipeline` with
the thresholds of `config/protocols/demo.toml` (pause above 60 for 5 s, recovered below 40 for
15 s), seeds 1-20: exposure at 0.9 pauses after 23-36 s; with paced breathing at 6/min the
arousal settles below 40 after ~25-60 s and counts as recovered 38-78 s after the pause
(`tests/devices/test_simulated.py::test_closed_loop_with_the_signal_pipeline_pauses_and_recovers`).
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from biofeedback.errors import ConfigError

_TWO_PI = 2.0 * math.pi
_RESONANCE_HZ = 0.1


@dataclass(frozen=True, slots=True)
class SimProfile:
    """Everything about the simulated person and strap that a demo or test may want to change.

    Times are in seconds, rates in events per minute. Strap behaviour (dropouts, contact loss,
    HR-only, battery) is used by `SimulatedStrap`; the rest by `Physiology`.
    """

    # heart
    resting_hr_bpm: float = 70.0
    arousal_hr_gain_bpm: float = 28.0  # HR rise at arousal 1
    rsa_ms: float = 32.0  # RSA amplitude (half peak-to-peak) at spontaneous breathing, at rest
    resonance_gain: float = 3.5  # RSA amplification at 0.1 Hz relative to spontaneous breathing
    # baroreflex resonance: None keeps the fixed 0.1 Hz curve; a rate (breaths/min) turns on the
    # second-order loop centred there (module docstring)
    resonance_bpm: float | None = None
    resonance_q: float = 2.5  # sharpness of the baroreflex loop (quality factor)
    pacer_lag_s: float = 0.5  # how far the client's breathing trails a pacer whose phase is known
    vagal_withdrawal: float = 0.8  # fraction of RSA lost at arousal 1
    lf_ms: float = 14.0  # Mayer-wave amplitude at rest
    noise_ms: float = 7.0  # beat-to-beat white noise (sd) at rest
    drift_bpm: float = 1.5  # sd of the slow wander of the resting HR
    # breathing
    spontaneous_breathing_bpm: float = 14.0
    arousal_breathing_gain_bpm: float = 4.0  # faster breathing when aroused
    slow_breathing_bpm: float = 8.0  # paced rates at or below this speed recovery
    paced_hr_drop_bpm: float = 3.0  # mean HR lowered this much while breathing slowly and paced
    breathing_follow_tau_s: float = 4.0  # how fast the client follows the pacer
    # arousal dynamics
    rise_tau_s: float = 20.0
    fall_tau_s: float = 45.0  # exposure stopped, breathing on one's own
    paced_fall_tau_s: float = 15.0  # exposure stopped (or low), slow paced breathing
    # ectopy
    ectopic_per_min: float = 0.4
    ectopic_prematurity: float = 0.65
    # strap
    notify_interval_s: float = 1.0
    dropout_every_s: float | None = None  # None: the link never drops
    dropout_len_s: float = 8.0
    contact_loss_every_s: float | None = None  # None: the strap never loses skin contact
    contact_loss_len_s: float = 5.0
    hr_only: bool = False  # a strap that sends HR but no RR intervals
    hr_uint16: bool = False  # send the HR field as uint16 (some straps always do)
    energy_expended: bool = False  # include cumulative energy (kJ) every 10th notification
    malformed_every_s: float | None = None  # None: every payload is well formed
    battery_start_pct: int = 87
    battery_drain_pct_per_h: float = 3.0

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, object], *, source: str = "SimProfile"
    ) -> SimProfile:
        """A profile from a config table (e.g. TOML `[device.simulated]`); unknown keys and wrong
        types raise `ConfigError` naming `source` and the key."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, object] = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )
            default = known[key].default
            if isinstance(default, bool):
                ok = isinstance(value, bool)
                want = "true or false"
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
                want = "an integer"
            else:  # float, or float | None for the optional schedules
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                want = "a number"
            if not ok:
                raise ConfigError(f"{source}: {key} must be {want}, got {value!r}")
            kwargs[key] = float(value) if want == "a number" else value  # type: ignore[arg-type]
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"SimProfile.{f.name} must be finite, got {v!r}")
        positive = (
            "resting_hr_bpm",
            "spontaneous_breathing_bpm",
            "rise_tau_s",
            "fall_tau_s",
            "paced_fall_tau_s",
            "breathing_follow_tau_s",
            "notify_interval_s",
            "dropout_len_s",
            "contact_loss_len_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"SimProfile.{name} must be > 0, got {getattr(self, name)!r}")
        non_negative = (
            "arousal_hr_gain_bpm",
            "rsa_ms",
            "lf_ms",
            "noise_ms",
            "drift_bpm",
            "ectopic_per_min",
            "battery_drain_pct_per_h",
            "arousal_breathing_gain_bpm",
            "paced_hr_drop_bpm",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"SimProfile.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.vagal_withdrawal <= 1.0:
            raise ConfigError(
                f"SimProfile.vagal_withdrawal must be in 0..1, got {self.vagal_withdrawal}"
            )
        if not 0.3 <= self.ectopic_prematurity < 1.0:
            raise ConfigError(
                f"SimProfile.ectopic_prematurity must be in 0.3..1, got {self.ectopic_prematurity}"
            )
        if self.resonance_bpm is not None and not 3.0 <= self.resonance_bpm <= 12.0:
            raise ConfigError(
                f"SimProfile.resonance_bpm must be None or 3..12 breaths/min, "
                f"got {self.resonance_bpm!r}"
            )
        if not 0.3 <= self.resonance_q <= 20.0:
            raise ConfigError(f"SimProfile.resonance_q must be in 0.3..20, got {self.resonance_q}")
        if not 0.0 <= self.pacer_lag_s <= 5.0:
            raise ConfigError(f"SimProfile.pacer_lag_s must be in 0..5 s, got {self.pacer_lag_s}")
        if self.resonance_gain < 1.0:
            raise ConfigError(f"SimProfile.resonance_gain must be >= 1, got {self.resonance_gain}")
        if not 30.0 <= self.resting_hr_bpm <= 120.0:
            raise ConfigError(
                f"SimProfile.resting_hr_bpm must be 30..120, got {self.resting_hr_bpm}"
            )
        for name in ("dropout_every_s", "contact_loss_every_s", "malformed_every_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"SimProfile.{name} must be None or > 0, got {v!r}")
        if not 0 <= self.battery_start_pct <= 100:
            raise ConfigError(
                f"SimProfile.battery_start_pct must be 0..100, got {self.battery_start_pct}"
            )


@dataclass(frozen=True, slots=True)
class SimBeat:
    """One simulated heartbeat: the RR interval `rr_s` that ends at time `t`."""

    t: float
    rr_s: float
    ectopic: bool  # premature beat or its compensatory pause
    arousal: float  # the model's arousal while this interval ran (ground truth for tests)
    breathing_bpm: float
    breath_phase: float = 0.0  # breathing phase at t, radians: 0 inhale starts, pi exhale starts


def check_stimulus(exposure: float, paced_breathing_bpm: float | None) -> None:
    """Raise `ConfigError` unless exposure is in 0..1 and the paced rate None or 2..30/min."""
    if not (math.isfinite(exposure) and 0.0 <= exposure <= 1.0):
        raise ConfigError(f"exposure intensity must be a number in 0..1, got {exposure!r}")
    if paced_breathing_bpm is not None and not (
        math.isfinite(paced_breathing_bpm) and 2.0 <= paced_breathing_bpm <= 30.0
    ):
        raise ConfigError(
            f"paced breathing rate must be 2..30 breaths/min or None, got {paced_breathing_bpm!r}"
        )


class Physiology:
    """The simulated client's heart: call `set_stimulus` as things change, pull beats in order."""

    def __init__(self, *, start_t: float, seed: int = 1, profile: SimProfile | None = None) -> None:
        self.profile = profile if profile is not None else SimProfile()
        self._rng = np.random.default_rng(seed)
        p = self.profile
        self._t = float(start_t)  # time of the last R peak
        self._arousal = 0.0
        self._exposure = 0.0
        self._paced: float | None = None
        self._pacer_t0: float | None = None  # when the pacer's first inhale began, if known
        self._inhale_share = 0.5
        self._breath_bpm = p.spontaneous_breathing_bpm
        self._spont_offset = 0.0  # slow wander of the spontaneous breathing rate
        self._breath_phase = float(self._rng.uniform(0.0, _TWO_PI))
        self._cycle_u = self._breath_phase / _TWO_PI  # the same, as a share of the cycle
        self._lf_phase = float(self._rng.uniform(0.0, _TWO_PI))
        if p.resonance_bpm is None:
            self._lf_range = (0.08, 0.12)
            self._lf_hz = _RESONANCE_HZ
        else:
            self._lf_hz = p.resonance_bpm / 60.0
            self._lf_range = (self._lf_hz - 0.02, self._lf_hz + 0.02)
        self._drift = 0.0  # bpm offset of the resting HR (Ornstein-Uhlenbeck)
        self._paced_relax = 0.0  # 0..1, how settled into slow paced breathing
        self._pending: SimBeat | None = None
        self._compensate_s: float | None = None  # the pause owed after a premature beat

    # -- inputs -------------------------------------------------------------------------------
    def set_stimulus(
        self,
        *,
        exposure: float,
        paced_breathing_bpm: float | None,
        pacer_t0: float | None = None,
        pacer_inhale_share: float = 0.5,
    ) -> None:
        """Exposure intensity 0..1 and the pacer's rate (None: breathing on one's own).

        `pacer_t0`, the time the pacer's first inhale began, lets the client breathe in phase with
        the pacer (as a client watching it does), inhaling for `pacer_inhale_share` of each
        cycle; without it only the rate follows. Applies to beats not yet generated.
        """
        check_stimulus(exposure, paced_breathing_bpm)
        if pacer_t0 is not None and not math.isfinite(pacer_t0):
            raise ConfigError(f"pacer start time must be a finite number, got {pacer_t0!r}")
        if not (math.isfinite(pacer_inhale_share) and 0.1 <= pacer_inhale_share <= 0.9):
            raise ConfigError(f"pacer inhale share must be 0.1..0.9, got {pacer_inhale_share!r}")
        self._inhale_share = float(pacer_inhale_share)
        self._exposure = float(exposure)
        self._paced = None if paced_breathing_bpm is None else float(paced_breathing_bpm)
        self._pacer_t0 = None if self._paced is None or pacer_t0 is None else float(pacer_t0)

    # -- state --------------------------------------------------------------------------------
    @property
    def arousal(self) -> float:
        """Current internal arousal, 0 (calm) .. 1 (maximal)."""
        return self._arousal

    @property
    def breathing_bpm(self) -> float:
        """Current breathing rate in breaths per minute."""
        return self._breath_bpm

    @property
    def t(self) -> float:
        """Time of the newest generated R peak (handed out or still pending)."""
        return self._t if self._pending is None else self._pending.t

    def mean_hr_bpm(self) -> float:
        """The HR the model is centred on now (without RSA, LF and noise)."""
        p = self.profile
        return (
            p.resting_hr_bpm
            + self._drift
            + p.arousal_hr_gain_bpm * self._arousal
            - p.paced_hr_drop_bpm * self._paced_relax
        )

    def baroreflex_response(self, breathing_bpm: float) -> complex:
        """G(f) of the resonance model (module docstring) at a breathing rate: |G| the gain, arg G
        how far HR leads lung volume (radians). Needs `resonance_bpm`."""
        p = self.profile
        assert p.resonance_bpm is not None
        x = breathing_bpm / p.resonance_bpm
        return 1.0 + (p.resonance_gain - 1.0) / complex(1.0, p.resonance_q * (x - 1.0 / x))

    def rsa_amplitude_s(self, breathing_bpm: float, arousal: float) -> float:
        """RSA amplitude (half peak-to-peak, seconds) at a breathing rate and arousal."""
        p = self.profile
        if p.resonance_bpm is not None:
            gain = abs(self.baroreflex_response(breathing_bpm)) / abs(
                self.baroreflex_response(p.spontaneous_breathing_bpm)
            )
            return p.rsa_ms / 1000.0 * gain * (1.0 - p.vagal_withdrawal * arousal)
        f = breathing_bpm / 60.0
        f_sp = p.spontaneous_breathing_bpm / 60.0
        # resonance bump centred on 0.1 Hz, normalised so spontaneous breathing gives rsa_ms
        width = 0.045

        def curve(x: float) -> float:
            return 1.0 + (p.resonance_gain - 1.0) * math.exp(-(((x - _RESONANCE_HZ) / width) ** 2))

        gain = curve(f) / curve(f_sp)
        return p.rsa_ms / 1000.0 * gain * (1.0 - p.vagal_withdrawal * arousal)

    # -- beats --------------------------------------------------------------------------------
    def next_beat(self) -> SimBeat:
        """Generate (or hand over the already generated) next beat."""
        if self._pending is not None:
            b, self._pending = self._pending, None
            return b
        return self._generate()

    def beats_until(self, t: float) -> list[SimBeat]:
        """All beats whose R peak falls at or before `t`, oldest first (may be empty)."""
        out: list[SimBeat] = []
        while True:
            b = self._pending if self._pending is not None else self._generate()
            if b.t > t:
                self._pending = b
                return out
            self._pending = None
            out.append(b)

    def _advance(self, dt: float) -> None:
        """Integrate arousal, breathing and slow processes over `dt` seconds."""
        p = self.profile
        target = self._exposure
        slow_paced = self._paced is not None and self._paced <= p.slow_breathing_bpm
        if target >= self._arousal:
            tau = p.rise_tau_s
        else:
            tau = p.paced_fall_tau_s if slow_paced else p.fall_tau_s
        self._arousal += (target - self._arousal) * (1.0 - math.exp(-dt / tau))
        self._arousal = min(1.0, max(0.0, self._arousal))

        # spontaneous breathing wanders (OU, sd ~1 breath/min, ~30 s memory)
        k = math.exp(-dt / 30.0)
        self._spont_offset = self._spont_offset * k + math.sqrt(1 - k * k) * float(
            self._rng.normal(0.0, 1.0)
        )
        if self._paced is not None:
            want = self._paced
        else:
            want = (
                p.spontaneous_breathing_bpm
                + self._spont_offset
                + p.arousal_breathing_gain_bpm * self._arousal
            )
        kb = 1.0 - math.exp(-dt / p.breathing_follow_tau_s)
        self._breath_bpm += (want - self._breath_bpm) * kb
        if self._paced is not None and self._pacer_t0 is not None:
            # locked to the pacer: the cycle fraction u (0 = an inhale starts) follows the
            # pacer's, `pacer_lag_s` behind; lung volume -cos(phase) rises through the inhale
            # share of the cycle and falls through the rest, as the pacer shows
            self._cycle_u = (self._cycle_u + self._breath_bpm / 60.0 * dt) % 1.0
            want_u = (self._paced / 60.0 * (self._t + dt - self._pacer_t0 - p.pacer_lag_s)) % 1.0
            err = (want_u - self._cycle_u + 0.5) % 1.0 - 0.5
            self._cycle_u = (self._cycle_u + err * kb) % 1.0
            a = self._inhale_share
            u = self._cycle_u
            self._breath_phase = math.pi * (u / a if u < a else 1.0 + (u - a) / (1.0 - a))
        else:
            self._breath_phase = (
                self._breath_phase + _TWO_PI * self._breath_bpm / 60.0 * dt
            ) % _TWO_PI
            self._cycle_u = self._breath_phase / _TWO_PI

        # Mayer waves: ~0.1 Hz (or the resonance rate) with a wandering frequency
        lo, hi = self._lf_range
        self._lf_hz = min(hi, max(lo, self._lf_hz + float(self._rng.normal(0.0, 0.002))))
        self._lf_phase = (self._lf_phase + _TWO_PI * self._lf_hz * dt) % _TWO_PI

        # slow paced breathing with a long exhale shifts the balance towards the vagus
        want_relax = 1.0 if slow_paced else 0.0
        self._paced_relax += (want_relax - self._paced_relax) * (1.0 - math.exp(-dt / 20.0))

        kd = math.exp(-dt / 60.0)
        self._drift = self._drift * kd + math.sqrt(1 - kd * kd) * p.drift_bpm * float(
            self._rng.normal(0.0, 1.0)
        )

    def _normal_rr(self) -> float:
        p = self.profile
        a = self._arousal
        mean_rr = 60.0 / self.mean_hr_bpm()
        if p.resonance_bpm is None:
            rsa = self.rsa_amplitude_s(self._breath_bpm, a) * -math.sin(self._breath_phase)
        else:
            # HR = -RR follows lung volume -cos(phase), shifted by arg G (HR leads when positive)
            # The interval's length stands for the drive at its middle (half an interval on).
            lead = cmath.phase(self.baroreflex_response(self._breath_bpm))
            lead += math.pi * self._breath_bpm / 60.0 * mean_rr
            rsa = self.rsa_amplitude_s(self._breath_bpm, a) * math.cos(self._breath_phase + lead)
        lf = p.lf_ms / 1000.0 * (1.0 - 0.5 * a) * math.sin(self._lf_phase)
        noise = p.noise_ms / 1000.0 * (1.0 - 0.5 * a) * float(self._rng.normal(0.0, 1.0))
        return mean_rr + rsa + lf + noise

    def _generate(self) -> SimBeat:
        p = self.profile
        ectopic = False
        if self._compensate_s is not None:
            rr = self._compensate_s
            self._compensate_s = None
            ectopic = True
        else:
            rr = self._normal_rr()
            # Poisson ectopy: probability of an ectopic beat within this interval
            if p.ectopic_per_min > 0 and self._rng.random() < 1.0 - math.exp(
                -p.ectopic_per_min / 60.0 * rr
            ):
                premature = rr * p.ectopic_prematurity
                self._compensate_s = 2.0 * rr - premature
                rr = premature
                ectopic = True
        rr = min(2.0, max(0.3, rr))
        self._advance(rr)
        self._t += rr
        return SimBeat(
            t=self._t,
            rr_s=rr,
            ectopic=ectopic,
            arousal=self._arousal,
            breathing_bpm=self._breath_bpm,
            breath_phase=self._breath_phase % _TWO_PI,
        )
