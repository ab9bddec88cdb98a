"""The embedded broker: managed Mosquitto by default, amqtt fallback, clean shutdown."""

from __future__ import annotations

import pytest

from biofeedback.errors import BrokerError
from biofeedback.service.broker import EmbeddedBroker, MosquittoProcess, mosquitto_config
from biofeedback.service.broker_access import BrokerRole
from biofeedback.service.mqtt import MqttLink, MqttSettings
from tests.support import free_port, port_free, require_binary


def _as(b: EmbeddedBroker, role: BrokerRole, protocol: int = 5, **options: object) -> MqttSettings:
    login = b.login(role)
    return MqttSettings.from_url(
        b.url,
        username=login.username,
        password=login.password,
        protocol=protocol,
        env={},
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.mosquitto
async def test_auto_backend_is_mosquitto_and_releases_its_port() -> None:
    require_binary("mosquitto", "mosquitto")
    async with EmbeddedBroker() as b:
        assert b.backend == "mosquitto"
        assert b.protocols == (5, 311)
        port = b.port
        assert not port_free(port)
        async with MqttLink(_as(b, BrokerRole.SERVICE), "probe") as link:
            assert link.connected
    assert port_free(port)


@pytest.mark.mosquitto
async def test_fixed_port_and_a_taken_port() -> None:
    require_binary("mosquitto", "mosquitto")
    port = free_port()
    async with EmbeddedBroker(port=port) as b:
        assert b.url == f"mqtt://127.0.0.1:{port}"
        with pytest.raises(BrokerError, match="the port is in use"):
            async with EmbeddedBroker(port=port, backend="mosquitto"):
                pass


async def test_amqtt_fallback_speaks_311_and_refuses_5_clearly() -> None:
    async with EmbeddedBroker(backend="amqtt") as b:
        assert b.backend == "amqtt"
        assert b.protocols == (311,)
        async with MqttLink(_as(b, BrokerRole.SERVICE, 311), "probe") as link:
            assert link.connected
        s = _as(b, BrokerRole.SERVICE, 5, connect_timeout_s=2.0)
        with pytest.raises(BrokerError, match=r"needs protocol 311"):
            await MqttLink(s, "probe5").__aenter__()
        port = b.port
    assert port_free(port)


def test_generated_config_raises_the_queue_limit() -> None:
    text = mosquitto_config(1888, persistence_dir="/tmp/x")
    assert "listener 1888 127.0.0.1" in text
    assert "max_queued_messages 100000" in text
    assert "persistence true" in text
    assert "allow_anonymous true" in text


@pytest.mark.mosquitto
async def test_mosquitto_process_kill_and_restart_same_port() -> None:
    binary = require_binary("mosquitto", "mosquitto")
    async with MosquittoProcess(binary=binary) as p:
        port = p.port
        await p.kill()
        assert not p.running
        await p.start()
        assert p.running
        assert p.port == port
    assert port_free(port)
