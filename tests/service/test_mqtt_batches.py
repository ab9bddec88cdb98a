"""Received messages in bulk against real Mosquitto: `MqttLink` reads up to 64 KiB per `recv` and
handles every whole packet in it before paho waits on `select` again, and `set_handler` hands a
batch straight to a synchronous consumer (the dashboard's hub). Bursts with TLS and passwords
over both protocols, a packet larger than one read, a connection cut mid-burst."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, all_clients, topic
from tests.brokers import mosquitto_plain, mosquitto_secure, sever, wait_disconnected

pytestmark = pytest.mark.mosquitto

_names = itertools.count()
C1 = "c-5e1d"


def _name(prefix: str) -> str:
    return f"{prefix}-batch-{next(_names)}"


def _event(seq: int, pad: int = 0) -> dict[str, object]:
    return {"v": 1, "t": 1_700_000_000.0 + seq, "seq": seq, "kind": "note", "pad": "x" * pad}


async def _until(done: Callable[[], bool], limit_s: float = 20.0) -> None:
    async with asyncio.timeout(limit_s):
        while not done():  # noqa: ASYNC110 - counts kept by the link and the broker, no event
            await asyncio.sleep(0.01)


async def _gather(got: list[IncomingMessage], n: int, limit_s: float = 20.0) -> None:
    await _until(lambda: len(got) >= n, limit_s)


@pytest.mark.parametrize("proto", [5, 311])
async def test_a_burst_over_tls_arrives_whole_and_in_order(tmp_path: Path, proto: int) -> None:
    """2,000 events published back to back, one of them larger than a 64 KiB read: with many
    packets (and parts of packets) in one read, each arrives once, whole and in order, and the
    last one does not wait for more traffic (bytes already read are invisible to `select`)."""
    async with mosquitto_secure(tmp_path) as b:
        users = b.users
        dash = b.settings(proto, username="dashboard", password=users["dashboard"])
        async with (
            MqttLink(b.settings(proto), _name("svc")) as svc,
            MqttLink(dash, _name("dash")) as sub,
        ):
            got: list[IncomingMessage] = []
            sub.set_handler(got.append)
            await sub.subscribe(all_clients(Topic.EVENT), qos=1)
            n = 2000
            for seq in range(n):
                pad = 150_000 if seq == 1000 else (seq % 7) * 40
                svc.publish_json(topic(C1, Topic.EVENT), _event(seq, pad), qos=1)
            await _gather(got, n)
            await asyncio.sleep(0.2)  # nothing more than was sent
            seqs = [json.loads(m.payload)["seq"] for m in got]
            assert seqs == list(range(n))
            assert len(json.loads(got[1000].payload)["pad"]) == 150_000
            assert all(m.topic == topic(C1, Topic.EVENT) for m in got)
            assert sub.stats.received == n


async def test_a_connection_cut_mid_burst_leaves_nothing_of_the_old_stream() -> None:
    """Bytes read from the cut connection are never parsed as the new one's: after the link
    reconnects, a second burst arrives whole and every message received is valid JSON."""
    async with mosquitto_plain() as b:
        s = b.settings(5)
        async with MqttLink(s, _name("svc")) as svc, MqttLink(s, _name("dash")) as sub:
            got: list[IncomingMessage] = []
            sub.set_handler(got.append)
            await sub.subscribe(all_clients(Topic.EVENT), qos=1)
            for seq in range(1000):
                svc.publish_json(topic(C1, Topic.EVENT), _event(seq, 300), qos=1)
            await asyncio.sleep(0.01)
            sever(sub)  # mid-burst: part of it may sit read but unparsed
            await wait_disconnected(sub)
            async with asyncio.timeout(10):
                await sub.wait_connected()
            for seq in range(1000, 2000):
                svc.publish_json(topic(C1, Topic.EVENT), _event(seq, 300), qos=1)
            await _gather(got, 1000)
            await _until(lambda: any(json.loads(m.payload)["seq"] == 1999 for m in got[-50:]))
            seqs = [json.loads(m.payload)["seq"] for m in got]  # every payload parses
            # the second burst came after the reconnect: all of it, in order
            assert [q for q in seqs if q >= 1000] == list(range(1000, 2000))


async def test_set_handler_hands_over_queued_messages_first_and_survives_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with mosquitto_plain() as b:
        s = b.settings(5)
        async with MqttLink(s, _name("svc")) as svc, MqttLink(s, _name("dash")) as sub:
            await sub.subscribe(all_clients(Topic.EVENT), qos=1)
            for seq in range(3):
                svc.publish_json(topic(C1, Topic.EVENT), _event(seq), qos=1)
            await _until(lambda: sub.stats.received >= 3)  # queued for messages(): nobody reads
            seen: list[int] = []

            def handler(msg: IncomingMessage) -> None:
                seq = json.loads(msg.payload)["seq"]
                if seq == 4:
                    raise RuntimeError("a bug in one view")
                seen.append(seq)

            sub.set_handler(handler)
            assert seen == [0, 1, 2]  # the queued ones, at once and in order
            with caplog.at_level(logging.ERROR, logger="biofeedback.service.mqtt"):
                for seq in range(3, 8):
                    svc.publish_json(topic(C1, Topic.EVENT), _event(seq), qos=1)
                await _until(lambda: len(seen) >= 7, 5.0)
            assert seen == [0, 1, 2, 3, 5, 6, 7]
            assert sub.stats.received == 8
            failures = [r for r in caplog.records if "handling a message" in r.getMessage()]
            assert len(failures) == 1
            assert topic(C1, Topic.EVENT) in failures[0].getMessage()
            # back to the queue: messages() gets what comes next
            sub.set_handler(None)
            svc.publish_json(topic(C1, Topic.EVENT), _event(8), qos=1)
            msg = await asyncio.wait_for(sub.messages().__anext__(), 5)
            assert json.loads(msg.payload)["seq"] == 8
            assert seen == [0, 1, 2, 3, 5, 6, 7]
