"""The amqtt in-process broker used when Mosquitto is not installed, with two fixes.

1. amqtt's AnonymousAuthPlugin marks every session anonymous, and amqtt then keeps no QoS 1
   messages for a disconnected anonymous session, so a reconnecting service would lose commands
   sent during a short outage. `LoopbackAuthPlugin` admits every client (this broker only
   listens on loopback) without marking it anonymous, so persistent sessions work.
2. amqtt 0.12 does not always close the server side of a connection that died abruptly; the
   socket then leaks (a ResourceWarning at garbage collection). `FallbackBroker` closes every
   connection's writer when its handler returns and at shutdown.

Imported only when the fallback is used: amqtt is slow to import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

log = logging.getLogger(__name__)


class LoopbackAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Admits every client as a named (non-anonymous) session."""

    @dataclass
    class Config:
        """No options."""

    async def authenticate(self, *, session: Session) -> bool | None:
        """Every loopback client may connect."""
        return True


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a copy of its keys.

    amqtt 0.12 iterates its subscription table with awaits inside the loop (retained messages
    for a connecting client); another client subscribing meanwhile ended that connection with
    "dictionary changed size during iteration".
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))


class FallbackBroker(Broker):  # type: ignore[misc]
    """amqtt's Broker that closes the server side of every connection it accepted."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._writers: set[asyncio.StreamWriter] = set()
        # amqtt's attribute, untyped to mypy: replaced by a dict that iterates safely
        setattr(self, "_subscriptions", _SnapshotDict(getattr(self, "_subscriptions")))  # noqa: B009, B010

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """Serve one connection, then make sure its socket is closed."""
        self._writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        except (OSError, AMQTTError, MQTTError) as exc:
            # e.g. an MQTT 5 CONNECT, which amqtt cannot parse: the client sees the connection
            # close and reports it; here it is only worth a line.
            log.warning("amqtt broker dropped a connection: %s", exc or type(exc).__name__)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def shutdown(self) -> None:
        """Stop amqtt, then close any connection it left open."""
        await super().shutdown()
        writers, self._writers = list(self._writers), set()
        for w in writers:
            w.close()
        for w in writers:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await w.wait_closed()
