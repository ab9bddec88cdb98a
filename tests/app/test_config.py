"""The config file: defaults, overrides, and clear errors that name the file and the key."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from biofeedback.clock import ScaledClock
from biofeedback.config import (
    DEFAULT_CONFIG,
    REPO_CONFIG_DIR,
    DeviceConfig,
    load_config,
    parse_config,
)
from biofeedback.devices.ble import BleStrap
from biofeedback.errors import BiofeedbackError, ConfigError
from biofeedback.exposure import load_protocol
from biofeedback.service.core import SessionCore
from biofeedback.service.preflight import preflight
from biofeedback.signal import SignalConfig


def test_default_config_loads() -> None:
    cfg = load_config(env={})
    assert cfg.client_id == "client-001"
    assert cfg.mqtt.embedded
    assert cfg.protocol.name == "spider-hierarchy.toml"
    assert cfg.signal.short_window_s == 30.0
    assert cfg.mqtt.password is None


def test_secrets_from_the_environment_win(tmp_path: Path) -> None:
    cfg = parse_config(
        "[mqtt]\nurl = 'mqtts://broker:8883'\nca_file = 'ca.pem'\n",
        source=tmp_path / "c.toml",
        env={"BIOFEEDBACK_MQTT_USERNAME": "svc", "BIOFEEDBACK_MQTT_PASSWORD": "pw"},
    )
    assert (cfg.mqtt.username, cfg.mqtt.password) == ("svc", "pw")
    assert cfg.mqtt.ca_file == str(tmp_path / "ca.pem")
    assert "pw" not in repr(cfg)
    both = parse_config(
        "[mqtt]\nusername = 'file-user'\npassword = 'file-pw'\n"
        "[web]\ntherapist_secret = 'file-secret'\n",
        env={
            "BIOFEEDBACK_MQTT_USERNAME": "env-user",
            "BIOFEEDBACK_MQTT_PASSWORD": "env-pw",
            "BIOFEEDBACK_THERAPIST_SECRET": "env-secret",
        },
    )
    assert (both.mqtt.username, both.mqtt.password) == ("env-user", "env-pw")
    assert both.web.therapist_secret == "env-secret"


def _secret_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "secret.toml"
    path.write_text(
        "[mqtt]\nurl = 'mqtt://broker:1883'\nusername = 'svc'\npassword = 'pw-from-file'\n"
        "[web]\ntherapist_secret = 'therapist-from-file'\n"
    )
    path.chmod(mode)
    return path


def test_secrets_in_a_file_only_its_owner_can_read_are_used(tmp_path: Path) -> None:
    """What the messages promise ("put it in the config file") is true."""
    cfg = load_config(_secret_file(tmp_path, 0o600), env={})
    assert (cfg.mqtt.username, cfg.mqtt.password) == ("svc", "pw-from-file")
    assert cfg.web.therapist_secret == "therapist-from-file"
    assert "pw-from-file" not in repr(cfg)
    assert "therapist-from-file" not in repr(cfg)


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_secrets_in_a_file_others_can_read_are_refused(tmp_path: Path, mode: int) -> None:
    path = _secret_file(tmp_path, mode)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    msg = str(info.value)
    assert str(path) in msg
    assert "[mqtt].password" in msg
    assert f"chmod 600 {path}" in msg
    assert f"{mode:04o}" in msg
    assert "pw-from-file" not in msg
    # the therapist secret alone is refused the same way
    path.write_text("[web]\ntherapist_secret = 'therapist-from-file'\n")
    with pytest.raises(ConfigError, match=r"\[web\]\.therapist_secret .*chmod 600"):
        load_config(path, env={})


def test_a_username_alone_needs_no_private_file(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_text("[mqtt]\nurl = 'mqtt://broker:1883'\nusername = 'svc'\n")
    path.chmod(0o644)
    assert load_config(path, env={}).mqtt.username == "svc"


@pytest.mark.parametrize("text", ["[mqtt]\npassword = 3\n", "[web]\ntherapist_secret = true\n"])
def test_a_secret_must_be_text(text: str) -> None:
    with pytest.raises(ConfigError, match="must be text"):
        parse_config(text, env={})


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


# ---- every number finite and in range; `check` agrees with `run` ------------------------------

_FLOAT_FIELDS = [
    ("device", f.name)
    for f in dataclasses.fields(DeviceConfig)
    if isinstance(getattr(DeviceConfig(), f.name), float)
] + [
    ("signal", f.name)
    for f in dataclasses.fields(SignalConfig)
    if isinstance(getattr(SignalConfig(), f.name), float)
]


def test_every_float_field_is_covered() -> None:
    assert ("device", "stale_after_s") in _FLOAT_FIELDS
    assert ("device", "reconnect_max_s") in _FLOAT_FIELDS
    assert len(_FLOAT_FIELDS) >= 20


@pytest.mark.parametrize(("section", "key"), _FLOAT_FIELDS)
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e300", "-1e300"])
def test_nan_inf_and_absurd_numbers_are_refused_naming_the_field(
    section: str, key: str, bad: str
) -> None:
    """The drill: `check` passed `stale_after_s = nan` and `reconnect_max_s = inf`."""
    with pytest.raises(ConfigError) as info:
        parse_config(f"[{section}]\n{key} = {bad}\n", source=Path("/etc/bf.toml"), env={})
    msg = str(info.value)
    assert "/etc/bf.toml" in msg
    assert key in msg
    assert len(msg) < 300


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[device]\nstale_after_s = nan\n", "[device].stale_after_s must be a finite number"),
        ("[device]\nreconnect_max_s = inf\n", "[device].reconnect_max_s must be a finite number"),
        ("[device]\nreconnect_max_s = 0.5\n", "[device].reconnect_max_s must be at least 1"),
        ("[signal]\nhr_sd_floor_bpm = nan\n", "[signal].hr_sd_floor_bpm must be a finite"),
        ("[signal]\ncalibration_s = 1e-320\n", "[signal].calibration_s must be at least 10"),
        ("[signal]\nmin_rr_ms = 2000\nmax_rr_ms = 1500\n", "min_rr_ms"),
        ("[signal]\nartifact_buffer_beats = 10\n", "artifact_buffer_beats"),
        ("[mqtt]\nport = 70000\n", "[mqtt].port"),
        ("[web]\nhost = ' '\n", "[web].host must not be empty"),
    ],
)
def test_numbers_run_would_refuse_are_refused_by_the_loader(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("/etc/bf.toml"), env={})
    assert needle in str(info.value)


_toml_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10.0, max_value=10.0),
    st.floats(min_value=0.0, max_value=400.0),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-5, max_value=400),
)


def _toml_value(v: float | int) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def _default(section: str, key: str) -> float:
    return float(getattr(DeviceConfig() if section == "device" else SignalConfig(), key))


# A number anywhere, or the field's default scaled (so that many configs are plausible).
_field_values = st.one_of(
    _toml_numbers.map(lambda v: ("raw", v)),
    st.floats(min_value=0.0, max_value=3.0).map(lambda m: ("scale", m)),
    st.floats(min_value=0.5, max_value=1.5).map(lambda m: ("scale", m)),
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.sampled_from(_FLOAT_FIELDS), _field_values, min_size=1, max_size=5),
    st.sampled_from(["demo.toml", "spider-hierarchy.toml"]),
)
def test_a_config_check_accepts_is_one_run_accepts(
    values: dict[tuple[str, str], tuple[str, float | int]], protocol: str
) -> None:
    """Whatever numbers the file holds: if the loader and `check`'s preflight accept them, so do
    the parts `run` builds after the broker is up (the BLE strap, the session core)."""
    tables: dict[str, list[str]] = {}
    for (section, key), (how, v) in values.items():
        number = v * _default(section, key) if how == "scale" else v
        tables.setdefault(section, []).append(f"{key} = {_toml_value(number)}")
    text = f"[session]\nprotocol = '{REPO_CONFIG_DIR}/protocols/{protocol}'\n" + "".join(
        f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in tables.items()
    )
    refusal = None
    try:
        cfg = parse_config(text, source=Path("/etc/bf.toml"), env={})
        preflight(cfg)
    except ConfigError as exc:
        refusal = str(exc)
    if refusal is not None:
        assert "/etc/bf.toml" in refusal or protocol in refusal
        event("refused")
        return
    event("accepted")
    # what `run` builds later, with the same values
    for f in dataclasses.fields(cfg.signal):
        v = getattr(cfg.signal, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f.name
    BleStrap(
        "Polar H10 A1B2C3D4",
        clock=ScaledClock(1.0),
        reconnect_max_s=cfg.device.reconnect_max_s,
        stale_after_s=cfg.device.stale_after_s,
    )
    core = SessionCore(
        client_id=cfg.client_id,
        protocol=load_protocol(cfg.protocol),
        signal_config=cfg.signal,
        start_t=1000.0,
    )
    assert core.pipeline.config.long_window_s == cfg.signal.long_window_s
