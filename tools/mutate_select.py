"""pytest plugin for tools/mutate.sh: keep only the tests named in MUTATE_TESTS.

MUTATE_TESTS is a whitespace-separated list of node-id prefixes (a file, or a file::test);
a prefix written with a leading "-" drops the tests it names. Tests outside the list are
deselected (and reported as such), so mutmut's stats run maps every mutated function to the
listed tests only, and each mutant then runs only those. Unset or empty: nothing changes.

Loaded by tools/mutate.sh through PYTEST_ADDOPTS ("-p mutate_select", this folder on
PYTHONPATH), because mutmut reads its own settings only from pyproject.toml: one test selection
for every module, while a module's own tests may be much faster than the folders that cover it.
"""

from __future__ import annotations

import os

import pytest


def _prefixes() -> tuple[list[str], list[str]]:
    keep: list[str] = []
    drop: list[str] = []
    for word in os.environ.get("MUTATE_TESTS", "").split():
        (drop if word.startswith("-") else keep).append(word.lstrip("-"))
    return keep, drop


def _named(nodeid: str, prefixes: list[str]) -> bool:
    return any(nodeid == p or nodeid.startswith((p + "::", p + "[")) for p in prefixes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect every test the list does not name (or names with a leading "-")."""
    keep, drop = _prefixes()
    if not keep and not drop:
        return
    selected, deselected = [], []
    for item in items:
        ok = (not keep or _named(item.nodeid, keep)) and not _named(item.nodeid, drop)
        (selected if ok else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
