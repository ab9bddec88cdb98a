"""The config file: defaults, overrides, and clear errors that name the file and the key."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.config import DEFAULT_CONFIG, load_config, parse_config
from biofeedback.errors import BiofeedbackError, ConfigError


def test_default_config_loads() -> None:
    cfg = load_config(env={})
    assert cfg.client_id == "client-001"
    assert cfg.mqtt.embedded
    assert cfg.protocol.name == "spider-hierarchy.toml"
    assert cfg.signal.short_window_s == 30.0
    assert cfg.mqtt.password is None


def test_secrets_come_from_environment_only(tmp_path: Path) -> None:
    cfg = parse_config(
        "[mqtt]\nurl = 'mqtts://broker:8883'\nca_file = 'ca.pem'\n",
        source=tmp_path / "c.toml",
        env={"BIOFEEDBACK_MQTT_USERNAME": "svc", "BIOFEEDBACK_MQTT_PASSWORD": "pw"},
    )
    assert (cfg.mqtt.username, cfg.mqtt.password) == ("svc", "pw")
    assert cfg.mqtt.ca_file == str(tmp_path / "ca.pem")
    assert "pw" not in repr(cfg)
    with pytest.raises(ConfigError, match=r"\[mqtt\]\.password"):
        parse_config("[mqtt]\npassword = 'x'\n", env={})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[client]\nid = 'Jane Doe'\n", "[client].id"),
        ("[signal]\nshort_window_s = 'long'\n", "[signal].short_window_s must be float"),
        ("[signal]\nshort_windw_s = 30\n", "unknown key(s) [signal].short_windw_s"),
        ("[mqtt]\nurl = 'http://x'\n", "[mqtt].url"),
        ("[mqtt]\nprotocol = 4\n", "[mqtt].protocol"),
        ("[device]\nkind = 'usb'\n", "[device].kind"),
        ("[web]\nport = 70000\n", "[web].port"),
        ("[signal]\nfrequency_window_s = 20\n", "frequency_window_s"),
        ("[nonsense]\n", "unknown key(s) [top level].nonsense"),
        ("[client\n", "not valid TOML"),
        ("client = 3\n", "[client] must be a table"),
        ("[web]\nport = true\n", "[web].port must be int"),
    ],
)
def test_bad_config_names_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("/etc/bf.toml"), env={})
    assert needle in str(info.value)
    assert "/etc/bf.toml" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes_the_loader(text: str) -> None:
    with contextlib.suppress(BiofeedbackError):
        parse_config(text, env={})


def test_shipped_config_is_the_default() -> None:
    assert DEFAULT_CONFIG.is_file()
