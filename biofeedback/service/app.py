"""The service process: broker, dashboard, and per client an MQTT link, device, session runner
and recorder.

`run_service` owns every long-lived task through one TaskGroup inside async context managers,
so Ctrl-C (which cancels the main task) unwinds them in reverse order: each client's session
publishes and records its last state and its link says goodbye, the dashboard stops, the broker
exits. It runs every client of a `ServiceConfig` (service/clinic.py); one client is the case N=1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from biofeedback import __version__
from biofeedback.clock import Clock, ScaledClock
from biofeedback.config import DEMO_PROTOCOL, AppConfig, ServiceConfig
from biofeedback.devices.readings import Device
from biofeedback.errors import BiofeedbackError, ConfigError
from biofeedback.exposure import SessionSnapshot
from biofeedback.exposure.messages import GroundingTechnique, SessionState
from biofeedback.service.core import SessionCore

log = logging.getLogger(__name__)

ENV_EMBEDDED_BROKER = "BIOFEEDBACK_EMBEDDED_BROKER"
ENV_BROKER_OBSERVER_FILE = "BIOFEEDBACK_BROKER_OBSERVER_FILE"
MAX_DEMO_CLIENTS = 50


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What the command line chose on top of the config file."""

    demo: bool
    speed: float = 1.0
    duration_s: float | None = None
    actor: bool = True
    seed: int = 1
    web: bool = True
    device_target: str | None = None
    # `run` checks for a usable Bluetooth adapter before starting and fails fast without one,
    # unless told to wait (the strap then keeps trying; the dashboard shows the device error)
    wait_for_device: bool = False
    # a port given on the command line is a promise: refuse rather than move when it is taken
    mqtt_port_fixed: bool = False
    http_port_fixed: bool = False
    clients: int = 1  # the demo's simulated group size (`demo --clients N`)

    @staticmethod
    def from_args(args: argparse.Namespace) -> ServiceOptions:
        demo = args.command == "demo"
        speed = float(getattr(args, "speed", 1.0) or 1.0)
        if not speed > 0:
            raise ConfigError(f"--speed must be > 0, got {speed}")
        clients = int(getattr(args, "clients", 1))
        if not 1 <= clients <= MAX_DEMO_CLIENTS:
            raise ConfigError(f"--clients must be 1..{MAX_DEMO_CLIENTS}, got {clients}")
        return ServiceOptions(
            demo=demo,
            speed=speed,
            duration_s=getattr(args, "duration", None),
            actor=demo and not getattr(args, "no_actor", False),
            seed=getattr(args, "seed", 1),
            web=not args.no_web,
            device_target=getattr(args, "device", None),
            wait_for_device=bool(getattr(args, "wait_for_device", False)),
            mqtt_port_fixed=getattr(args, "mqtt_port", None) is not None,
            http_port_fixed=getattr(args, "http_port", None) is not None,
            clients=clients,
        )


def apply_overrides(config: AppConfig, args: argparse.Namespace, *, demo: bool) -> AppConfig:
    """Command-line options over the config file (secrets never come from here)."""
    cfg = config
    if args.client_id:
        from biofeedback.service.topics import valid_client_id

        if not valid_client_id(args.client_id):
            raise ConfigError(f"--client-id {args.client_id!r}: use 1-64 letters, digits, - or _")
        cfg = replace(cfg, client_id=args.client_id)
    if args.protocol:
        cfg = replace(cfg, protocol=args.protocol.resolve())
    elif demo:
        # The demo's story needs its own protocol, shipped with the package: never looked up
        # next to a --config file that lives elsewhere.
        cfg = replace(cfg, protocol=DEMO_PROTOCOL)
    if args.http_port is not None:
        cfg = replace(cfg, web=replace(cfg.web, port=args.http_port))
    if args.mqtt_port is not None:
        cfg = replace(cfg, mqtt=replace(cfg.mqtt, port=args.mqtt_port))
    if args.mqtt_url:
        if not args.mqtt_url.startswith(("mqtt://", "mqtts://")):
            raise ConfigError(
                f"--mqtt-url must be mqtt://host:port or mqtts://host:port, got {args.mqtt_url!r}"
            )
        cfg = replace(cfg, mqtt=replace(cfg.mqtt, url=args.mqtt_url))
    if demo:
        from biofeedback.service.demo_data import demo_config

        # never where `run` reads: its own folder unless one is given (service/demo_data.py)
        cfg = demo_config(cfg, args.data_dir)
    elif args.data_dir:
        cfg = replace(
            cfg,
            recording_dir=args.data_dir.resolve() / "recordings",
            baseline_dir=args.data_dir.resolve() / "baselines",
        )
    return cfg


def apply_service_overrides(
    service: ServiceConfig, args: argparse.Namespace, opts: ServiceOptions
) -> ServiceConfig:
    """Command-line options over a one-client or clinic config, for every client.

    Per-client choices (--client-id, --device) make no sense for a clinic file, whose clients
    each have their own: they are refused rather than applied to all. `demo --clients N` makes a
    group of N simulated clients from a one-client config (N=1: the config's client, as ever).
    """
    if service.is_clinic:
        for flag, value in (("--client-id", args.client_id), ("--device", opts.device_target)):
            if value:
                raise ConfigError(
                    f"{flag} cannot be used with the clinic file {service.source}: each of its "
                    "[[clients]] has its own id and strap; change them there"
                )
        if opts.clients > 1:
            raise ConfigError(
                f"--clients cannot be used with the clinic file {service.source}: the demo runs "
                "its [[clients]], simulated"
            )
    if opts.clients > 1 and args.client_id:
        raise ConfigError(
            "--client-id names one client; `demo --clients N` names its group "
            "client-001 ... client-N: leave out one of the two"
        )
    clients = tuple(apply_overrides(c, args, demo=opts.demo) for c in service.clients)
    if opts.demo and opts.clients > 1:
        from biofeedback.service.demo_data import demo_group

        clients = demo_group(clients[0], opts.clients)
    return replace(service, clients=clients)


def load_baseline(config: AppConfig) -> Any:
    """The client's saved baseline, or None (a broken file is reported, never trusted)."""
    from biofeedback.signal import baseline_from_json

    path = config.baseline_dir / f"{config.client_id}.json"
    if not path.exists():
        return None
    try:
        return baseline_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, BiofeedbackError) as exc:
        log.warning(
            "ignoring saved baseline %s (%s); the client will be calibrated again", path, exc
        )
        return None


def save_baseline(config: AppConfig, baseline: Any) -> None:
    """Keep the baseline for the client's next session (atomic write)."""
    from biofeedback.signal import baseline_to_json

    path = config.baseline_dir / f"{config.client_id}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(baseline_to_json(baseline), indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.error("could not save the baseline to %s: %s", path, exc)
        return
    log.info("baseline saved to %s", path)


def strap_target(config: AppConfig, opts: ServiceOptions) -> str | None:
    """The real strap to connect to (None: the demo's simulator); refuses to guess.

    Only the demo simulates: `run` records real sessions, so a simulated strap there would put a
    simulated person into a real client's recordings and baseline.
    """
    if opts.demo:
        return None
    target = opts.device_target or (config.device.target if config.device.kind == "ble" else "")
    if not target:
        raise ConfigError(
            "no strap chosen: `run` needs a real strap, pass --device NAME|ADDRESS "
            '(`biofeedback scan` lists the straps in range) or set [device] kind = "ble" and '
            "target in the config. To try the software without a strap, use `biofeedback demo` "
            "(a simulated strap, with its own data folder)"
        )
    return target


# Above this demo speed the simulated strap streams no raw ECG / ACC (130 ECG samples and 200 ACC
# samples per session second). On the loaded two-core machine one demo run at 40x found gaps in
# its calibration with raw data (the same run without found none). A demo for people runs at 1x.
DEMO_RAW_DATA_MAX_SPEED = 4.0


def make_device(config: AppConfig, opts: ServiceOptions, clock: Clock, index: int = 0) -> Device:
    """The simulated strap for the demo, or a real one through Bluetooth.

    The demo's `index`-th client (0 for the first, whose strap is the demo's as it always was)
    gets a person of its own: another seed, baseline and reactivity (service/demo_data.py).
    """
    target = strap_target(config, opts)
    if target is None:
        from biofeedback.devices.simulated import SimulatedStrap
        from biofeedback.service.demo_data import demo_person

        name, seed, profile = demo_person(index, opts.seed)
        # raw ECG / ACC as a Polar H10 would stream them (service/pmd_feed.py), up to a speed:
        # ECG alone is 130 samples per session second through the loop and the recording
        raw = clock.speed <= DEMO_RAW_DATA_MAX_SPEED
        return SimulatedStrap(name=name, clock=clock, seed=seed, profile=profile, raw_data=raw)
    from biofeedback.devices.ble import BleStrap
    from biofeedback.devices.pmd_client import PmdConfig

    return BleStrap(
        target,
        clock=clock,
        reconnect_max_s=config.device.reconnect_max_s,
        stale_after_s=config.device.stale_after_s,
        # raw ECG / ACC when the strap has Polar's PMD service; any other strap: RR as always
        pmd=PmdConfig(),
    )


def stimulus_for(snap: SessionSnapshot) -> tuple[float, float | None]:
    """The simulated client's exposure intensity and paced-breathing rate in this state."""
    exposure = 0.0
    if snap.state is SessionState.EXPOSING:
        step = snap.step_index if snap.step_index is not None else 0
        exposure = min(1.0, 0.8 + 0.1 * step)
    breathing: float | None = None
    g = snap.guidance
    if g is not None and g.technique is GroundingTechnique.PACED_BREATHING and g.breathing:
        breathing = g.breathing.rate_bpm
    return exposure, breathing


def mqtt_settings(config: AppConfig, broker: BrokerInfo, role: str = "service") -> Any:
    """MQTT settings for the broker with the config's TLS files and the environment's credentials,
    or, on the embedded broker, the login this run made for `role` (a `BrokerRole`).

    The configured protocol version is used when the broker speaks it; the in-process fallback
    broker speaks only 3.1.1, and the service works over both.
    """
    from biofeedback.service.broker_access import BrokerRole
    from biofeedback.service.mqtt import MqttSettings

    protocol = config.mqtt.protocol if config.mqtt.protocol in broker.protocols else 311
    username, password = config.mqtt.username, config.mqtt.password
    if broker.logins is not None:
        login = broker.logins.for_role(BrokerRole(role))
        username, password = login.username, login.password
    return MqttSettings.from_url(
        broker.url,
        username=username,
        password=password,
        ca_file=config.mqtt.ca_file or None,
        cert_file=config.mqtt.cert_file or None,
        key_file=config.mqtt.key_file or None,
        protocol=protocol,
    )


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """Where the broker is and which MQTT versions it speaks."""

    url: str
    protocols: tuple[int, ...]
    logins: Any = None  # the embedded broker's per-run `BrokerLogins`; None for an external one


@contextlib.asynccontextmanager
async def broker_url(config: AppConfig, *, fixed_port: bool = True) -> AsyncIterator[BrokerInfo]:
    """The configured external broker, or an embedded one running for the duration."""
    if not config.mqtt.embedded:
        yield BrokerInfo(config.mqtt.url, (config.mqtt.protocol,))
        return
    from biofeedback.errors import BrokerError
    from biofeedback.service.broker import Backend, EmbeddedBroker

    port = config.mqtt.port
    # "mosquitto", "amqtt" or "auto" (a managed Mosquitto when installed, else in-process)
    chosen = os.environ.get(ENV_EMBEDDED_BROKER, "auto")
    backends: dict[str, Backend] = {"auto": "auto", "mosquitto": "mosquitto", "amqtt": "amqtt"}
    if chosen not in backends:
        raise ConfigError(f"{ENV_EMBEDDED_BROKER}={chosen!r}: use auto, mosquitto or amqtt")
    backend = backends[chosen]
    # opt-in: a read-only login for local tools, written to this file (mode 0600)
    observer = os.environ.get(ENV_BROKER_OBSERVER_FILE) or None
    try:
        broker = EmbeddedBroker(
            host="127.0.0.1", port=port, backend=backend, observer_file=observer
        )
        await broker.__aenter__()
    except BrokerError as exc:
        if fixed_port or port == 0 or "in use" not in str(exc):
            raise
        # The default port is often taken by a system-wide Mosquitto: any free port will do,
        # and the URL is printed.
        log.warning("MQTT port %d is in use (a system broker?); using a free port", port)
        broker = EmbeddedBroker(host="127.0.0.1", port=0, backend=backend, observer_file=observer)
        await broker.__aenter__()
    try:
        yield BrokerInfo(broker.url, tuple(broker.protocols), broker.logins)
    finally:
        await broker.__aexit__(None, None, None)


async def run_service(
    config: ServiceConfig | AppConfig, opts: ServiceOptions, *, announce: Any = None
) -> int:
    """Run every client's live session until Ctrl-C, their devices end, or the duration passes.

    Returns 0 when every client's session ended normally, 1 when any stopped after an error
    (the others ran on). `announce(text)` tells the person at the terminal where to look.
    """
    from biofeedback.service.clinic import plan_clients, run_clients

    service = config if isinstance(config, ServiceConfig) else ServiceConfig.single(config)
    say = announce or (lambda text: log.info("%s", text))
    # every client checked as `check` does (strap chosen, protocol valid), before anything starts
    plans = plan_clients(service, opts)
    from biofeedback.service.demo_data import claim_for_demo, refuse_demo_folder

    for folder in dict.fromkeys(p.config.recording_dir for p in plans):
        if opts.demo:
            claim_for_demo(folder)
        else:
            refuse_demo_folder(folder)
    if any(p.target is not None for p in plans) and not opts.wait_for_device:
        from biofeedback.devices.scan import check_bluetooth

        await check_bluetooth()  # no adapter: exit 2 with what is missing and the fix

    shared = service.shared
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            broker_url(shared, fixed_port=opts.mqtt_port_fixed)
        )
        if opts.web:
            await stack.enter_async_context(
                dashboard(
                    shared,
                    mqtt_settings(shared, broker, "dashboard"),
                    say,
                    fixed_port=opts.http_port_fixed,
                    # without `announce`, `say` logs: never a secret there
                    to_terminal=None if announce else False,
                    client_ids=[p.client_id for p in plans],
                )
            )
        # Session time starts once everything listens, so a slow start costs no calibration time.
        clock = ScaledClock(opts.speed)
        if len(plans) == 1:
            say(f"MQTT broker: {broker.url}  (topics biofeedback/v1/{plans[0].client_id}/#)")
        else:
            say(
                f"MQTT broker: {broker.url}  (topics biofeedback/v1/<client>/# for "
                f"{len(plans)} clients: {', '.join(p.client_id for p in plans)})"
            )
        failed = await run_clients(
            plans, service=service, broker=broker, clock=clock, opts=opts, say=say
        )
        if failed:
            say(f"session ended; stopped after an error: {', '.join(failed)} (see the log)")
        else:
            say("session ended")
    return 1 if failed else 0


def _open_recorder(
    stack: contextlib.AsyncExitStack,
    config: AppConfig,
    opts: ServiceOptions,
    core: SessionCore,
    start_t: float,
) -> Any:
    """The session's recording, with everything replay needs to rebuild the same core."""
    from biofeedback.recording import SessionRecorder
    from biofeedback.signal import baseline_to_json

    baseline = core.pipeline.baseline

    meta = {
        "software": f"biofeedback {__version__}",
        "python": sys.version.split()[0],
        "client_id": config.client_id,
        "start_t": start_t,
        "mode": "demo" if opts.demo else "live",
        "speed": opts.speed,
        "protocol_file": str(config.protocol),
        "protocol_toml": config.protocol.read_text(encoding="utf-8"),
        "calibration_s": core.calibration_s,
        "baseline_at_start": baseline_to_json(baseline) if baseline is not None else None,
        "config_file": str(config.source) if config.source else None,
        "signal_config": {k: getattr(config.signal, k) for k in config.signal.__dataclass_fields__},
    }
    return stack.enter_context(
        SessionRecorder(config.recording_dir, client_id=config.client_id, meta=meta)
    )


@contextlib.asynccontextmanager
async def dashboard(
    config: AppConfig,
    settings: Any,
    say: Any,
    *,
    fixed_port: bool = True,
    to_terminal: bool | None = None,
    client_ids: list[str] | None = None,
) -> AsyncIterator[str]:
    """The dashboard served for the duration; its URLs are announced.

    The links carry secrets: `say` gets them only when `to_terminal` (default: standard output
    is an interactive terminal); otherwise they go to a private file whose path `say` gets.
    `client_ids` (default: the config's client) each get their own client-screen link.
    """
    from aiohttp import web

    from biofeedback.service.clinic_urls import GroupUrls
    from biofeedback.web import WebConfig, create_app
    from biofeedback.web.announce import announce_dashboard, dashboard_urls, private_urls_path
    from biofeedback.web.app import start_site
    from biofeedback.web.auth import link_signature

    secret = config.web.therapist_secret or secrets.token_urlsafe(16)
    link_secret = secrets.token_urlsafe(32)
    wcfg = WebConfig(
        host=config.web.host,
        port=config.web.port,
        mqtt=settings,
        therapist_secret=secret,
        link_secret=link_secret,
        allowed_hosts=config.web.allowed_hosts,
    )
    app = create_app(wcfg)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await start_site(runner, config.web.host, config.web.port, fixed_port)
        port = runner.addresses[0][1] if runner.addresses else config.web.port
        clients = client_ids or [config.client_id]
        client = clients[0]
        urls = dashboard_urls(
            config.web.host, port, secret, f"/c/{client}/{link_signature(link_secret, client)}"
        )
        if len(clients) > 1:
            urls = GroupUrls(
                bases=urls.bases,
                therapist=urls.therapist,
                client=urls.client,
                clients=tuple(
                    (c, f"{urls.bases[0]}/c/{c}/{link_signature(link_secret, c)}") for c in clients
                ),
            )
        with announce_dashboard(
            urls,
            say,
            to_terminal=sys.stdout.isatty() if to_terminal is None else to_terminal,
            private_path=private_urls_path(client, port),
        ):
            yield urls.bases[0]
    finally:
        await runner.cleanup()
