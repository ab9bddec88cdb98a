"""Baselines as JSON, so the service can keep one per pseudonymous client id.

Schema `biofeedback.baseline/1`: an object with "schema" and every field of `Baseline`
(numbers, `client_id` a non-empty string; ln_rmssd_mean, ln_rmssd_sd and hf_ms2 may be null).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any

from biofeedback.errors import ConfigError
from biofeedback.signal.measures import Baseline

SCHEMA = "biofeedback.baseline/1"
_OPTIONAL = frozenset({"ln_rmssd_mean", "ln_rmssd_sd", "hf_ms2"})
_INTS = frozenset({"n_beats"})


def baseline_to_json(b: Baseline) -> dict[str, Any]:
    """A JSON-ready dict of the baseline (schema `biofeedback.baseline/1`)."""
    return {"schema": SCHEMA, **asdict(b)}


def baseline_from_json(d: object) -> Baseline:
    """The baseline in `d`; ConfigError naming the field when anything is missing or wrong."""
    if not isinstance(d, dict):
        raise ConfigError(f"baseline: expected a JSON object, got {type(d).__name__}")
    if d.get("schema") != SCHEMA:
        raise ConfigError(f"baseline: field 'schema' must be {SCHEMA!r}, got {d.get('schema')!r}")
    values: dict[str, Any] = {}
    for f in fields(Baseline):
        if f.name not in d:
            raise ConfigError(f"baseline: field {f.name!r} is missing")
        v = d[f.name]
        if f.name == "client_id":
            if not isinstance(v, str) or not v:
                raise ConfigError("baseline: field 'client_id' must be a non-empty string")
        elif v is None and f.name in _OPTIONAL:
            pass
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"baseline: field {f.name!r} must be a finite number, got {v!r}")
        elif f.name in _INTS and (not isinstance(v, int) or v < 0):
            raise ConfigError(f"baseline: field {f.name!r} must be a non-negative integer")
        values[f.name] = v
    if values["hr_mean_bpm"] <= 0 or values["hr_sd_bpm"] < 0:
        raise ConfigError("baseline: fields 'hr_mean_bpm'/'hr_sd_bpm' must be positive")
    if (values["ln_rmssd_mean"] is None) != (values["ln_rmssd_sd"] is None):
        raise ConfigError(
            "baseline: fields 'ln_rmssd_mean' and 'ln_rmssd_sd' must both be set or null"
        )
    return Baseline(**values)
