from __future__ import annotations

from biofeedback.devices.hrm import parse_heart_rate_measurement
from tests.support import REPO_ROOT


def test_published_polar_payload_decodes() -> None:
    m = parse_heart_rate_measurement(bytes.fromhex("104ed202c802"))
    assert m.hr_bpm == 78
    assert m.rr_1024 == (722, 712)
    assert REPO_ROOT.is_dir()
