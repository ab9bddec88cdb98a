"""The session report numbers steps from 1, as every screen does (issue 12); the recording keeps
0-based step indices."""

from __future__ import annotations

import re
from pathlib import Path

from biofeedback.recording import open_session
from biofeedback.recording.report import write_report
from biofeedback.recording.summary import summarize
from tests.recording.helpers import record_scripted


def _rows(html: str, head: str) -> list[list[str]]:
    """The body rows of the table whose header row starts with `head`."""
    for table in re.findall(r"<table.*?</table>", html, flags=re.S):
        cells = [
            re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)
            for r in re.findall(r"<tr.*?</tr>", table, flags=re.S)
        ]
        if cells and cells[0] and cells[0][0] == head:
            return cells[1:]
    raise AssertionError(f"no table headed {head!r}")


def test_pauses_and_checkins_name_steps_from_one(tmp_path: Path) -> None:
    session = record_scripted(tmp_path / "rec")
    s = summarize(open_session(session))
    assert {p.step for p in s.pauses} == {0}  # the recording's index
    html = write_report(session, tmp_path / "out").read_text()
    pauses = _rows(html, "#")
    assert [row[4] for row in pauses] == ["1", "1"]  # the "step" column
    checkins = _rows(html, "at")
    assert checkins
    assert {row[3] for row in checkins} <= {"1", "n/a"}
    assert "1" in {row[3] for row in checkins}
