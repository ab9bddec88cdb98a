"""Fixtures for the dashboard tests: an app on a real loopback socket, fed through its hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

from biofeedback.web import WebConfig, create_app
from biofeedback.web.app import HUB_KEY
from biofeedback.web.hub import Hub, HubLimits

SECRET = "therapist-secret-for-tests"
LINK_SECRET = "link-secret-for-tests-0123456789"


@dataclass
class CollectingSink:
    """Stands in for the MQTT publisher: keeps what the hub would have published."""

    sent: list[tuple[str, bytes]] = field(default_factory=list)
    connected: bool = True

    async def send_command(self, client_id: str, payload: bytes) -> None:
        self.sent.append((client_id, payload))


@dataclass
class Dash:
    client: TestClient  # type: ignore[type-arg]
    hub: Hub
    sink: CollectingSink

    @property
    def origin(self) -> str:
        return f"http://{self.client.host}:{self.client.port}"


@pytest.fixture
async def dash() -> AsyncIterator[Dash]:
    cfg = WebConfig(
        therapist_secret=SECRET,
        link_secret=LINK_SECRET,
        limits=HubLimits(reply_timeout_s=0.3),
    )
    app = create_app(cfg)
    sink = CollectingSink()
    app[HUB_KEY].set_sink(sink)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Dash(client, app[HUB_KEY], sink)
