"""biofeedback.exposure is pure: importing it pulls in no asyncio, BLE, MQTT or HTTP stack."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO_ROOT

FORBIDDEN = ("asyncio", "bleak", "paho", "aiohttp", "neurokit2", "numpy", "socket")


def test_import_pulls_in_no_io_stack() -> None:
    code = (
        "import sys, json\n"
        "import biofeedback.exposure, biofeedback.exposure.session\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_forbidden_names_would_be_seen() -> None:
    # The check above must be able to fail: importing asyncio in the child is detected.
    code = (
        "import sys, json, asyncio\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'asyncio')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "asyncio" in json.loads(out.stdout)
