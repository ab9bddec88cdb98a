"""`biofeedback dashboard --mqtt-url URL`: the therapist dashboard alone, fed from any broker.

For a therapist's machine with no strap: the dashboard subscribes to every client under
`biofeedback/v1/` on the given broker (a clinic's Mosquitto, a bridged room broker, a cluster)
and sends commands back on `cmd`. It logs in as the broker's `dashboard` user (docs/mqtt.md,
"A clinic's broker"): that user may read the state topics and write `cmd`, nothing else.

Credentials follow the project's convention: never in clear on the command line (a command line
is visible to every user through `ps` and ends up in shell history).

- username: `--mqtt-username`, the URL (`mqtt://dashboard@host`), `BIOFEEDBACK_MQTT_USERNAME`, or
  the config file's `[mqtt] username`; `dashboard` when a password is given but no name;
- password: `BIOFEEDBACK_MQTT_PASSWORD`, else `--mqtt-password-file PATH` (first line; the file
  must be readable by its owner only), else the config file's `[mqtt] password` (same rule);
  a password inside the URL is refused.

The therapist's sign-in link carries the therapist secret: it is printed on an interactive
terminal and otherwise written to a private file (mode 0600) whose path is printed, exactly as
`run` and `demo` do (`biofeedback.web.announce`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from biofeedback.errors import ConfigError

if TYPE_CHECKING:
    from biofeedback.service.mqtt import MqttSettings

log = logging.getLogger(__name__)

ENV_USERNAME = "BIOFEEDBACK_MQTT_USERNAME"
ENV_PASSWORD = "BIOFEEDBACK_MQTT_PASSWORD"
ENV_THERAPIST_SECRET = "BIOFEEDBACK_THERAPIST_SECRET"
#: The broker user the dashboard logs in as when only a password is given (the ACL's role name).
DASHBOARD_USER = "dashboard"
MAX_SECRET_FILE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """What `biofeedback dashboard` was asked for (validated; secrets already read)."""

    mqtt: MqttSettings
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_hosts: tuple[str, ...] = ()
    therapist_secret: str | None = field(default=None, repr=False)
    client_name: str | None = None  # the MQTT client name (a stable one keeps a session)
    port_fixed: bool = False


def read_secret_file(path: Path, what: str) -> str:
    """The first line of a file only its owner can read; ConfigError naming the fix otherwise."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{what} file {path}: cannot read it ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{what} file {path} can be read by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): run `chmod 600 {path}`"
        )
    if st.st_size > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"{what} file {path} is {st.st_size} bytes: expected one short line")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path}: cannot read it as UTF-8 text ({exc})") from exc
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise ConfigError(f"{what} file {path} is empty: put the {what} on its first line")
    return value


def options_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> DashboardOptions:
    """Validate the command line (plus environment and optional config file) into options."""
    from biofeedback.service.mqtt import MqttSettings

    environ = dict(os.environ) if env is None else dict(env)
    cfg = None
    if getattr(args, "config", None) is not None:
        from biofeedback.config import load_config

        cfg = load_config(args.config, env=environ)  # env wins over the file, as for `run`
    username: str | None = args.mqtt_username or environ.get(ENV_USERNAME) or None
    password: str | None = environ.get(ENV_PASSWORD) or None
    if password is None and args.mqtt_password_file is not None:
        password = read_secret_file(Path(args.mqtt_password_file), "MQTT password")
    ca_file = args.ca_file
    cert_file = args.cert_file
    key_file = args.key_file
    protocol = args.protocol
    host, port = "127.0.0.1", 8080
    allowed: tuple[str, ...] = ()
    therapist_secret = environ.get(ENV_THERAPIST_SECRET) or None
    if cfg is not None:
        username = username or cfg.mqtt.username
        password = password or cfg.mqtt.password
        ca_file = ca_file or cfg.mqtt.ca_file or None
        cert_file = cert_file or cfg.mqtt.cert_file or None
        key_file = key_file or cfg.mqtt.key_file or None
        protocol = protocol or cfg.mqtt.protocol
        host, port, allowed = cfg.web.host, cfg.web.port, cfg.web.allowed_hosts
        therapist_secret = therapist_secret or cfg.web.therapist_secret
    if args.host is not None:
        host = args.host
    if args.http_port is not None:
        port = args.http_port
    allowed = (*allowed, *(args.allowed_host or ()))
    url_user = _url_username(args.mqtt_url)
    if password is not None and not (username or url_user):
        username = DASHBOARD_USER
    settings = MqttSettings.from_url(
        args.mqtt_url,
        username=username or url_user,
        password=password,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        protocol=protocol or 5,
        env={},  # the environment was read above, in the documented order
    )
    return DashboardOptions(
        mqtt=settings,
        host=host,
        port=port,
        allowed_hosts=tuple(allowed),
        therapist_secret=therapist_secret,
        client_name=args.mqtt_client_name,
        port_fixed=args.http_port is not None,
    )


def _url_username(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        name = urlsplit(url.strip()).username
    except ValueError:
        return None
    return unquote(name) if name else None


async def serve_dashboard(
    opts: DashboardOptions,
    say: Callable[[str], None],
    *,
    to_terminal: bool | None = None,
    ready: asyncio.Event | None = None,
) -> int:
    """Serve the dashboard until cancelled; `say` gets where it is (and, on a terminal, the link).

    Raises BrokerError (with the broker's own reason) when the broker cannot be reached or
    refuses the login at start; afterwards the link reconnects by itself.
    """
    from aiohttp import web

    from biofeedback.web.announce import private_urls_path, write_private
    from biofeedback.web.app import WebConfig, create_app, start_site
    from biofeedback.web.lan import lan_addresses, url_host

    secret = opts.therapist_secret or secrets.token_urlsafe(16)
    cfg = WebConfig(
        host=opts.host,
        port=opts.port,
        mqtt=opts.mqtt,
        therapist_secret=secret,
        link_secret=secrets.token_urlsafe(32),
        allowed_hosts=opts.allowed_hosts,
        mqtt_client_name=opts.client_name,
    )
    app = create_app(cfg)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # connects to the broker (the app's cleanup context)
    written: Path | None = None
    try:
        await start_site(runner, opts.host, opts.port, opts.port_fixed)
        port = runner.addresses[0][1] if runner.addresses else opts.port
        lan = [f"http://{url_host(str(a))}:{port}" for a in lan_addresses(opts.host)]
        bases = [*lan, f"http://{url_host(opts.host)}:{port}"]
        login = f"{bases[0]}/?token={quote(secret, safe='')}"
        say(f"dashboard reading {opts.mqtt.url} as {opts.mqtt.username or 'anonymous'}")
        terminal = sys.stdout.isatty() if to_terminal is None else to_terminal
        if terminal:
            say(f"therapist dashboard: {login}")
        else:
            written = private_urls_path("standalone", port)
            write_private(written, f"therapist dashboard: {login}\n")
            say(
                f"therapist dashboard: {bases[0]}/  (sign-in link: {written}, mode 0600; not "
                "printed since the output is not a terminal)"
            )
        if len(bases) > 1:
            say("also reachable at:   " + "  ".join(b + "/" for b in bases[1:]))
        say("client screens: open a client on the dashboard and use its 'Client link'")
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()  # until cancelled (Ctrl-C, SIGTERM)
    finally:
        if written is not None:
            with contextlib.suppress(FileNotFoundError):
                written.unlink()
        await runner.cleanup()
    return 0  # pragma: no cover - the wait above ends only by cancellation
