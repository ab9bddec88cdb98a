"""docs/recording.md describes every file and column the recorder writes."""

from __future__ import annotations

from biofeedback.recording.schema import TABLES
from tests.support import REPO_ROOT


def test_every_column_is_documented() -> None:
    doc = (REPO_ROOT / "docs" / "recording.md").read_text(encoding="utf-8")
    for spec in TABLES:
        assert f"### `{spec.filename}`" in doc, spec.filename
        section = doc.split(f"### `{spec.filename}`", 1)[1].split("\n### ", 1)[0]
        for col in spec.columns:
            assert f"| `{col.name}` | {col.type} |" in section, f"{spec.filename}: {col.name}"
