"""MQTT <-> hub: subscribe to every client's topics, feed the hub, publish dashboard commands."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

log = logging.getLogger(__name__)


async def mqtt_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the MQTT feeder runs while the app runs (nothing when no broker is set)."""
    from biofeedback.web.app import CONFIG_KEY

    if app[CONFIG_KEY].mqtt is None:
        yield
        return
    yield
