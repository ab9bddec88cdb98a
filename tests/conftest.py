"""Fixtures available to every test: real data location and a free port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import free_port, require_shared_data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings (../shared/data, or BIOFEEDBACK_SHARED_DATA); skipped where absent,
    a failure in CI."""
    return require_shared_data()


@pytest.fixture
def port() -> int:
    return free_port()
