"""The demo service records its session; replay, report and export work on that recording."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from biofeedback.recording import (
    export_bids,
    list_sessions,
    open_session,
    replay_session,
    write_report,
)
from tests.support import REPO_ROOT


@pytest.mark.slow
def test_demo_recording_replays_reports_and_exports(tmp_path: Path) -> None:
    from biofeedback.service.commands_cli import core_from_recording

    data = tmp_path / "data"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biofeedback.cli",
            "demo",
            "--no-web",
            "--speed",
            "40",
            "--duration",
            "240",
            "--mqtt-port",
            "0",
            "--data-dir",
            str(data),
            "--log-level",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The demo's folder also holds its DEMO-DATA.txt marker.
    (client,) = [p.name for p in (data / "recordings").iterdir() if p.is_dir()]
    (session,) = list_sessions(data / "recordings", client)
    info = open_session(session)
    assert info.complete
    assert info.row_counts["beats"] > 150
    assert info.row_counts["events"] > 3

    res = replay_session(session, tmp_path / "replay", core_factory=core_from_recording)
    assert res.differences == ()

    html = write_report(session, tmp_path / "report")
    for png in ("timeline.png", "recovery.png", "suds.png", "coherence.png"):
        assert f'src="{png}"' in html.read_text()
        assert (html.parent / png).stat().st_size > 5000

    beh = export_bids(session, tmp_path / "bids")
    assert sorted(p.suffix for p in beh.iterdir()) == [".gz", ".json", ".json", ".tsv"]
