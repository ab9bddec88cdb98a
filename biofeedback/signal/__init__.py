"""Signal processing for one client: clean RR, streaming HRV, baseline and arousal (pure).

Importing this package is cheap: scipy is imported only when first needed (neurokit2 never: it is
the tests' reference, not a dependency of the service).
"""

# ruff: noqa: A005 -- MISSION.md names this part biofeedback.signal; it never stands at top level

from __future__ import annotations

from biofeedback.signal.config import validate_config
from biofeedback.signal.measures import (
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
from biofeedback.signal.offline import OfflineResult, WindowArrays, compute_offline
from biofeedback.signal.pipeline import SignalPipeline
from biofeedback.signal.serialize import baseline_from_json, baseline_to_json

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
