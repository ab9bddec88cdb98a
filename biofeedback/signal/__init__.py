"""Signal processing for one client: clean RR, streaming HRV, baseline and arousal (pure).

Importing this package is cheap: neurokit2 and scipy are imported only when first needed.
"""

# ruff: noqa: A005 -- the names biofeedback.signal and signal.types are the project's seam layout

from __future__ import annotations

from biofeedback.signal.config import validate_config
from biofeedback.signal.offline import OfflineResult, WindowArrays, compute_offline
from biofeedback.signal.pipeline import SignalPipeline
from biofeedback.signal.serialize import baseline_from_json, baseline_to_json
from biofeedback.signal.types import (
    Arousal,
    ArousalBasis,
    Baseline,
    BeatUpdate,
    CleanBeat,
    FrequencyDomain,
    SignalConfig,
    SignalQuality,
    TimeDomain,
)

__all__ = [
    "Arousal",
    "ArousalBasis",
    "Baseline",
    "BeatUpdate",
    "CleanBeat",
    "FrequencyDomain",
    "OfflineResult",
    "SignalConfig",
    "SignalPipeline",
    "SignalQuality",
    "TimeDomain",
    "WindowArrays",
    "baseline_from_json",
    "baseline_to_json",
    "compute_offline",
    "validate_config",
]
