"""What `run` and `demo` check before anything starts, shared with `biofeedback check`.

`check` must refuse what `run` would refuse, and `run` must refuse it before the broker, the
dashboard or the strap are started. Both call `preflight`: it loads the protocol, builds the
session core once (the signal pipeline's checks, the calibration length against the HRV window)
and checks the MQTT settings an external broker would be reached with. Nothing is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biofeedback.config import AppConfig
from biofeedback.errors import ConfigError
from biofeedback.exposure import ExposureProtocol, load_protocol


def preflight(config: AppConfig, *, baseline: Any = None) -> ExposureProtocol:
    """The validated protocol, or ConfigError naming what `run` would fail on.

    `baseline` is the client's saved baseline when `run` has one; `check` passes None (the
    stricter case, a first session, which must calibrate).
    """
    from biofeedback.service.core import SessionCore
    from biofeedback.service.mqtt import MqttSettings

    protocol = load_protocol(config.protocol)
    SessionCore(
        client_id=config.client_id,
        protocol=protocol,
        signal_config=config.signal,
        start_t=0.0,
        baseline=baseline,
    )
    m = config.mqtt
    for key in ("ca_file", "cert_file", "key_file"):
        name = getattr(m, key)
        if name and not Path(name).is_file():
            raise ConfigError(f"{config.source or '<config>'}: [mqtt].{key} {name} not found")
    # The settings the service will connect with. The embedded broker is plain MQTT on loopback
    # with logins of its own, so only the TLS files and the protocol can be wrong there.
    MqttSettings.from_url(
        "mqtt://127.0.0.1:1883" if m.embedded else m.url,
        username=None if m.embedded else m.username,
        password=None if m.embedded else m.password,
        ca_file=m.ca_file or None,
        cert_file=m.cert_file or None,
        key_file=m.key_file or None,
        protocol=m.protocol,
        env={} if m.embedded else None,
    )
    return protocol
