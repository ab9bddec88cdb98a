"""The amqtt in-process broker used when Mosquitto is not installed, with its holes closed.

Access control (the same users and ACL as the managed Mosquitto, `broker_access`):

- `PasswordAuthPlugin` admits only this run's users, with their passwords, and refuses a last
  will on a topic its user may not write (amqtt publishes wills without any topic check, so a
  will would otherwise be a way to publish anywhere, retained). It marks no session anonymous:
  amqtt keeps no QoS 1 messages for a disconnected anonymous session, so a reconnecting service
  would lose commands sent during a short outage.
- `TopicAclPlugin` checks every publish, every subscription and every delivery against the
  ACL. A subscription is allowed only when every topic its filter matches is readable, because
  amqtt sends retained messages to a new subscription without the per-delivery check.

And amqtt 0.12's own faults, fixed in `FallbackBroker`:

1. It handles a CONNECT's client id before it authenticates it: a client with a wrong password
   but the service's client id took over (closed) the service's connection, dropped its session
   or replaced the session's last will. Here a CONNECT is authenticated first and refused before
   it touches any session.
2. At connect it sends a client the retained messages of topics *other* sessions subscribed
   to; here a client gets retained messages only for its own subscriptions.
3. It does not always close the server side of a connection that died abruptly; the socket then
   leaks (a ResourceWarning at garbage collection). Every connection's writer is closed when its
   handler returns and at shutdown.

What it cannot enforce is listed in docs/mqtt.md ("Security"). Imported only when the fallback
is used: amqtt is slow to import.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from biofeedback.service.broker_access import BrokerRole, Grants, allowed

log = logging.getLogger(__name__)

_AUTH_PLUGIN = f"{__name__}.PasswordAuthPlugin"
_TOPIC_PLUGIN = f"{__name__}.TopicAclPlugin"


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def plugin_config(
    users: Mapping[str, str], acl: Mapping[BrokerRole, Grants] | None
) -> dict[str, Any]:
    """amqtt's `plugins` config: these users (name -> password) and, when given, this ACL."""
    grants = (
        None
        if acl is None
        else {
            "read": {str(r): list(g.read) for r, g in acl.items()},
            "write": {str(r): list(g.write) for r, g in acl.items()},
        }
    )
    plugins: dict[str, Any] = {
        _AUTH_PLUGIN: {
            "users": {u: _digest(p) for u, p in users.items()},
            "will_topics": None if grants is None else grants["write"],
        }
    }
    if grants is not None:
        plugins[_TOPIC_PLUGIN] = grants
    return plugins


def _grants(read: Mapping[str, list[str]], write: Mapping[str, list[str]], user: str) -> Grants:
    return Grants(read=tuple(read.get(user, ())), write=tuple(write.get(user, ())))


class PasswordAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Admits this run's users with their passwords, as named (non-anonymous) sessions."""

    @dataclass
    class Config:
        """`users`: name -> SHA-256 of the password; `will_topics`: name -> writable filters
        (None: a last will may name any topic)."""

        users: dict[str, str] = field(default_factory=dict)
        will_topics: dict[str, list[str]] | None = None

    async def authenticate(self, *, session: Session) -> bool | None:
        """True only for a known user with its password and an allowed last will."""
        cfg: PasswordAuthPlugin.Config = self.config
        user, password = session.username, session.password
        expected = cfg.users.get(user) if user is not None else None
        if expected is None or password is None:
            log.warning("amqtt broker refused client %r: unknown user %r", session.client_id, user)
            return False
        if not hmac.compare_digest(_digest(str(password)), expected):
            log.warning(
                "amqtt broker refused client %r: wrong password for %r", session.client_id, user
            )
            return False
        if session.will_flag and cfg.will_topics is not None:
            will = _grants({}, cfg.will_topics, user)
            if not session.will_topic or not allowed(will, "write", session.will_topic):
                log.warning(
                    "amqtt broker refused client %r: user %r may not leave a last will on %r",
                    session.client_id,
                    user,
                    session.will_topic,
                )
                return False
        return True


class TopicAclPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Allows each user only the topics its grants name (anything else is denied)."""

    @dataclass
    class Config:
        """Per user name: topic filters it may read, and may write."""

        read: dict[str, list[str]] = field(default_factory=dict)
        write: dict[str, list[str]] = field(default_factory=dict)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        """Publish needs write; subscribe (the whole filter) and receive need read."""
        cfg: TopicAclPlugin.Config = self.config
        if session is None or topic is None or session.username is None:
            return False
        grants = _grants(cfg.read, cfg.write, session.username)
        ok = allowed(grants, "write" if action == Action.PUBLISH else "read", topic)
        if not ok and action != Action.RECEIVE:
            log.info("amqtt broker denied %r %s on %r", session.username, action, topic)
        return ok


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a copy of its keys (and `items()` a copy of each list).

    amqtt 0.12 iterates its subscription table with awaits inside the loop (retained messages
    for a connecting client; the topic check of every delivery): another client subscribing
    meanwhile ended that connection, or the broker's whole broadcast task, with "dictionary
    changed size during iteration".
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(k, list(v) if isinstance(v, list) else v) for k, v in super().items()]


class FallbackBroker(Broker):  # type: ignore[misc]
    """amqtt's Broker that authenticates before touching sessions, sends retained messages only
    for a client's own subscriptions, and closes the server side of every connection."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._writers: set[asyncio.StreamWriter] = set()
        # amqtt's attribute, untyped to mypy: replaced by a dict that iterates safely
        setattr(self, "_subscriptions", _SnapshotDict(getattr(self, "_subscriptions")))  # noqa: B009, B010

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt 0.12.1's own steps, with authentication moved before any session is touched."""
        try:
            handler, client_session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (AMQTTError, NoDataError) as exc:
            raise AMQTTError(exc) from exc
        except MQTTError:
            await writer.close()
            raise
        if not await self._authenticate(client_session, None):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(
                f"client {client_session.client_id!r} from {remote_address}:{remote_port} refused"
            )
        sessions: dict[str, tuple[Session, BrokerProtocolHandler]] = self._sessions
        if client_session.clean_session:
            if client_session.client_id:
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in sessions:
            existing, _ = sessions[client_session.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain"):
                setattr(existing, name, getattr(client_session, name))
            existing.keep_alive = client_session.keep_alive
            existing.username = client_session.username
            existing.password = client_session.password
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        return handler, client_session

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Retained messages for `subscription` only when `session` holds that subscription."""
        subscribers = self._subscriptions.get(subscription[0], ())
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)

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
