"""Fixtures available to every test: real data location and a free port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import SHARED_DATA, free_port


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data with real recordings; skipped where a clone has no ../shared."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real recordings not present at {SHARED_DATA} (a user's clone has no ../shared)"
        )
    return SHARED_DATA


@pytest.fixture
def port() -> int:
    return free_port()
