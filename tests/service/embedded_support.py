"""Helpers for tests of the embedded broker as the service runs it (per-run logins, ACL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from biofeedback.service.broker import EmbeddedBroker, MosquittoProcess
from biofeedback.service.broker_access import BrokerRole
from biofeedback.service.mqtt import IncomingMessage, MqttLink, MqttSettings


def login_settings(
    broker: EmbeddedBroker, role: BrokerRole | None, protocol: int = 5, **options: Any
) -> MqttSettings:
    """Settings that log in as `role` on `broker` (None: anonymous), quick to reconnect."""
    options.setdefault("reconnect_min_s", 1)
    options.setdefault("reconnect_max_s", 2)
    options.setdefault("connect_timeout_s", 3.0)
    username, password = options.pop("username", None), options.pop("password", None)
    if role is not None:
        login = broker.login(role)
        username, password = login.username, login.password
    return MqttSettings.from_url(
        broker.url, username=username, password=password, protocol=protocol, env={}, **options
    )


async def next_message(link: MqttLink, wait_s: float = 30.0) -> IncomingMessage:
    """The link's next message, or TimeoutError after `wait_s` (generous: a loaded machine)."""
    return await asyncio.wait_for(link.messages().__anext__(), wait_s)


async def collect(link: MqttLink, quiet_s: float) -> list[IncomingMessage]:
    """Everything that arrives until nothing came for `quiet_s` seconds."""
    got: list[IncomingMessage] = []
    it = link.messages()
    while True:
        try:
            got.append(await asyncio.wait_for(it.__anext__(), quiet_s))
        except TimeoutError:
            return got


async def autosaved(proc: MosquittoProcess, since_ns: int, limit_s: float = 30.0) -> None:
    """Wait until Mosquitto's own autosave wrote its database after `since_ns` (time.time_ns)."""
    db = Path(proc.workdir) / "mosquitto.db"

    def written() -> bool:
        return db.exists() and db.stat().st_mtime_ns > since_ns

    async with asyncio.timeout(limit_s):
        while not written():  # noqa: ASYNC110 - a file, not an event of ours
            await asyncio.sleep(0.05)
