"""The service's configuration file (TOML): loading, validation and defaults.

Every error names the file and the key, so a typo is found in seconds. Unknown keys are errors
too: a misspelt threshold silently ignored is worse than a refusal to start. Every number is
checked to be finite and within a stated range here, so `biofeedback check` refuses what `run`
would refuse (`nan`, `inf`, a window of 1e300 s) before anything starts.

Secrets (`[mqtt].password`, `[web].therapist_secret`) may be in the file only when the file is
readable by its owner alone (`chmod 600`); the environment (BIOFEEDBACK_MQTT_PASSWORD,
BIOFEEDBACK_THERAPIST_SECRET) wins over the file.

A clinic file (docs/clinic.md) lists several clients as `[[clients]]` tables (id, strap, protocol)
and shares every other section among them; `load_service_config` reads both kinds, a one-client
file being the clinic of one.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from biofeedback.errors import ConfigError
from biofeedback.service.topics import valid_client_id
from biofeedback.signal.config import validate_config as validate_signal_config
from biofeedback.signal.measures import SignalConfig

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_CONFIG_DIR = PACKAGE_ROOT.parent / "config"
DEFAULT_CONFIG = REPO_CONFIG_DIR / "biofeedback.toml"
#: The demo's protocol, shipped with the package's repository (never looked up next to --config).
DEMO_PROTOCOL = REPO_CONFIG_DIR / "protocols" / "demo.toml"

ENV_MQTT_USERNAME = "BIOFEEDBACK_MQTT_USERNAME"
ENV_MQTT_PASSWORD = "BIOFEEDBACK_MQTT_PASSWORD"
ENV_THERAPIST_SECRET = "BIOFEEDBACK_THERAPIST_SECRET"


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    kind: str = "simulated"  # "simulated" or "ble"
    target: str = ""
    reconnect_max_s: float = 30.0
    stale_after_s: float = 5.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    url: str = "embedded"
    port: int = 1883  # the embedded broker's port
    protocol: int = 5
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str | None = None  # environment, else the file
    password: str | None = field(default=None, repr=False)  # environment, else a 0600 file

    @property
    def embedded(self) -> bool:
        return self.url == "embedded"


@dataclass(frozen=True, slots=True)
class WebConfigValues:
    host: str = "127.0.0.1"
    port: int = 8080
    # host names (or addresses) the dashboard answers to besides loopback and `host`
    allowed_hosts: tuple[str, ...] = ()
    therapist_secret: str | None = field(default=None, repr=False)  # environment, else 0600 file


#: Simultaneous LE links one Bluetooth adapter is trusted with unless the config says otherwise.
#: Real controllers differ (docs/clinic.md cites 2 to ~9 in practice); 5 is what common USB
#: dongles and laptop controllers hold reliably, and a larger group must raise it on purpose.
DEFAULT_MAX_LINKS_PER_ADAPTER = 5
MAX_LINKS_PER_ADAPTER_LIMIT = 32  # a sanity bound: no known controller comes near it


@dataclass(frozen=True, slots=True)
class BluetoothConfig:
    max_links_per_adapter: int = DEFAULT_MAX_LINKS_PER_ADAPTER


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything the service needs to start, already validated."""

    source: Path | None
    client_id: str
    device: DeviceConfig
    protocol: Path
    baseline_dir: Path
    signal: SignalConfig
    mqtt: MqttConfig
    web: WebConfigValues
    recording_dir: Path


_SECTIONS = {"client", "device", "session", "signal", "mqtt", "web", "recording", "bluetooth"}
# A clinic file: `[[clients]]` instead of `[client]`; the strap is per client, so [device] keeps
# only what all straps share.
_CLINIC_SECTIONS = (_SECTIONS - {"client"}) | {"clients"}
_CLINIC_CLIENT_KEYS = {"id", "strap", "protocol"}
_CLINIC_DEVICE_KEYS = {"reconnect_max_s", "stale_after_s"}


# Allowed range of every number in the file: (low, high, low excluded). A float must also be finite.
# The device's are what the BLE strap accepts (its first reconnect delay is 1 s); the signal's
# are those of `biofeedback.signal.config.validate_config`, with upper bounds where it has none.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "[device].reconnect_max_s": (1.0, 3600.0, False),
    "[device].stale_after_s": (0.0, 300.0, True),
    "[signal].short_window_s": (0.0, 300.0, True),
    "[signal].long_window_s": (0.0, 300.0, True),
    "[signal].frequency_window_s": (60.0, 300.0, False),
    "[signal].frequency_cadence_s": (0.0, 60.0, True),
    "[signal].calibration_s": (10.0, 3600.0, False),
    "[signal].paced_breathing_hz": (0.04, 0.4, False),
    "[signal].min_rr_ms": (100.0, 5000.0, False),
    "[signal].max_rr_ms": (100.0, 5000.0, False),
    "[signal].gap_s": (0.0, 600.0, True),
    "[signal].provisional_threshold": (0.0, 0.99, False),
    "[signal].min_quality": (0.0, 1.0, False),
    "[signal].hr_only_confidence": (0.0, 1.0, False),
    "[signal].fast_weight": (0.0, 1.0, False),
    "[signal].hr_sd_floor_bpm": (0.0, 50.0, True),
    "[signal].ln_rmssd_sd_floor": (0.0, 5.0, True),
    "[signal].calibration_max_corrected": (0.0, 1.0, False),
    "[signal].calibration_max_rejected": (0.0, 1.0, False),
    "[signal].coherence_half_width_hz": (0.0, 0.2, True),
    "[signal].artifact_buffer_beats": (1, 10_000, False),
    "[signal].artifact_every_beats": (1, 10_000, False),
    "[signal].artifact_lag_beats": (1, 10_000, False),
    "[signal].provisional_beats": (3, 10_000, False),
    "[signal].fast_beats": (1, 10_000, False),
    "[signal].paced_fast_max_beats": (1, 10_000, False),
    "[signal].quality_inputs": (1, 10_000, False),
    "[signal].calibration_min_beats": (2, 100_000, False),
    "[mqtt].port": (0, 65535, False),
    "[web].port": (0, 65535, False),
    "[bluetooth].max_links_per_adapter": (1, MAX_LINKS_PER_ADAPTER_LIMIT, False),
}


def _in_range(src: str, where: str, value: Any) -> None:
    """ConfigError naming the field unless `value` is finite and within its `_RANGES` entry."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{src}: {where} must be a finite number, got {value!r}")
    bounds = _RANGES.get(where)
    if bounds is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    lo, hi, lo_open = bounds
    if (value <= lo if lo_open else value < lo) or value > hi:
        span = f"{'more than' if lo_open else 'at least'} {lo:g} and at most {hi:g}"
        raise ConfigError(f"{src}: {where} must be {span}, got {value!r}")


def _check_keys(src: str, section: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{src}: unknown key(s) {', '.join(f'[{section}].{k}' for k in unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _typed(src: str, where: str, value: Any, kind: type, default: Any) -> Any:
    """Coerce ints to floats where a float is wanted; refuse anything else that is off."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool) != isinstance(default, bool):
        raise ConfigError(
            f"{src}: {where} must be {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _section(src: str, raw: dict[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{src}: [{name}] must be a table, got {type(table).__name__}")
    return table


def _dataclass_from(src: str, section: str, cls: Any, table: dict[str, Any], skip: set[str]) -> Any:
    names = {f.name: f for f in fields(cls) if f.name not in skip}
    _check_keys(src, section, table, set(names))
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for key, value in table.items():
        default = getattr(defaults, key)
        where = f"[{section}].{key}"
        kwargs[key] = _typed(src, where, value, type(default), default)
        _in_range(src, where, kwargs[key])
    return replace(defaults, **kwargs)


def _host_names(src: str, value: Any) -> tuple[str, ...]:
    """[web].allowed_hosts: a list of bare host names or addresses (no scheme, port or path)."""
    if not isinstance(value, list):
        raise ConfigError(
            f"{src}: [web].allowed_hosts must be a list of host names, got {type(value).__name__}"
        )
    names: list[str] = []
    for item in value:
        name = item.strip().strip("[]").lower() if isinstance(item, str) else None
        if (
            not name
            or len(name) > 253
            or any(c in name for c in "/?#@ \t\\")
            or (":" in name and name.count(":") == 1)
        ):
            raise ConfigError(
                f"{src}: [web].allowed_hosts entry {item!r} must be a bare host name or address "
                '(no scheme, port or path), e.g. "therapy-room.local" or "192.168.1.20"'
            )
        names.append(name)
    return tuple(names)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _secret(
    src: str, table: dict[str, Any], section: str, key: str, mode: int | None
) -> str | None:
    """A secret from the file: text, and only in a file no one else can read."""
    if key not in table:
        return None
    value = table.pop(key)
    where = f"[{section}].{key}"
    if not isinstance(value, str):
        raise ConfigError(f"{src}: {where} must be text, got {type(value).__name__}")
    if value and mode is not None and mode & 0o077:
        raise ConfigError(
            f"{src} holds {where} but other users can read it (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {src}`, or remove {where} from it and set the environment variable "
            "instead"
        )
    return value or None


def parse_config(
    text: str,
    *,
    source: Path | None = None,
    env: dict[str, str] | None = None,
    file_mode: int | None = None,
) -> AppConfig:
    """Validate a config document; relative paths resolve against the file's folder.

    `file_mode` is the file's st_mode (`load_config` passes it): a secret in a file that group
    or others can read is refused. Secrets from the environment win over the file's.
    """
    service = parse_service_config(text, source=source, env=env, file_mode=file_mode)
    if service.is_clinic:
        src = str(source) if source else "<config>"
        raise ConfigError(
            f"{src} is a clinic file ([[clients]]): this command takes a one-client config "
            "([client] id = ...); `run` and `check` read clinic files"
        )
    return service.clients[0]


def _shared(
    src: str,
    raw: dict[str, Any],
    base: Path,
    env: dict[str, str],
    file_mode: int | None,
    source: Path | None,
) -> AppConfig:
    """Every section but the clients', validated; the client fields hold the one-client file's
    values ([client] id, [device] target), which a clinic file replaces per client."""
    client = _section(src, raw, "client")
    _check_keys(src, "client", client, {"id"})
    client_id = _typed(src, "[client].id", client.get("id", "client-001"), str, "")
    if not valid_client_id(client_id):
        raise ConfigError(
            f"{src}: [client].id {client_id!r} must be a pseudonym: "
            "1-64 letters, digits, '-' or '_'"
        )

    device = _dataclass_from(src, "device", DeviceConfig, _section(src, raw, "device"), set())
    if device.kind not in {"simulated", "ble"}:
        raise ConfigError(f"{src}: [device].kind must be 'simulated' or 'ble', got {device.kind!r}")

    session = _section(src, raw, "session")
    _check_keys(src, "session", session, {"protocol", "baseline_dir"})
    protocol = _resolve(
        base,
        _typed(
            src,
            "[session].protocol",
            session.get("protocol", "protocols/spider-hierarchy.toml"),
            str,
            "",
        ),
    )
    baseline_dir = _resolve(
        base,
        _typed(
            src, "[session].baseline_dir", session.get("baseline_dir", "../data/baselines"), str, ""
        ),
    )

    signal = _dataclass_from(src, "signal", SignalConfig, _section(src, raw, "signal"), set())
    if not 0 < signal.short_window_s <= signal.long_window_s:
        raise ConfigError(f"{src}: [signal] need 0 < short_window_s <= long_window_s")
    if not 60 <= signal.frequency_window_s <= 300:
        raise ConfigError(f"{src}: [signal].frequency_window_s must be within 60..300 s")
    try:
        validate_signal_config(signal)  # the pipeline's own checks, run again when it starts
    except ConfigError as exc:
        raise ConfigError(f"{src}: {exc}") from None

    mqtt_table = dict(_section(src, raw, "mqtt"))
    file_username = _secret(src, mqtt_table, "mqtt", "username", None)  # not a secret
    file_password = _secret(src, mqtt_table, "mqtt", "password", file_mode)
    mqtt = _dataclass_from(src, "mqtt", MqttConfig, mqtt_table, {"username", "password"})
    if mqtt.protocol not in (5, 311):
        raise ConfigError(f"{src}: [mqtt].protocol must be 5 or 311, got {mqtt.protocol}")
    if not (mqtt.embedded or mqtt.url.startswith(("mqtt://", "mqtts://"))):
        raise ConfigError(
            f"{src}: [mqtt].url must be 'embedded', mqtt://host:port or mqtts://host:port, "
            f"got {mqtt.url!r}"
        )
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(mqtt, key)
        if value:
            mqtt = replace(mqtt, **{key: str(_resolve(base, value))})
    mqtt = replace(
        mqtt,
        username=env.get(ENV_MQTT_USERNAME) or file_username,
        password=env.get(ENV_MQTT_PASSWORD) or file_password,
    )

    web_table = dict(_section(src, raw, "web"))
    allowed_hosts = _host_names(src, web_table.pop("allowed_hosts", []))
    file_secret = _secret(src, web_table, "web", "therapist_secret", file_mode)
    web = _dataclass_from(src, "web", WebConfigValues, web_table, {"therapist_secret"})
    web = replace(web, allowed_hosts=allowed_hosts)
    if not web.host.strip():
        raise ConfigError(f"{src}: [web].host must not be empty (127.0.0.1 keeps it local)")
    if not 0 <= web.port <= 65535:
        raise ConfigError(f"{src}: [web].port must be 0..65535, got {web.port}")
    web = replace(web, therapist_secret=env.get(ENV_THERAPIST_SECRET) or file_secret)

    recording = _section(src, raw, "recording")
    _check_keys(src, "recording", recording, {"dir"})
    recording_dir = _resolve(
        base, _typed(src, "[recording].dir", recording.get("dir", "../data/recordings"), str, "")
    )

    return AppConfig(
        source=source,
        client_id=client_id,
        device=device,
        protocol=protocol,
        baseline_dir=baseline_dir,
        signal=signal,
        mqtt=mqtt,
        web=web,
        recording_dir=recording_dir,
    )


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What one service runs: one `AppConfig` per client, all sharing broker, dashboard,
    recording and signal settings (a one-client file is the service of one client)."""

    source: Path | None
    clients: tuple[AppConfig, ...]
    bluetooth: BluetoothConfig = field(default_factory=BluetoothConfig)
    is_clinic: bool = False  # read from a clinic file ([[clients]])

    @property
    def shared(self) -> AppConfig:
        """The settings every client shares (broker, dashboard, folders): the first client's."""
        return self.clients[0]

    @staticmethod
    def single(config: AppConfig) -> ServiceConfig:
        return ServiceConfig(source=config.source, clients=(config,))


def parse_service_config(
    text: str,
    *,
    source: Path | None = None,
    env: dict[str, str] | None = None,
    file_mode: int | None = None,
) -> ServiceConfig:
    """A one-client config or a clinic file (`[[clients]]`), validated as `parse_config` does.

    Every error names the file; a client's error also names the client (its position and id)
    and the field.
    """
    src = str(source) if source else "<config>"
    base = source.resolve().parent if source else REPO_CONFIG_DIR
    env = dict(os.environ) if env is None else env
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{src}: not valid TOML: {exc}") from exc
    bluetooth = _bluetooth(src, raw)
    if "clients" not in raw:
        _check_keys(src, "top level", raw, _SECTIONS)
        one = _shared(src, raw, base, env, file_mode, source)
        return ServiceConfig(source=source, clients=(one,), bluetooth=bluetooth)
    if "client" in raw:
        raise ConfigError(
            f"{src}: has both [client] and [[clients]]: a clinic file lists every client as "
            "[[clients]] (id, strap, protocol); remove [client]"
        )
    _check_keys(src, "top level", raw, _CLINIC_SECTIONS)
    device = _section(src, raw, "device")
    _check_keys(src, "device", device, _CLINIC_DEVICE_KEYS)
    entries = raw["clients"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{src}: [[clients]] must list at least one client as "
            '[[clients]] tables with id = "...", strap = "..."'
        )
    shared_raw = {k: v for k, v in raw.items() if k != "clients"}
    shared = _shared(src, shared_raw, base, env, file_mode, source)
    shared = replace(shared, device=replace(shared.device, kind="ble", target=""))
    clients: list[AppConfig] = []
    seen_ids: dict[str, int] = {}
    seen_straps: dict[str, int] = {}
    for n, entry in enumerate(entries, start=1):
        clients.append(_clinic_client(src, base, shared, n, entry, seen_ids, seen_straps))
    limit = bluetooth.max_links_per_adapter
    if len(clients) > limit:
        raise ConfigError(
            f"{src}: {len(clients)} clients need {len(clients)} Bluetooth LE links at once, but "
            f"[bluetooth].max_links_per_adapter = {limit}"
            + (" (the default)" if "bluetooth" not in raw else "")
            + ": the adapter would refuse the rest. Split the group over two services (each "
            "with its own adapter), or raise max_links_per_adapter if this adapter is known "
            "to hold more (docs/clinic.md lists what common controllers allow)"
        )
    return ServiceConfig(source=source, clients=tuple(clients), bluetooth=bluetooth, is_clinic=True)


def _bluetooth(src: str, raw: dict[str, Any]) -> BluetoothConfig:
    table = _section(src, raw, "bluetooth")
    cfg: BluetoothConfig = _dataclass_from(src, "bluetooth", BluetoothConfig, table, set())
    return cfg


def _clinic_client(
    src: str,
    base: Path,
    shared: AppConfig,
    n: int,
    entry: Any,
    seen_ids: dict[str, int],
    seen_straps: dict[str, int],
) -> AppConfig:
    """One `[[clients]]` entry on top of the shared settings."""
    where = f"[[clients]] #{n}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{src}: {where} must be a table, got {type(entry).__name__} {entry!r}")
    raw_id = entry.get("id")
    if isinstance(raw_id, str) and raw_id:
        where = f"{where} (id {raw_id!r})"
    unknown = sorted(set(entry) - _CLINIC_CLIENT_KEYS)
    if unknown:
        raise ConfigError(
            f"{src}: {where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_CLINIC_CLIENT_KEYS))}"
        )
    for key in ("id", "strap"):
        if key not in entry:
            raise ConfigError(f"{src}: {where}: {key} is missing")
        if not isinstance(entry[key], str):
            raise ConfigError(
                f"{src}: {where}: {key} must be text, got "
                f"{type(entry[key]).__name__} {entry[key]!r}"
            )
    client_id: str = entry["id"]
    if not valid_client_id(client_id):
        raise ConfigError(
            f"{src}: {where}: id {client_id!r} must be a pseudonym: "
            "1-64 letters, digits, '-' or '_'"
        )
    if client_id in seen_ids:
        raise ConfigError(
            f"{src}: {where}: id {client_id!r} is already used by [[clients]] "
            f"#{seen_ids[client_id]}: each client needs its own id (topics, recordings and "
            "baselines are kept by it)"
        )
    seen_ids[client_id] = n
    strap = entry["strap"].strip()
    if not strap:
        raise ConfigError(
            f"{src}: {where}: strap must be the strap's advertised name or its address "
            "(see `biofeedback scan`), got an empty text"
        )
    key = strap.upper()
    if key in seen_straps:
        raise ConfigError(
            f"{src}: {where}: strap {strap!r} is already worn by [[clients]] "
            f"#{seen_straps[key]}: a strap connects to one client only"
        )
    seen_straps[key] = n
    protocol = shared.protocol
    if "protocol" in entry:
        value = entry["protocol"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{src}: {where}: protocol must be a file path (relative to {src}), got {value!r}"
            )
        protocol = _resolve(base, value)
    return replace(
        shared,
        client_id=client_id,
        device=replace(shared.device, kind="ble", target=strap),
        protocol=protocol,
    )


def load_service_config(
    path: Path | None = None, *, env: dict[str, str] | None = None
) -> ServiceConfig:
    """Read and validate a one-client config or a clinic file (the default file when None)."""
    path = path or DEFAULT_CONFIG
    text, mode = _read(path)
    return parse_service_config(text, source=path, env=env, file_mode=mode)


def _read(path: Path) -> tuple[str, int]:
    try:
        # The mode is read from the open file, so it is the mode of the text that was read.
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            text = f.read().decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    return text, mode


def load_config(path: Path | None = None, *, env: dict[str, str] | None = None) -> AppConfig:
    """Read and validate the config file (the repository's default when `path` is None)."""
    path = path or DEFAULT_CONFIG
    text, mode = _read(path)
    return parse_config(text, source=path, env=env, file_mode=mode)
