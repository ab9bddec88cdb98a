"""The client's progress report shows the resonance assessments across sessions."""

from __future__ import annotations

import re
from pathlib import Path

from biofeedback.recording.report import write_client_report
from biofeedback.service.resonance_store import ResonanceRecord
from biofeedback.signal.resonance import choose
from tests.recording.helpers import record_scripted
from tests.resonance.sim import assess, client, simulate


def test_progress_report_shows_the_assessment_history(tmp_path: Path) -> None:
    record_scripted(tmp_path / "rec", seed=1)
    first = assess(simulate(client(5.0, 1), 1))
    again = choose(first.blocks[:3])  # a partial reassessment
    history = [
        ResonanceRecord("2026-11-01T10:00:00+00:00", "s-1", first),
        ResonanceRecord("2026-12-01T10:00:00+00:00", "s-2", again),
    ]
    out = write_client_report(tmp_path / "rec", "client-1", tmp_path / "out", history)
    text = out.read_text()
    assert "Resonance breathing rate" in text
    assert f"{first.rate_bpm:g}/min" in text
    assert "partial" in text
    assert "2026-11-01 10:00" in text
    # the newest assessment's blocks, one row each
    section = text.split("Newest assessment, per block")[1]
    assert section.count("<tr>") == 1 + len(again.blocks)
    assert "resonance-client-1.png" in re.findall(r'<img src="([^"]+)"', text)
    assert (out.parent / "resonance-client-1.png").stat().st_size > 5000
    # without history: no section (older callers), with an empty one: a line saying none yet
    plain = write_client_report(tmp_path / "rec", "client-1", tmp_path / "o2").read_text()
    assert "Resonance" not in plain
    none = write_client_report(tmp_path / "rec", "client-1", tmp_path / "o3", []).read_text()
    assert "No resonance assessment yet" in none
