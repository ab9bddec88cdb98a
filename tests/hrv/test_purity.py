"""Importing biofeedback.signal stays cheap and pure: no asyncio, BLE, MQTT, web or neurokit2."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT

FORBIDDEN = ("asyncio", "bleak", "paho", "aiohttp", "neurokit2", "scipy", "pandas")


def test_import_pulls_in_nothing_heavy_or_impure() -> None:
    code = (
        "import sys, biofeedback.signal as s\n"
        "s.SignalPipeline().push_rr(1.0, 800.0)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
