"""The demo's data stays apart from real sessions.

The demo's simulated person must never become a real client's baseline, and its recordings must
never sit among real ones (a progress report across a client's sessions would count them). So:

- without `--data-dir` the demo writes under its own folder, `demo/` next to the configured
  recordings folder (`data/demo/recordings` with the shipped config), never the configured one;
- the demo never saves a baseline (it never reads one either: it always calibrates);
- a recordings folder the demo wrote into carries a marker file; `run` refuses to record there,
  and the demo refuses a folder that already holds real recordings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from biofeedback.config import AppConfig
from biofeedback.devices.physiology import SimProfile
from biofeedback.errors import ConfigError

MARKER = "DEMO-DATA.txt"
_MARKER_TEXT = (
    "Recordings in this folder come from `biofeedback demo`: a simulated strap and a simulated\n"
    "person. `biofeedback run` refuses to record here, so no real session mixes with them.\n"
)


def demo_config(config: AppConfig, data_dir: Path | None) -> AppConfig:
    """The config the demo runs with: its own recordings and baselines folders."""
    root = data_dir.resolve() if data_dir is not None else default_demo_root(config)
    return replace(config, recording_dir=root / "recordings", baseline_dir=root / "baselines")


def demo_group(first: AppConfig, n: int) -> tuple[AppConfig, ...]:
    """`demo --clients N`: N clients named client-001 ... (N=1: the config's own client).

    Everything but the id is shared; each client gets its own simulated person by position
    (`demo_person`), so the overview shows a group that differs, the same on every run.
    """
    if n == 1:
        return (first,)
    return tuple(replace(first, client_id=f"client-{i:03d}") for i in range(1, n + 1))


# The ranges the group's simulated people are drawn from: a plausible adult resting HR, vagal
# tone (RSA) and how strongly and fast each reacts to exposure and recovers.
_PERSON_RANGES: dict[str, tuple[float, float]] = {
    "resting_hr_bpm": (58.0, 84.0),
    "rsa_ms": (18.0, 48.0),
    "arousal_hr_gain_bpm": (14.0, 36.0),
    "vagal_withdrawal": (0.55, 0.9),
    "rise_tau_s": (12.0, 40.0),
    "fall_tau_s": (30.0, 75.0),
    "paced_fall_tau_s": (10.0, 25.0),
}


def demo_person(index: int, seed: int) -> tuple[str, int, SimProfile | None]:
    """The demo's `index`-th simulated person: (strap name, strap seed, profile).

    Index 0 is the demo's person as it always was (default profile, the given seed), so
    `demo --clients 1` is today's demo exactly. The others are drawn reproducibly from
    (seed, index) within `_PERSON_RANGES`: different baselines and reactivity.
    """
    if index == 0:
        return "SimStrap", seed, None
    rng = np.random.default_rng([seed, index, 0xC11])
    values = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in _PERSON_RANGES.items()}
    return f"SimStrap-{index + 1}", seed * 1000 + index, SimProfile(**values)  # type: ignore[arg-type]


def default_demo_root(config: AppConfig) -> Path:
    """`demo/` beside the configured recordings folder (never that folder itself)."""
    return config.recording_dir.parent / "demo"


def is_demo_folder(recording_dir: Path) -> bool:
    """True when the demo has written into this recordings folder."""
    return (recording_dir / MARKER).is_file()


def claim_for_demo(recording_dir: Path) -> None:
    """Mark a recordings folder as the demo's; ConfigError if it already holds real sessions."""
    if not is_demo_folder(recording_dir) and _holds_recordings(recording_dir):
        raise ConfigError(
            f"{recording_dir} holds real recordings: the demo keeps its simulated sessions apart. "
            "Leave out --data-dir (the demo then uses its own folder) or choose an empty one"
        )
    try:
        recording_dir.mkdir(parents=True, exist_ok=True)
        (recording_dir / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the demo's recordings folder {recording_dir}: {exc}"
        ) from exc


def refuse_demo_folder(recording_dir: Path) -> None:
    """ConfigError when `run` would record a real session among the demo's."""
    if is_demo_folder(recording_dir):
        raise ConfigError(
            f"{recording_dir} holds the demo's simulated sessions ({MARKER}): real sessions "
            "need a folder of their own (--data-dir, or [recording] dir in the config)"
        )


def _holds_recordings(recording_dir: Path) -> bool:
    try:
        return any(p.is_dir() for p in recording_dir.iterdir())
    except OSError:
        return False
