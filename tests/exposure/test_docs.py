"""docs/session.md carries the code's transition table, diagram and role table verbatim.

After changing the rules, rewrite the generated blocks with
`.venv/bin/python -m tests.exposure.test_docs`.
"""

from __future__ import annotations

import re

import pytest

from biofeedback.exposure import (
    TRANSITIONS,
    SessionState,
    ready_table_markdown,
    recalibration_table_markdown,
    role_table_markdown,
    transition_mermaid,
    transition_table_markdown,
)
from tests.support import REPO_ROOT

DOC = REPO_ROOT / "docs" / "session.md"

BLOCKS = {
    "transitions": transition_table_markdown,
    "diagram": lambda: "```mermaid\n" + transition_mermaid() + "\n```",
    "roles": role_table_markdown,
    "recalibration": recalibration_table_markdown,
    "ready": ready_table_markdown,
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- BEGIN {name} \(generated from the code; "
        rf"checked by tests/exposure/test_docs.py\) -->\n)"
        rf"(.*?)"
        rf"(<!-- END {name} -->)",
        re.S,
    )


def regenerate() -> None:
    """Rewrite the generated blocks of docs/session.md from the code."""
    text = DOC.read_text(encoding="utf-8")
    for name, render in BLOCKS.items():
        block = render() + "\n"

        def put(m: re.Match[str], block: str = block) -> str:
            return m.group(1) + block + m.group(3)

        text, n = _pattern(name).subn(put, text)
        if n != 1:
            raise SystemExit(f"docs/session.md: block {name!r} markers missing or repeated")
    DOC.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", list(BLOCKS))
def test_doc_block_matches_code(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    m = _pattern(name).search(text)
    assert m, f"docs/session.md lacks the generated block {name!r}"
    assert m.group(2) == BLOCKS[name]() + "\n", (
        f"docs/session.md block {name!r} differs from the code; "
        "run .venv/bin/python -m tests.exposure.test_docs"
    )


def test_table_rows_parse_back_to_the_code_table() -> None:
    # Independent of the renderer: read the Markdown rows and compare with TRANSITIONS.
    text = DOC.read_text(encoding="utf-8")
    m = _pattern("transitions").search(text)
    assert m
    rows = set()
    for line in m.group(2).splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.add((cells[0], cells[1], cells[2]))
    assert rows == {(t.source.value, t.trigger.value, t.target.value) for t in TRANSITIONS}


def test_every_state_is_in_the_diagram_and_has_a_client_pause_row() -> None:
    diagram = transition_mermaid()
    for state in SessionState:
        assert state.value in diagram
        assert any(t.source is state and t.trigger == "pause" for t in TRANSITIONS), state


if __name__ == "__main__":
    regenerate()
