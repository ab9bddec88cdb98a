"""The `biofeedback` command line.

Imports are deferred to the chosen command so `biofeedback --help` answers at once: scipy,
bleak, paho and aiohttp take time to import and most commands need only some of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from biofeedback import __version__
from biofeedback.errors import BiofeedbackError

log = logging.getLogger("biofeedback")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, default=None, help="config file (default: config/biofeedback.toml)"
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )


def _service_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client-id", default=None, help="pseudonymous client id (overrides config)")
    p.add_argument("--protocol", type=Path, default=None, help="exposure protocol TOML file")
    p.add_argument("--http-port", type=int, default=None, help="dashboard port (0 = any free)")
    p.add_argument(
        "--mqtt-port",
        type=int,
        default=None,
        help="port of the embedded MQTT broker (0 = any free)",
    )
    p.add_argument(
        "--mqtt-url",
        default=None,
        help="use an external broker, mqtt://host:port or mqtts://host:port "
        "(credentials from BIOFEEDBACK_MQTT_USERNAME / BIOFEEDBACK_MQTT_PASSWORD)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="where recordings are written")
    p.add_argument("--no-web", action="store_true", help="do not serve the dashboard")


def _dashboard_options(p: argparse.ArgumentParser) -> None:
    # here, not in biofeedback.web.standalone: importing the web package would slow down --help
    p.add_argument("--mqtt-url", required=True, help="mqtt://[user@]host:port or mqtts://...")
    p.add_argument("--mqtt-username", help="broker user (default: 'dashboard' with a password)")
    p.add_argument(
        "--mqtt-password-file", type=Path, help="file holding the broker password (chmod 600)"
    )
    p.add_argument("--ca-file", help="CA that signed the broker's certificate (mqtts://)")
    p.add_argument("--cert-file", help="client certificate, when the broker asks for one")
    p.add_argument("--key-file", help="key of the client certificate")
    p.add_argument("--protocol", type=int, choices=[5, 311], help="MQTT version (default 5)")
    p.add_argument("--mqtt-client-name", help="stable MQTT client name, e.g. bf-web-room2")
    p.add_argument("--host", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="port to serve on (default 8080, 0 = any)")
    p.add_argument("--allowed-host", action="append", help="extra host name (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biofeedback",
        description="Heart-rate biofeedback for paced, consent-driven exposure therapy. "
        "Not a medical device.",
    )
    parser.add_argument("--version", action="version", version=f"biofeedback {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the whole loop with a simulated strap and client",
        description="Simulated strap -> signal -> exposure session -> MQTT -> dashboard. "
        "A simulated client consents, is exposed, pauses on arousal, breathes, recovers.",
    )
    _common(demo)
    _service_options(demo)
    demo.add_argument(
        "--speed", type=float, default=1.0, help="run the story this many times faster (default 1)"
    )
    demo.add_argument(
        "--duration", type=float, default=None, help="stop after this many session seconds"
    )
    demo.add_argument(
        "--no-actor",
        action="store_true",
        help="no simulated client/therapist: consent and offer steps yourself in the browser",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed of the simulated strap")
    demo.add_argument(
        "--clients",
        type=int,
        default=1,
        help="simulate a group of N clients, each with their own baseline and reactivity "
        "(default 1)",
    )
    demo.add_argument(
        "--assessment",
        action="store_true",
        help="run a resonance-frequency assessment on a simulated client (its rate set by "
        "--seed) in simulated time, record it and keep the rate for the pacer "
        "(docs/resonance.md)",
    )

    run = sub.add_parser(
        "run",
        help="run a session with a real chest strap (Bluetooth LE), or every client of a clinic "
        "file (--config clinic.toml, docs/clinic.md)",
    )
    _common(run)
    _service_options(run)
    run.add_argument(
        "--device",
        required=False,
        help="strap name or address (see `scan`); without one `run` refuses (try `demo`)",
    )
    run.add_argument(
        "--wait-for-device",
        action="store_true",
        help="start even when Bluetooth is not usable yet and keep trying (the dashboard shows "
        "why there is no signal); without it `run` exits at once with the fix",
    )

    scan = sub.add_parser("scan", help="list nearby heart-rate straps")
    _common(scan)
    scan.add_argument("--timeout", type=float, default=5.0, help="seconds to scan (default 5)")

    replay = sub.add_parser("replay", help="run a recorded session through the pipeline again")
    _common(replay)
    replay.add_argument("session", type=Path, help="recorded session folder")
    replay.add_argument("--out", type=Path, default=None, help="where the replayed copy goes")
    replay.add_argument(
        "--speed",
        type=float,
        default=None,
        help="play back in time at this speed and drive the live dashboard (default: as fast "
        "as possible, no network)",
    )
    replay.add_argument("--http-port", type=int, default=None, help="dashboard port with --speed")
    replay.add_argument("--mqtt-port", type=int, default=None, help="broker port with --speed")

    report = sub.add_parser("report", help="write an HTML report with plots")
    _common(report)
    report.add_argument("session", type=Path, nargs="?", help="recorded session folder")
    report.add_argument("--client", default=None, help="progress across this client's sessions")
    report.add_argument("--out", type=Path, default=None, help="output folder")

    export = sub.add_parser("export", help="export a session in a BIDS-style physio layout")
    _common(export)
    export.add_argument("session", type=Path, help="recorded session folder")
    export.add_argument("--bids", type=Path, required=True, help="BIDS dataset folder")

    dash = sub.add_parser(
        "dashboard",
        help="the therapist dashboard alone, fed from a broker (no strap)",
        description="Serve the therapist dashboard for every client on an MQTT broker, logged in "
        "as its dashboard user (docs/dashboard.md, 'The dashboard alone'). The password comes from "
        "BIOFEEDBACK_MQTT_PASSWORD, --mqtt-password-file or the config file, never the command "
        "line.",
    )
    _common(dash)
    _dashboard_options(dash)

    check = sub.add_parser("check", help="validate a config file and its protocol")
    _common(check)
    return parser


# Libraries that narrate their own internals at INFO; their warnings still show.
_CHATTY = ("amqtt", "transitions", "aiohttp.access", "bleak", "matplotlib")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if level != "DEBUG":
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `biofeedback` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return _dispatch(args)
    except BiofeedbackError as exc:
        print(f"biofeedback: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # asyncio.run already cancelled and awaited every task; nothing is left to clean up.
        print("biofeedback: stopped", file=sys.stderr)
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    from biofeedback.config import load_config

    if args.command == "scan":
        from biofeedback.service.commands_cli import run_scan

        return asyncio.run(run_scan(args.timeout))
    if args.command == "report":
        from biofeedback.service.commands_cli import run_report

        return run_report(args)
    if args.command == "export":
        from biofeedback.service.commands_cli import run_export

        return run_export(args)

    if args.command == "dashboard":
        from biofeedback.web.standalone import options_from_args, serve_dashboard

        return asyncio.run(_until_terminated(serve_dashboard(options_from_args(args), _say)))

    if args.command == "check":
        from biofeedback.config import load_service_config
        from biofeedback.service.preflight import preflight

        service = load_service_config(args.config)
        if service.is_clinic:
            for client in service.clients:  # what `run` checks before starting anything
                proto = preflight(client)
                print(
                    f"{service.source}: client {client.client_id}: strap "
                    f"{client.device.target!r}, protocol {client.protocol.name}: "
                    f"{len(proto.steps)} steps"
                )
            print(
                f"{service.source}: ok; {len(service.clients)} clients, at most "
                f"{service.bluetooth.max_links_per_adapter} straps per adapter"
            )
            return 0
        config = service.clients[0]
        proto = preflight(config)  # what `run` checks before starting anything
        print(f"{config.source}: ok; protocol {config.protocol.name}: {len(proto.steps)} steps")
        if config.device.kind != "ble" or not config.device.target:
            print(
                "note: no strap in the config: `run` needs --device NAME|ADDRESS "
                "(`demo` needs none)"
            )
        return 0
    if args.command == "replay":
        from biofeedback.service.commands_cli import run_replay

        return run_replay(args, load_config(args.config))
    if args.command == "demo" and args.assessment:
        from biofeedback.service.assessment_demo import run_from_args

        return run_from_args(args, load_config(args.config), _say)
    from biofeedback.config import load_service_config
    from biofeedback.service.app import ServiceOptions, apply_service_overrides, run_service

    opts = ServiceOptions.from_args(args)
    service = apply_service_overrides(load_service_config(args.config), args, opts)
    return asyncio.run(_until_terminated(run_service(service, opts, announce=_say)))


async def _until_terminated(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; SIGTERM (a service manager stopping us) unwinds it like Ctrl-C does."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            print("biofeedback: stopped (SIGTERM)", file=sys.stderr)
            return 0
        raise


def _say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
