"""Determinism: a simulated session through the real SessionCore, recorded while it runs, replays
to identical beats, revisions, metrics, spectra, arousal and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind, Notification
from biofeedback.recording import iter_inputs, open_session, replay_session, write_report
from biofeedback.recording.summary import summarize
from tests.recording.closed_loop import core_from_recording, run_session


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_session(tmp_path_factory.mktemp("rec"), 420, seed=7)


@pytest.mark.slow
def test_replay_through_the_real_core_is_identical(demo_session: Path, tmp_path: Path) -> None:
    info = open_session(demo_session)
    items = list(iter_inputs(demo_session))
    # The session exercised the hard parts: a malformed payload, a link drop with a timer reset,
    # artifact revisions, arousal pauses with recovery.
    assert any(isinstance(i, Notification) and i.error for i in items)
    kinds = {i.kind for i in items if isinstance(i, DeviceEvent)}
    assert {DeviceEventKind.SIGNAL_LOST, DeviceEventKind.SIGNAL_RESTORED} <= kinds
    assert info.row_counts["revisions"] > 0
    s = summarize(info)
    assert any(p.reason == "arousal" and p.recovered_t is not None for p in s.pauses)

    res = replay_session(demo_session, tmp_path, core_factory=core_from_recording)
    assert res.differences == ()
    again = open_session(res.replay)
    assert again.row_counts == info.row_counts
    for table in ("beats", "revisions", "metrics", "frequency", "arousal", "events"):
        assert again.files[table].read_bytes() == info.files[table].read_bytes(), table


@pytest.mark.slow
def test_report_on_a_demo_recording(demo_session: Path, tmp_path: Path) -> None:
    html = write_report(demo_session, tmp_path)
    text = html.read_text()
    for png in ("timeline.png", "recovery.png", "suds.png", "coherence.png"):
        assert f'src="{png}"' in text
        assert (tmp_path / png).stat().st_size > 5000
    assert "arousal" in text
