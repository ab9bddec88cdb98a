"""An asyncio face on paho-mqtt 2.x: settings, one connection, offline queue, reconnect.

`MqttLink` owns one paho client whose network loop runs in paho's own thread (`loop_start`);
every paho callback is handed to the asyncio loop with `call_soon_threadsafe`, so all of the
link's state is touched only from the event loop. paho reconnects by itself with exponential
backoff; on each (re)connection the link re-subscribes, republishes the retained state it holds
and flushes what it queued while offline.

Offline policy (docs/mqtt.md, "Offline policy"): while the broker is away, messages go into a
bounded queue (`MqttSettings.queue_limit`). When it is full, the oldest live sample (QoS 0) is
dropped first; only when no sample is left is the oldest event (QoS 1) dropped, and every dropped
event is logged at ERROR with its topic. Retained messages are not queued: the newest one per
topic is kept and republished on reconnect. Samples whose expiry passed while queued are dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from biofeedback.errors import BrokerError, ConfigError, ParseError
from biofeedback.service.topics import Topic, delivery, reply_topic_ok, topic

log = logging.getLogger(__name__)

ENV_USERNAME = "BIOFEEDBACK_MQTT_USERNAME"
ENV_PASSWORD = "BIOFEEDBACK_MQTT_PASSWORD"
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
_PROTOCOLS = {"5": 5, "5.0": 5, "311": 311, "3.1.1": 311}


PROBE_SETTLE_S = 0.2  # seconds between the 3.1.1 session probe and the real connect


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to reach the broker. Credentials come from the config file or environment."""

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # CA bundle that signed the broker's certificate (TLS)
    cert_file: str | None = None  # optional client certificate (TLS)
    key_file: str | None = None
    protocol: int = 5  # 5 or 311
    keepalive_s: int = 30
    connect_timeout_s: float = 5.0
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    queue_limit: int = 10_000  # messages held while offline (see the module docstring)
    # Persistent session so QoS 1 messages for us survive a short outage. 0 = clean session.
    session_expiry_s: int = 3600
    drain_timeout_s: float = 2.0  # how long closing waits for unacknowledged QoS 1 messages

    def __post_init__(self) -> None:
        if self.protocol not in (5, 311):
            raise ConfigError(f"MQTT protocol must be 5 or 311 (3.1.1), got {self.protocol!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"MQTT port must be 1-65535, got {self.port!r}")
        if self.password is not None and self.username is None:
            raise ConfigError(
                f"an MQTT password is set but no username (set {ENV_USERNAME} or [mqtt] username)"
            )
        if self.key_file is not None and self.cert_file is None:
            raise ConfigError("MQTT key_file given without cert_file (the client certificate)")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ConfigError("MQTT ca_file/cert_file need TLS: use an mqtts:// URL")
        if self.queue_limit < 1:
            raise ConfigError(f"MQTT queue_limit must be >= 1, got {self.queue_limit!r}")
        if not 1 <= self.reconnect_min_s <= self.reconnect_max_s:
            raise ConfigError("MQTT reconnect delays need 1 <= reconnect_min_s <= reconnect_max_s")

    @property
    def url(self) -> str:
        """The broker URL without credentials (safe to log)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        protocol: int | str = 5,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> MqttSettings:
        """Settings from `mqtt://host:port` or `mqtts://host:port` plus explicit values.

        Username and password not given here are taken from the environment
        (BIOFEEDBACK_MQTT_USERNAME / BIOFEEDBACK_MQTT_PASSWORD). A password inside the URL is
        refused: URLs end up on command lines and in logs. `options` are other fields
        (keepalive_s, queue_limit, ...).
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ConfigError(f"MQTT URL {url!r}: scheme must be mqtt:// or mqtts://")
        if parts.password is not None:
            raise ConfigError(
                "MQTT URL must not contain a password: put it in the config file as [mqtt] "
                f"password (a file only you can read: chmod 600) or in {ENV_PASSWORD}"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"MQTT URL {url!r}: bad port ({exc})") from exc
        host = parts.hostname
        if not host:
            raise ConfigError(f"MQTT URL {url!r} names no host")
        if parts.path not in ("", "/"):
            raise ConfigError(f"MQTT URL {url!r}: a path is not allowed")
        environ = os.environ if env is None else env
        if username is None:
            username = unquote(parts.username) if parts.username else environ.get(ENV_USERNAME)
        if password is None:
            password = environ.get(ENV_PASSWORD)
        tls = _SCHEMES[scheme]
        proto = _PROTOCOLS.get(str(protocol).strip().lower())
        if proto is None:
            raise ConfigError(f"MQTT protocol must be 5 or 311 (3.1.1), got {protocol!r}")
        names = set(cls.__dataclass_fields__)
        unknown = set(options) - names
        if unknown:
            raise ConfigError(f"unknown MQTT setting(s): {', '.join(sorted(unknown))}")
        return cls(
            host=host,
            port=port if port is not None else (8883 if tls else 1883),
            tls=tls,
            username=username or None,
            password=password or None,
            ca_file=os.fspath(ca_file) if ca_file else None,
            cert_file=os.fspath(cert_file) if cert_file else None,
            key_file=os.fspath(key_file) if key_file else None,
            protocol=proto,
            **options,
        )

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None
    ) -> MqttSettings:
        """Settings from a config table such as `[mqtt]`: `url` plus any other field name."""
        values = dict(table)
        url = values.pop("url", "mqtt://127.0.0.1:1883")
        if not isinstance(url, str):
            raise ConfigError(f"[mqtt] url must be a string, got {url!r}")
        try:
            return cls.from_url(url, env=env, **values)
        except TypeError as exc:
            raise ConfigError(f"[mqtt]: {exc}") from exc


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message received on a subscription."""

    topic: str
    payload: bytes
    response_topic: str | None = None  # MQTT 5 request/response
    correlation_data: bytes | None = None
    retain: bool = False
    qos: int = 0

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object, or ParseError naming the topic and the problem."""
        try:
            value = json.loads(self.payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"payload on {self.topic} is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ParseError(f"payload on {self.topic} is JSON but not an object")
        return value


@dataclass(slots=True)
class LinkStats:
    """Counters a caller can log or publish; they only grow."""

    published: int = 0
    received: int = 0
    queued: int = 0  # messages that went through the offline queue
    dropped_samples: int = 0  # live samples dropped: queue full
    dropped_events: int = 0  # QoS 1 messages dropped: queue full (each logged at ERROR)
    expired: int = 0  # samples whose expiry passed while queued
    undelivered_at_close: int = 0
    reconnects: int = 0


@dataclass(slots=True)
class _Out:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expiry_s: float | None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    queued_at: float = 0.0  # monotonic
    seq: int = 0


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; NaN/Infinity are refused (they are not JSON)."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ParseError(f"payload cannot be encoded as JSON: {exc}") from exc


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


# bytes read from the socket at once; paho asks for 1 byte (packet type), 1 byte per byte of the
# remaining length and then the rest, one system call each
_RECV_CHUNK = 65536


class _PahoClient(paho.Client):
    """paho's Client with three changes: TCP_NODELAY on its socket, a failed TLS handshake
    closes the socket (paho 2.2 leaks it), and reads are buffered.

    Without TCP_NODELAY, Nagle's algorithm holds the 2nd and 3rd of a beat's three small
    messages until the broker's delayed ACK (~40 ms): measured p90 latency 44 ms instead of 2 ms.

    paho reads one packet per wake-up of its network thread (a `select` each) in four `recv`
    calls (profiled on the dashboard at 720 messages a second: 8,192 `select` and 32,765 `recv`
    for 8,000 messages, and 7,013 wake-ups of the event loop). Here one `recv` takes up to
    64 KiB and every whole packet in it is handled before paho waits again (bytes already read
    are invisible to `select`, so they must not wait for it), and the event loop is woken once
    for all of them (`on_read_done`).
    """

    _rx_sock: weakref.ref[Any] | None = None
    _rx_buf: bytes = b""
    _rx_pos: int = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        sock = self._sock
        if self._rx_sock is None or self._rx_sock() is not sock:
            # a new connection: nothing read from an old socket may be taken for its data
            self._rx_sock = None if sock is None else weakref.ref(sock)
            self._rx_buf, self._rx_pos = b"", 0
        pos = self._rx_pos
        buf = self._rx_buf
        if pos < len(buf):
            self._rx_pos = pos + bufsize
            return buf[pos : pos + bufsize]
        data = super()._sock_recv(max(bufsize, _RECV_CHUNK))  # BlockingIOError: nothing yet
        if len(data) <= bufsize:
            self._rx_buf, self._rx_pos = b"", 0
            return data  # b"": the broker closed the connection
        self._rx_buf, self._rx_pos = data, bufsize
        return data[:bufsize]

    def _rx_buffered(self) -> bool:
        ref, sock = self._rx_sock, self._sock
        return (
            sock is not None
            and ref is not None
            and ref() is sock
            and self._rx_pos < len(self._rx_buf)
        )

    # told around each read, so received messages are handed to the event loop once per read
    on_read_start: Callable[[], None] | None = None
    on_read_done: Callable[[], None] | None = None

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self.on_read_start is not None:
            self.on_read_start()
        try:
            rc = super().loop_read(max_packets)
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rx_buffered():
                rc = super().loop_read(max_packets)
        finally:
            if self.on_read_done is not None:
                self.on_read_done()
        return rc

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        ctx = self._ssl_context
        if ctx is None:
            raise BrokerError("TLS requested but no TLS context was set up")
        ssl_sock = ctx.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()  # the context checks the certificate and the host name
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def _close_socket(client: paho.Client) -> None:
    """Close a stopped client's socket and its wake-up socket pair now.

    paho closes them only when the Client object is garbage-collected (and leaves the socket
    open after a refused login), so a closed link would hold two or three descriptors.
    """
    reset = getattr(client, "_reset_sockets", None)
    if callable(reset):
        with contextlib.suppress(OSError):
            reset()
        return
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _match_filter(sub: str) -> str:
    """The topic filter part of a possibly shared subscription."""
    if sub.startswith("$share/"):
        parts = sub.split("/", 2)
        return parts[2] if len(parts) == 3 else sub
    return sub


class _MessageIterator:
    def __init__(self, queue: asyncio.Queue[IncomingMessage | None]) -> None:
        self._queue = queue
        self._done = False

    def __aiter__(self) -> _MessageIterator:
        return self

    async def __anext__(self) -> IncomingMessage:
        if self._done:
            raise StopAsyncIteration
        msg = await self._queue.get()
        if msg is None:
            self._done = True
            self._queue.put_nowait(None)  # let any other iterator end too
            raise StopAsyncIteration
        return msg


class MqttLink:
    """One connection to the broker, used as `async with MqttLink(settings, name) as link:`.

    Entering connects (BrokerError with a clear message when the broker cannot be reached, the
    TLS handshake fails or the login is refused) and then keeps the connection up by itself.
    Publishing never blocks and never raises because the broker is away.
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_name: str,
        *,
        will: tuple[str, bytes, bool] | None = None,
        inbox_limit: int = 100_000,
    ) -> None:
        if not client_name or len(client_name) > 128:
            raise ConfigError(f"MQTT client name {client_name!r} must be 1-128 characters")
        self.settings = settings
        self.client_name = client_name
        self.will = will
        self.stats = LinkStats()
        self._inbox_limit = inbox_limit
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._closing = False
        self._closed = False
        self._first: asyncio.Future[None] | None = None
        self._connected_event = asyncio.Event()
        self._disconnected_event = asyncio.Event()
        self._subs: dict[str, int] = {}
        self._match: tuple[str, ...] = ()
        # topic -> matches one of `_match` (paho's matcher costs ~30 µs a call; a dashboard with
        # hundreds of clients sees a few thousand distinct topics), valid for `_matched_for`
        self._matched: dict[str, bool] = {}
        self._matched_for: tuple[str, ...] = ()
        # received messages waiting for the loop: one wake-up of the loop per batch, not per message
        self._arrivals: collections.deque[IncomingMessage] = collections.deque()
        self._drain_posted = False
        self._in_read = False  # paho's thread is handling what it read (see _PahoClient)
        self._handler: Callable[[IncomingMessage], None] | None = None  # set_handler
        self._sub_waiters: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._retained: dict[str, _Out] = {}
        self._samples: collections.deque[_Out] = collections.deque()
        self._events: collections.deque[_Out] = collections.deque()
        self._seq = 0
        self._pending: set[int] = set()  # QoS 1 mids not yet acknowledged
        self._pending_empty = asyncio.Event()
        self._pending_empty.set()
        self._inbox: asyncio.Queue[IncomingMessage | None] = asyncio.Queue()
        self._dropped_inbox = 0
        self._outage_start: float | None = None
        self._outage_logged = False

    # ---- public API ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the broker connection is up (as far as the last callback said)."""
        return self._connected

    @property
    def queued(self) -> int:
        """Messages waiting in the offline queue."""
        return len(self._samples) + len(self._events)

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        first: asyncio.Future[None] = self._loop.create_future()
        self._first = first
        client = self._make_client()
        self._client = client
        try:
            await asyncio.to_thread(self._connect_blocking, client)
            client.loop_start()
            try:
                await asyncio.wait_for(asyncio.shield(first), self.settings.connect_timeout_s + 1.0)
            except TimeoutError as exc:
                raise BrokerError(
                    f"MQTT broker at {self.settings.url} accepted the connection but sent no "
                    f"CONNACK within {self.settings.connect_timeout_s + 1.0:.0f} s"
                    f"{self._protocol_hints()}"
                ) from exc
        except BaseException:
            if not first.done():
                first.cancel()
            elif not first.cancelled():
                first.exception()  # retrieved: it is what is being raised, or superseded
            await self._shutdown_client(client)
            self._closed = True
            raise
        log.info("connected to MQTT broker %s as %s", self.settings.url, self.client_name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Deliver what can be delivered briefly, say offline (the will payload), disconnect."""
        if self._closed:
            return
        self._closing = True
        client = self._client
        try:
            if client is not None and self._connected:
                await self._wait_pending(self.settings.drain_timeout_s)
                if self.will is not None:
                    w_topic, w_payload, w_retain = self.will
                    self._send(_Out(w_topic, w_payload, 1, w_retain, None))
                    await self._wait_pending(min(1.0, self.settings.drain_timeout_s))
        finally:
            left = self.queued + len(self._pending)
            if left:
                self.stats.undelivered_at_close += left
                log.warning(
                    "closing MQTT link %s with %d message(s) not delivered (broker %s)",
                    self.client_name,
                    left,
                    "unreachable" if not self._connected else "slow to acknowledge",
                )
            self._closed = True
            self._connected = False
            self._connected_event.set()  # wake wait_connected(): it raises now
            self._disconnected_event.set()
            if client is not None:
                await self._shutdown_client(client)
            for fut in self._sub_waiters.values():
                if not fut.done():
                    fut.cancel()
            self._inbox.put_nowait(None)

    async def wait_connected(self) -> None:
        """Wait until the link is connected (wrap in `asyncio.timeout` to bound it).

        BrokerError when the link is or gets closed meanwhile.
        """
        while not self._connected:
            if self._closed:
                raise BrokerError(f"MQTT link {self.client_name} is closed")
            self._connected_event.clear()
            await self._connected_event.wait()

    async def wait_disconnected(self) -> None:
        """Wait until the link has noticed that the broker is gone."""
        while self._connected:
            self._disconnected_event.clear()
            await self._disconnected_event.wait()

    async def drain(self) -> None:
        """Wait until nothing is queued offline and every QoS 1 message was acknowledged."""
        while self.queued or self._pending or not self._connected:
            if not self._connected:
                await self.wait_connected()
            else:
                await asyncio.sleep(0.01)

    def publish_json(
        self,
        topic_name: str,
        payload: Mapping[str, Any],
        *,
        qos: int = 0,
        retain: bool = False,
        expiry_s: float | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        """Publish a JSON object (non-blocking; queued while offline, see the module docstring)."""
        self.publish_bytes(
            topic_name,
            encode_json(payload),
            qos=qos,
            retain=retain,
            expiry_s=expiry_s,
            response_topic=response_topic,
            correlation_data=correlation_data,
        )

    def publish_kind(self, client_id: str, kind: Topic, payload: Mapping[str, Any]) -> None:
        """Publish on `biofeedback/v1/<client_id>/<kind>` with that kind's QoS/retain/expiry."""
        d = delivery(kind)
        self.publish_json(
            topic(client_id, kind), payload, qos=d.qos, retain=d.retain, expiry_s=d.expiry_s
        )

    def publish_bytes(
        self,
        topic_name: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        expiry_s: float | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        """Publish raw bytes (non-blocking; queued while offline).

        After the link is closed nothing is sent: the message is counted and logged (shutdown
        order must not turn a last status update into a traceback).
        """
        if self._closed:
            self.stats.undelivered_at_close += 1
            log.warning(
                "MQTT link %s is closed: not publishing on %s", self.client_name, topic_name
            )
            return
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, got {qos!r}")
        if not topic_name or any(c in topic_name for c in "+#\x00"):
            raise ValueError(f"invalid topic to publish on: {topic_name!r}")
        self._seq += 1
        out = _Out(
            topic_name,
            bytes(payload),
            qos,
            retain,
            expiry_s,
            response_topic,
            correlation_data,
            time.monotonic(),
            self._seq,
        )
        if retain:
            # Retained state: only the newest per topic matters; it is republished on reconnect.
            if payload:
                self._retained[topic_name] = out
            else:
                self._retained.pop(topic_name, None)
        if self._connected:
            self._send(out)
        elif not retain:
            self._enqueue(out)

    def reply(self, request: IncomingMessage, client_id: str, payload: Mapping[str, Any]) -> None:
        """Answer a command: on its MQTT 5 response topic (with its correlation data) when that
        lies under this client's `reply` topic, else on the plain `reply` topic."""
        d = delivery(Topic.REPLY)
        target = topic(client_id, Topic.REPLY)
        if request.response_topic:
            if reply_topic_ok(client_id, request.response_topic):
                target = request.response_topic
            else:
                log.warning(
                    "command response topic %r is not under %s; replying there instead",
                    request.response_topic,
                    target,
                )
        self.publish_json(
            target,
            payload,
            qos=d.qos,
            expiry_s=d.expiry_s,
            correlation_data=request.correlation_data,
        )

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe (kept across reconnects). BrokerError when the broker refuses it."""
        if self._closed:
            raise BrokerError(f"MQTT link {self.client_name} is closed; cannot subscribe")
        self._subs[topic_filter] = qos
        self._match = tuple(_match_filter(s) for s in self._subs)
        if self._connected:
            codes = await self._subscribe_now(topic_filter, qos)
            self._check_suback(topic_filter, codes)

    async def unsubscribe(self, topic_filter: str) -> None:
        """Stop receiving a filter."""
        self._subs.pop(topic_filter, None)
        self._match = tuple(_match_filter(s) for s in self._subs)
        if self._connected and self._client is not None:
            self._client.unsubscribe(topic_filter)

    def messages(self) -> _MessageIterator:
        """Async iterator over received messages; ends when the link closes."""
        return _MessageIterator(self._inbox)

    def set_handler(self, handler: Callable[[IncomingMessage], None] | None) -> None:
        """Hand every received message to `handler` on the event loop, in arrival order, instead
        of queueing it for `messages()`; None goes back to the queue.

        For a consumer that handles a message synchronously (the dashboard's hub): the messages
        paho read in one go are handled in one callback, with no queue and no task switch per
        message. A handler that raises is logged and the next message still gets through.
        Messages already queued are handed over first, so none is lost or reordered.
        """
        self._handler = handler
        if handler is None:
            return
        while not self._inbox.empty():
            msg = self._inbox.get_nowait()
            if msg is None:  # closed meanwhile: leave the end marker for any iterator
                self._inbox.put_nowait(None)
                return
            self.stats.received -= 1  # counted when it was queued
            self._handle(handler, msg)

    # ---- paho plumbing -------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        s = self.settings
        proto = MQTTProtocolVersion.MQTTv5 if s.protocol == 5 else MQTTProtocolVersion.MQTTv311
        kwargs: dict[str, Any] = {}
        if s.protocol == 311:
            kwargs["clean_session"] = s.session_expiry_s == 0
        client = _PahoClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_name,
            protocol=proto,
            **kwargs,
        )
        client.connect_timeout = s.connect_timeout_s
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        client.max_inflight_messages_set(100)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            self._setup_tls(client)
        if self.will is not None:
            w_topic, w_payload, w_retain = self.will
            client.will_set(w_topic, w_payload, qos=1, retain=w_retain)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_message = self._cb_message
        client.on_read_start = self._cb_read_start
        client.on_read_done = self._cb_read_done
        client.on_publish = self._cb_publish
        client.on_subscribe = self._cb_subscribe
        return client

    def _setup_tls(self, client: paho.Client) -> None:
        s = self.settings
        for label, path in (("CA", s.ca_file), ("certificate", s.cert_file), ("key", s.key_file)):
            if path is not None and not Path(path).is_file():
                raise BrokerError(f"MQTT TLS {label} file not found: {path}")
        try:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BrokerError(
                f"MQTT TLS files could not be loaded (CA {s.ca_file}, cert {s.cert_file}, "
                f"key {s.key_file}): {exc}"
            ) from exc

    def _connect_blocking(self, client: paho.Client) -> None:
        """TCP connect, TLS handshake and CONNECT (runs in a worker thread)."""
        s = self.settings
        try:
            if s.protocol == 5:
                props = _properties(PacketTypes.CONNECT)
                if s.session_expiry_s > 0:
                    props.SessionExpiryInterval = s.session_expiry_s
                    # Nothing stale from an earlier run (such as an old consent): its session is
                    # ended first. Then always clean_start=false: Mosquitto 2.0 persists only
                    # sessions opened that way, so a clean first connect would lose this one,
                    # subscriptions and queued commands with it, if the broker restarts.
                    self._end_old_session_5()
                client.connect(
                    s.host,
                    s.port,
                    s.keepalive_s,
                    clean_start=s.session_expiry_s == 0,
                    properties=props,
                )
            else:
                if s.session_expiry_s > 0:
                    self._clear_old_session_311()
                client.connect(s.host, s.port, s.keepalive_s)
        except ssl.SSLCertVerificationError as exc:
            raise BrokerError(
                f"TLS certificate of MQTT broker {s.url} was not accepted "
                f"(CA file {s.ca_file or 'system default'}): {exc.verify_message or exc}"
            ) from exc
        except ssl.SSLError as exc:
            raise BrokerError(
                f"TLS handshake with MQTT broker {s.url} failed: {exc}{self._protocol_hints()}"
            ) from exc
        except socket.gaierror as exc:
            raise BrokerError(f"MQTT broker host {s.host!r} is unknown: {exc.strerror}") from exc
        except ConnectionRefusedError as exc:
            raise BrokerError(
                f"MQTT broker {s.url} refused the TCP connection (is it running on that port?)"
            ) from exc
        except TimeoutError as exc:
            raise BrokerError(
                f"MQTT broker {s.url} did not answer within {s.connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise BrokerError(f"cannot reach MQTT broker {s.url}: {exc}") from exc

    def _clear_old_session_311(self) -> None:
        """MQTT 3.1.1 has no 'clean on the first connect only'. Probe with a persistent connect;
        when an earlier run left a session (whose queued messages, such as an old consent, must
        not be applied now), wipe it with a clean connect. The real connect is then persistent.

        (Always connecting clean first would be simpler, but amqtt 0.12 then keeps the session
        marked clean and stores no QoS 1 messages for it while it is offline.)
        """
        if self._probe_311(clean=False):
            log.info("discarding an earlier run's MQTT session of %s", self.client_name)
            self._probe_311(clean=True)
        # amqtt handles a DISCONNECT asynchronously: a CONNECT with the same id right behind it
        # is taken for a take-over of the probe's still-open session, and that connection then
        # lost its subscriptions. A moment's wait (in this worker thread) avoids the race.
        time.sleep(PROBE_SETTLE_S)

    def _end_old_session_5(self) -> None:
        """End any session an earlier run left under this client name: one MQTT 5 connect with
        clean start and session expiry 0, then disconnect (the broker then keeps nothing)."""
        self._probe(5, clean=True)

    def _probe_311(self, *, clean: bool) -> bool:
        """Connect and disconnect once; True when the broker said a session was present."""
        return self._probe(311, clean=clean)

    def _probe(self, protocol: int, *, clean: bool) -> bool:
        """Connect and disconnect once with this link's name and login; True when the broker
        said a session was present. A refused login is left to the real connect to report."""
        s = self.settings
        if protocol == 5:
            tmp = _PahoClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_name,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        else:
            tmp = _PahoClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_name,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=clean,
            )
        tmp.connect_timeout = s.connect_timeout_s
        if s.username is not None:
            tmp.username_pw_set(s.username, s.password)
        if s.tls:
            self._setup_tls(tmp)
        present: list[bool] = []

        def on_connect(c: Any, u: Any, flags: paho.ConnectFlags, rc: ReasonCode, p: Any) -> None:
            present.append(bool(flags.session_present) and not rc.is_failure)

        tmp.on_connect = on_connect
        if protocol == 5:
            # no SessionExpiryInterval property: 0, the session ends with this connection
            tmp.connect(s.host, s.port, s.keepalive_s, clean_start=clean)
        else:
            tmp.connect(s.host, s.port, s.keepalive_s)
        deadline = time.monotonic() + s.connect_timeout_s
        try:
            while not present and time.monotonic() < deadline:
                if tmp.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break  # refused: the real connect reports why
        finally:
            tmp.disconnect()
            with contextlib.suppress(OSError):
                tmp.loop(0.05)
            _close_socket(tmp)
        return bool(present and present[0])

    async def _shutdown_client(self, client: paho.Client) -> None:
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        _close_socket(client)

    def _post(self, fn: Any, *args: Any) -> None:
        """Run `fn(*args)` on the event loop (called from paho's thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closed between the check and the call
            loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log.debug(
            "%s CONNACK %s, session present: %s", self.client_name, reason, flags.session_present
        )
        self._post(self._on_connect, bool(reason.is_failure), str(reason))

    def _cb_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._post(self._on_disconnect, str(reason))

    def _cb_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        name = message.topic
        # Some brokers (amqtt 0.12) send retained messages of topics this client never
        # subscribed to; only what matches one of our filters gets through.
        match = self._match
        if self._matched_for is not match or len(self._matched) > 20_000:
            self._matched = {}
            self._matched_for = match
        ok = self._matched.get(name)
        if ok is None:
            ok = self._matched[name] = any(paho.topic_matches_sub(f, name) for f in match)
        if not ok:
            log.debug("ignoring message on %s: matches none of our subscriptions", name)
            return
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        msg = IncomingMessage(
            topic=name,
            payload=bytes(message.payload),
            response_topic=response_topic,
            correlation_data=bytes(correlation) if correlation is not None else None,
            retain=bool(message.retain),
            qos=int(message.qos),
        )
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # as `_post` would: nobody is left to read it
        self._arrivals.append(msg)
        # the loop is woken once paho has handled everything it read (`_cb_read_done`): woken
        # per message, the loop would take each one alone while paho parses the next
        if not self._in_read:
            self._wake_for_arrivals()

    def _wake_for_arrivals(self) -> None:
        if self._arrivals and not self._drain_posted:
            self._drain_posted = True
            self._post(self._drain_arrivals)

    def _cb_read_start(self) -> None:
        self._in_read = True

    def _cb_read_done(self) -> None:
        self._in_read = False
        self._wake_for_arrivals()

    def _drain_arrivals(self) -> None:
        # the flag is cleared before draining: a message appended meanwhile is either drained
        # here or posts a drain of its own
        self._drain_posted = False
        arrivals = self._arrivals
        handler = self._handler
        if handler is None:
            while arrivals:
                self._on_message(arrivals.popleft())
            return
        while arrivals:
            self._handle(handler, arrivals.popleft())

    def _handle(self, handler: Callable[[IncomingMessage], None], msg: IncomingMessage) -> None:
        self.stats.received += 1
        try:
            handler(msg)
        except Exception:
            # one bad message must not cost the rest of its batch nor stop later ones
            log.exception(
                "MQTT link %s: handling a message on %s failed", self.client_name, msg.topic[:200]
            )

    def _cb_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._post(self._on_puback, mid, str(reason) if reason.is_failure else None)

    def _cb_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._post(self._on_suback, mid, list(reasons))

    # ---- event-loop side -----------------------------------------------------------------

    def _on_connect(self, failed: bool, reason: str) -> None:
        first = self._first
        if failed:
            msg = self._refusal_message(reason)
            if first is not None and not first.done():
                first.set_exception(BrokerError(msg))
            else:
                log.warning("reconnect to %s refused: %s", self.settings.url, msg)
            return
        if self._closed:
            return
        reconnect = first is not None and first.done()
        if reconnect:
            self.stats.reconnects += 1
        for f, q in self._subs.items():
            self._fire_subscribe(f, q)
        republished = 0
        for out in sorted(self._retained.values(), key=lambda o: o.seq):
            self._send(out)
            republished += 1
        flushed = self._flush()
        self._connected = True
        self._connected_event.set()
        if reconnect:
            gap = time.monotonic() - self._outage_start if self._outage_start else 0.0
            log.info(
                "reconnected to %s after %.1f s: %d retained republished, %d queued sent, "
                "dropped so far: %d samples, %d events, %d expired",
                self.settings.url,
                gap,
                republished,
                flushed,
                self.stats.dropped_samples,
                self.stats.dropped_events,
                self.stats.expired,
            )
        self._outage_start = None
        self._outage_logged = False
        if first is not None and not first.done():
            first.set_result(None)

    def _protocol_hints(self) -> str:
        s = self.settings
        hints = []
        if s.protocol == 5:
            hints.append("a broker that only speaks MQTT 3.1.1 (such as amqtt) needs protocol 311")
        if not s.tls:
            hints.append("a TLS port needs an mqtts:// URL")
        elif s.cert_file is None:
            hints.append("the broker may require a client certificate (cert_file, key_file)")
        else:
            hints.append(f"the broker may not accept the client certificate {s.cert_file}")
        return f" -- {'; '.join(hints)}" if hints else ""

    def _refusal_message(self, reason: str) -> str:
        s = self.settings
        low = reason.lower()
        if "user name or password" in low or "bad user" in low or "not authori" in low:
            # Mosquitto answers a wrong password with "Not authorized" on MQTT 5.
            who = f"user {s.username!r}" if s.username else "no username (anonymous)"
            return (
                f"MQTT broker {s.url} refused the login ({reason}) for {who}: check the username "
                f"and password in the config file or {ENV_USERNAME}/{ENV_PASSWORD}, and that "
                f"this user may connect"
            )
        return f"MQTT broker {s.url} refused the connection: {reason}"

    def _on_disconnect(self, reason: str) -> None:
        was = self._connected
        self._connected = False
        self._disconnected_event.set()
        first = self._first
        if first is not None and not first.done():
            first.set_exception(
                BrokerError(
                    f"MQTT broker {self.settings.url} closed the connection before accepting it "
                    f"({reason}){self._protocol_hints()}"
                )
            )
            return
        if self._closing or self._closed:
            return
        if was:
            self._outage_start = time.monotonic()
            log.warning(
                "lost MQTT broker %s (%s): measuring and recording go on, messages are queued "
                "(limit %d), reconnecting with backoff",
                self.settings.url,
                reason,
                self.settings.queue_limit,
            )

    def _on_message(self, msg: IncomingMessage) -> None:
        self.stats.received += 1
        if self._inbox.qsize() >= self._inbox_limit:
            self._dropped_inbox += 1
            if self._dropped_inbox == 1 or self._dropped_inbox % 1000 == 0:
                log.error(
                    "MQTT link %s: inbox full (%d), dropped %d received message(s); the "
                    "consumer is not keeping up",
                    self.client_name,
                    self._inbox_limit,
                    self._dropped_inbox,
                )
            return
        self._inbox.put_nowait(msg)

    def _on_puback(self, mid: int, failure: str | None) -> None:
        if failure is not None:
            log.error("broker rejected a QoS 1 message (mid %d): %s", mid, failure)
        self._pending.discard(mid)
        if not self._pending:
            self._pending_empty.set()

    def _on_suback(self, mid: int, reasons: list[ReasonCode]) -> None:
        fut = self._sub_waiters.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reasons)
        else:
            for r in reasons:
                if r.is_failure:
                    log.error("broker refused a re-subscription: %s", r)

    def _fire_subscribe(self, topic_filter: str, qos: int) -> int | None:
        client = self._client
        if client is None:
            return None
        rc, mid = client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("subscribe to %s not sent (%s); retried on reconnect", topic_filter, rc)
            return None
        return mid

    async def _subscribe_now(self, topic_filter: str, qos: int) -> list[ReasonCode]:
        assert self._loop is not None
        mid = self._fire_subscribe(topic_filter, qos)
        if mid is None:
            return []
        fut: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._sub_waiters[mid] = fut
        try:
            return await asyncio.wait_for(fut, self.settings.connect_timeout_s + 5.0)
        except TimeoutError:
            # Connection probably dropped; the subscription is renewed on reconnect.
            log.warning("no SUBACK for %s yet; it is renewed on reconnect", topic_filter)
            return []
        finally:
            self._sub_waiters.pop(mid, None)

    def _check_suback(self, topic_filter: str, codes: list[ReasonCode]) -> None:
        for code in codes:
            if code.is_failure:
                self._subs.pop(topic_filter, None)
                self._match = tuple(_match_filter(s) for s in self._subs)
                raise BrokerError(
                    f"MQTT broker {self.settings.url} refused the subscription to "
                    f"{topic_filter!r}: {code} (check the broker's ACL for this user)"
                )

    def _properties(self, out: _Out, now: float) -> Properties | None:
        if self.settings.protocol != 5:
            return None
        if out.expiry_s is None and out.response_topic is None and out.correlation_data is None:
            return None
        props = _properties(PacketTypes.PUBLISH)
        if out.expiry_s is not None:
            left = out.expiry_s - (now - out.queued_at)
            props.MessageExpiryInterval = max(1, round(left))
        if out.response_topic is not None:
            props.ResponseTopic = out.response_topic
        if out.correlation_data is not None:
            props.CorrelationData = out.correlation_data
        return props

    def _send(self, out: _Out) -> None:
        client = self._client
        assert client is not None
        info = client.publish(
            out.topic,
            out.payload,
            qos=out.qos,
            retain=out.retain,
            properties=self._properties(out, time.monotonic()),
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.stats.published += 1
            if out.qos == 1:
                self._pending.add(info.mid)
                self._pending_empty.clear()
        elif info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            if out.qos == 1:
                # paho keeps QoS 1 messages and sends them after its reconnect.
                self.stats.published += 1
                self._pending.add(info.mid)
                self._pending_empty.clear()
            elif not out.retain:
                self._enqueue(out)
        else:
            log.error("publish on %s failed: %s", out.topic, paho.error_string(info.rc))

    def _enqueue(self, out: _Out) -> None:
        limit = self.settings.queue_limit
        self.stats.queued += 1
        if self.queued >= limit:
            if self._samples:
                self._samples.popleft()
                self._note_sample_drop()
            elif out.qos == 0:
                self._note_sample_drop()
                return
            else:
                old = self._events.popleft()
                self.stats.dropped_events += 1
                log.error(
                    "offline queue full (%d): dropped event on %s queued %.1f s ago",
                    limit,
                    old.topic,
                    time.monotonic() - old.queued_at,
                )
        (self._samples if out.qos == 0 else self._events).append(out)

    def _note_sample_drop(self) -> None:
        self.stats.dropped_samples += 1
        if not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "offline queue full (%d): dropping the oldest live samples while the broker is "
                "away (events are kept)",
                self.settings.queue_limit,
            )

    def _flush(self) -> int:
        """Send the offline queue in publish order, skipping samples that expired."""
        now = time.monotonic()
        sent = 0
        # Take everything first: a sample that fails again (connection lost mid-flush) goes
        # back into the queue and must not be picked up by this same flush.
        batch = sorted([*self._samples, *self._events], key=lambda o: o.seq)
        self._samples.clear()
        self._events.clear()
        for out in batch:
            if out.expiry_s is not None and now - out.queued_at >= out.expiry_s:
                self.stats.expired += 1
                continue
            self._send(out)
            sent += 1
        return sent

    async def _wait_pending(self, limit_s: float) -> None:
        if not self._pending:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pending_empty.wait(), limit_s)
