"""The dashboard application: configuration, app state keys and `create_app`.

    cfg = WebConfig(mqtt=MqttSettings(...), link_secret=...)
    app = create_app(cfg)
    runner = web.AppRunner(app); await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port).start()
    print(therapist_login_url(app))

The MQTT feeder (subscribe to the topic tree, feed the hub, publish commands) lives in the app's
cleanup context: it starts with the runner and stops, with every WebSocket, when the runner is
cleaned up.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import weakref
from dataclasses import dataclass, field

from aiohttp import web

from biofeedback.errors import ConfigError
from biofeedback.service.mqtt import MqttSettings
from biofeedback.web.auth import ENV_THERAPIST_SECRET, LOOPBACK_HOSTS, Auth, normal_host
from biofeedback.web.hub import Hub, HubLimits
from biofeedback.web.lan import WILDCARD_HOSTS, lan_host_names, url_host
from biofeedback.web.logredact import install_log_redaction

log = logging.getLogger(__name__)


def _random_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Dashboard settings (the `[web]` table of the config file)."""

    # 0.0.0.0 (IPv4) or :: (IPv6) serves a clinic LAN: the machine's own addresses and host
    # name are then accepted too
    host: str = "127.0.0.1"
    port: int = 8080
    mqtt: MqttSettings | None = None  # None: no broker (tests feed the hub directly)
    # the dashboard's MQTT client name; None: a random bf-dashboard-<hex> per run. A stable
    # name (`biofeedback dashboard --mqtt-client-name`) lets the broker keep its session, so
    # QoS 1 events published while it is briefly away are delivered when it returns
    mqtt_client_name: str | None = None
    # None: taken from BIOFEEDBACK_THERAPIST_SECRET, else a random one is made for this run (never
    # logged: therapist_login_url gives the link for the person at the terminal)
    therapist_secret: str | None = None
    # signs client links; a new one per session run makes old links useless
    link_secret: str = field(default_factory=_random_secret)
    # host names besides loopback, `host` and (for 0.0.0.0 / ::) this machine's own: a LAN name
    allowed_hosts: tuple[str, ...] = ()
    session_ttl_s: float = 12 * 3600.0
    limits: HubLimits = field(default_factory=HubLimits)

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("[web] host must not be empty (127.0.0.1 keeps the dashboard local)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"[web] port must be 0-65535, got {self.port!r}")
        if self.session_ttl_s <= 0:
            raise ConfigError(f"[web] session_ttl_s must be > 0, got {self.session_ttl_s!r}")


CONFIG_KEY = web.AppKey("config", WebConfig)
HUB_KEY = web.AppKey("hub", Hub)
AUTH_KEY = web.AppKey("auth", Auth)
HOSTS_KEY: web.AppKey[frozenset[str]] = web.AppKey("allowed_hosts")
SOCKETS_KEY: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
SECRET_SOURCE_KEY = web.AppKey("therapist_secret_source", str)


def resolve_therapist_secret(cfg: WebConfig) -> tuple[str, str]:
    """(secret, where it came from): config, environment, or generated for this run."""
    if cfg.therapist_secret:
        return cfg.therapist_secret, "config"
    env = os.environ.get(ENV_THERAPIST_SECRET)
    if env:
        return env, "environment"
    return _random_secret(), "generated"


def allowed_host_names(cfg: WebConfig) -> frozenset[str]:
    """Host names the Host check accepts (normalised: lower case, canonical IP addresses)."""
    names = {*LOOPBACK_HOSTS, cfg.host, *cfg.allowed_hosts, *lan_host_names(cfg.host)}
    return frozenset(normal_host(n) for n in names if n not in WILDCARD_HOSTS)


def create_app(cfg: WebConfig) -> web.Application:
    """The aiohttp application serving both views; MQTT is connected when the app starts."""
    from biofeedback.web.mqttfeed import mqtt_context
    from biofeedback.web.routes import security_middleware, setup_routes

    install_log_redaction()
    secret, source = resolve_therapist_secret(cfg)
    app = web.Application(middlewares=[security_middleware], client_max_size=64 * 1024)
    app[CONFIG_KEY] = cfg
    app[HUB_KEY] = Hub(cfg.limits)
    app[AUTH_KEY] = Auth(secret, cfg.link_secret, session_ttl_s=cfg.session_ttl_s)
    app[SECRET_SOURCE_KEY] = source
    app[HOSTS_KEY] = allowed_host_names(cfg)
    app[SOCKETS_KEY] = weakref.WeakSet()
    if source == "generated":
        log.warning(
            "no therapist secret configured (%s unset): generated one for this run; "
            "log in with the URL the dashboard prints",
            ENV_THERAPIST_SECRET,
        )
    setup_routes(app)
    app.on_shutdown.append(_close_sockets)
    app.cleanup_ctx.append(mqtt_context)
    return app


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS_KEY]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"dashboard shutting down")


def base_url(app: web.Application) -> str:
    """http://host:port from the config (pass `base` to the URL helpers when port was 0)."""
    cfg = app[CONFIG_KEY]
    return f"http://{url_host(cfg.host)}:{cfg.port}"


def therapist_login_url(app: web.Application, base: str | None = None) -> str:
    """URL that logs a therapist in (it carries the secret: show it only to the therapist).

    `base` is the served origin (e.g. "http://127.0.0.1:8080") when the config's port was 0.
    """
    from urllib.parse import quote

    token = quote(app[AUTH_KEY].login_token(), safe="")
    return f"{(base or base_url(app)).rstrip('/')}/login?token={token}"


def client_url(app: web.Application, client_id: str, base: str | None = None) -> str:
    """The client's own page (works only for this client id and this link secret)."""
    return (base or base_url(app)).rstrip("/") + app[AUTH_KEY].client_path(client_id)


async def start_site(runner: web.AppRunner, host: str, port: int, fixed_port: bool) -> None:
    """Listen on host:port; a port in use falls back to a free one unless the user fixed it."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise ConfigError(f"the dashboard cannot listen on {host}:{port}: {exc}") from exc
        if fixed_port:
            raise ConfigError(
                f"port {port} on {host} is in use: choose another with --http-port"
            ) from exc
        log.warning("dashboard port %d is in use; using a free port", port)
        await web.TCPSite(runner, host, 0).start()
