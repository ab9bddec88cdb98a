"""MqttSettings: URLs, credentials only from config or environment, clear config errors."""

from __future__ import annotations

import pytest

from biofeedback.errors import ConfigError
from biofeedback.service.mqtt import ENV_PASSWORD, ENV_USERNAME, MqttSettings


def test_plain_and_tls_urls() -> None:
    s = MqttSettings.from_url("mqtt://127.0.0.1:1884", env={})
    assert (s.host, s.port, s.tls, s.protocol) == ("127.0.0.1", 1884, False, 5)
    t = MqttSettings.from_url(
        "mqtts://broker.clinic.lan", ca_file="/etc/ca.crt", protocol="3.1.1", env={}
    )
    assert (t.host, t.port, t.tls, t.protocol, t.ca_file) == (
        "broker.clinic.lan",
        8883,
        True,
        311,
        "/etc/ca.crt",
    )
    assert MqttSettings.from_url("mqtt://h", env={}).port == 1883
    assert t.url == "mqtts://broker.clinic.lan:8883"


def test_credentials_come_from_the_environment_and_never_show() -> None:
    env = {ENV_USERNAME: "service", ENV_PASSWORD: "s3cret-pw"}
    s = MqttSettings.from_url("mqtt://127.0.0.1:1883", env=env)
    assert (s.username, s.password) == ("service", "s3cret-pw")
    assert "s3cret-pw" not in repr(s)
    assert "s3cret-pw" not in s.url
    # explicit values (from the config file) win over the environment
    c = MqttSettings.from_url("mqtt://h", username="dash", password="x", env=env)
    assert (c.username, c.password) == ("dash", "x")


def test_from_mapping_reads_a_config_table() -> None:
    s = MqttSettings.from_mapping(
        {
            "url": "mqtts://b:8884",
            "username": "u",
            "password": "p",
            "ca_file": "/ca",
            "queue_limit": 50,
        },
        env={},
    )
    assert (s.port, s.username, s.queue_limit, s.ca_file) == (8884, "u", 50, "/ca")
    with pytest.raises(ConfigError, match="unknown MQTT setting"):
        MqttSettings.from_mapping({"url": "mqtt://h", "colour": "blue"}, env={})


@pytest.mark.parametrize(
    ("url", "kw", "needle"),
    [
        ("mqtt://user:pw@h:1883", {}, "must not contain a password"),
        ("http://h", {}, "scheme must be mqtt:// or mqtts://"),
        ("mqtt://:1883", {}, "names no host"),
        ("mqtt://h:99999", {}, "port"),
        ("mqtt://h/path", {}, "path is not allowed"),
        ("mqtt://h", {"protocol": 4}, "protocol must be 5 or 311"),
        ("mqtt://h", {"password": "x"}, "password is set but no username"),
        ("mqtt://h", {"ca_file": "/ca"}, "need TLS"),
        ("mqtts://h", {"key_file": "/k"}, "key_file given without cert_file"),
        ("mqtt://h", {"queue_limit": 0}, "queue_limit"),
    ],
)
def test_bad_settings_name_the_problem(url: str, kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("/", "/").replace("(", r"\(")):
        MqttSettings.from_url(url, env={}, **kw)  # type: ignore[arg-type]
