"""MQTT <-> hub: subscribe to every client's topics, feed the hub, publish dashboard commands.

Runs as the app's cleanup context: started with the aiohttp runner, closed with it. It uses the
service's `MqttLink` (one paho connection with reconnect), so the dashboard survives a broker
restart the same way the service does; the status badge on every page turns "silent" while
nothing arrives.

The hub takes a plain (not shared) subscription: a dashboard must see every message of the
clients it shows, and MQTT 5 shared subscriptions neither deliver retained state nor keep one
client's messages on one subscriber (docs/dashboard.md, "Scaling").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, all_clients, delivery, topic
from biofeedback.web.hub import Hub

log = logging.getLogger(__name__)

# everything a page draws; `beat` is left out (metrics carry HR per beat) and `cmd` is not ours
SUBSCRIBED = (
    Topic.STATUS,
    Topic.METRICS,
    Topic.AROUSAL,
    Topic.SESSION,
    Topic.GUIDANCE,
    Topic.ASSESSMENT,  # the resonance assessment (docs/resonance.md), retained
    Topic.EVENT,
    Topic.CHECKIN,
    Topic.REPLY,
    # a strap's raw data, for the therapist's detail page only (web/chest_views.py): about one
    # message a second each, and only from straps that stream them
    Topic.ECG,
    Topic.BREATHING,
    Topic.MOVEMENT,
)


class LinkSink:
    """Publishes dashboard commands on `biofeedback/v1/<client>/cmd` (QoS 1).

    With MQTT 5 the command names the client's `reply` topic as its response topic and its id as
    correlation data; with 3.1.1 the service answers on the same plain `reply` topic. Either way the
    reply reaches the hub through its `reply` subscription.
    """

    def __init__(self, link: MqttLink) -> None:
        self._link = link

    @property
    def connected(self) -> bool:
        return self._link.connected

    async def send_command(self, client_id: str, payload: bytes) -> None:
        d = delivery(Topic.CMD)
        self._link.publish_bytes(
            topic(client_id, Topic.CMD),
            payload,
            qos=d.qos,
            expiry_s=d.expiry_s,
            response_topic=topic(client_id, Topic.REPLY),
        )


def feeder(hub: Hub) -> Callable[[IncomingMessage], None]:
    """The link's message handler: every received message straight into the hub.

    `MqttLink.set_handler` calls it on the event loop for each message of a batch paho read in
    one go (no queue, no task switch per message); a message that makes the hub raise is logged
    by the link and the next one still gets through.
    """
    ingest = hub.ingest

    def feed(msg: IncomingMessage) -> None:
        ingest(msg.topic, msg.payload)

    return feed


async def watch_connection(link: MqttLink, hub: Hub, every_s: float = 0.5) -> None:
    """Keep the hub (and so every page) told whether the broker connection is up."""
    while True:
        hub.set_broker_connected(link.connected)
        await asyncio.sleep(every_s)


async def mqtt_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: connect, subscribe, feed the hub; on cleanup stop and disconnect."""
    from biofeedback.web.app import CONFIG_KEY, HUB_KEY

    cfg = app[CONFIG_KEY]
    if cfg.mqtt is None:
        yield
        return
    hub = app[HUB_KEY]
    name = cfg.mqtt_client_name or f"bf-dashboard-{secrets.token_hex(4)}"
    link = MqttLink(cfg.mqtt, client_name=name)
    await link.__aenter__()  # BrokerError with a clear message when the broker is unreachable
    watcher: asyncio.Task[None] | None = None
    try:
        # before subscribing: retained state arriving with the SUBACK goes straight to the hub
        link.set_handler(feeder(hub))
        for kind in SUBSCRIBED:
            await link.subscribe(all_clients(kind), qos=1)
        hub.set_sink(LinkSink(link))
        watcher = asyncio.create_task(watch_connection(link, hub), name="dashboard-mqtt-watch")
        log.info("dashboard reading MQTT from %s", cfg.mqtt.url)
        # Everything made so far (modules, classes, functions, the app: ~50,000 objects) lives as
        # long as the process; moved out of the collector's reach, a full collection no longer
        # walks them all while the hub waits (it took 30-110 ms with 300 clients, issue 14).
        # Garbage is collected first: a cycle frozen would never be freed.
        gc.collect()
        gc.freeze()
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        hub.set_sink(None)
        link.set_handler(None)
        await link.aclose()
