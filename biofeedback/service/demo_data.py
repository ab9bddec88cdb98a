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

from biofeedback.config import AppConfig
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
