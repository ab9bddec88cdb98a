"""The command-line tools that are not a live session: scan, replay, report, export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from biofeedback.config import AppConfig
from biofeedback.errors import ConfigError, RecordingError
from biofeedback.service.core import SessionCore

log = logging.getLogger(__name__)


async def run_scan(timeout_s: float) -> int:
    """Print the heart-rate straps in range."""
    from biofeedback.devices.scan import scan

    adverts = await scan(timeout_s=timeout_s)
    if not adverts:
        print(f"no heart-rate strap found in {timeout_s:g} s (worn and moist? see docs/straps.md)")
        return 1
    print(f"{'name':<24} {'address':<20} {'rssi':>5} {'battery':>8}")
    for a in adverts:
        battery = f"{a.battery_pct}%" if a.battery_pct is not None else "?"
        print(
            f"{a.name:<24} {a.address:<20} {a.rssi if a.rssi is not None else '?':>5} {battery:>8}"
        )
    return 0


def core_from_recording(info: Any) -> SessionCore:
    """A fresh SessionCore set up exactly as the recorded session's was at its start."""
    from biofeedback.exposure import parse_protocol
    from biofeedback.recording.replay import meta_dataclass
    from biofeedback.signal import SignalConfig, baseline_from_json

    meta = info.meta
    signal = meta_dataclass(info, "signal_config", SignalConfig)
    if signal is None or "protocol_toml" not in meta or info.start_t is None:
        raise RecordingError(
            f"{info.path}/session.json lacks what replay needs (signal_config, protocol_toml, "
            "start_t); it was not written by `biofeedback demo` or `run`"
        )
    protocol = parse_protocol(meta["protocol_toml"], source=meta.get("protocol_file", "recorded"))
    raw_baseline = meta.get("baseline_at_start")
    return SessionCore(
        client_id=info.client_id,
        protocol=protocol,
        signal_config=signal,
        start_t=float(info.start_t),
        baseline=baseline_from_json(raw_baseline) if raw_baseline else None,
        calibration_s=meta.get("calibration_s"),
    )


def run_replay(args: argparse.Namespace, config: AppConfig) -> int:
    """Replay a recording through the pipeline; report whether it reproduced the original."""
    from biofeedback.recording import replay_session

    session = args.session.resolve()
    if not session.is_dir():
        raise RecordingError(f"{session} is not a recorded session folder")
    if args.speed is not None:
        return asyncio.run(_replay_live(args, config, session))
    out_root = (args.out or session.parent.parent.parent / "replays").resolve()
    result = replay_session(session, out_root, core_factory=core_from_recording)
    print(f"replayed {result.inputs} inputs of {session}")
    print(f"replay written to {result.replay}")
    for note in result.notes:
        print(f"note: {note}")
    print(result.verdict)
    for line in result.differences:
        print(f"  {line}")
    # a difference explained by a named pipeline or format change is not a failure to reproduce
    return result.exit_status


async def _replay_live(args: argparse.Namespace, config: AppConfig, session: Path) -> int:
    """Play a recording back in time (x speed) through a broker to the live dashboard."""
    from dataclasses import replace

    from biofeedback.clock import ScaledClock
    from biofeedback.recording import iter_input_rows, open_session
    from biofeedback.service import payloads
    from biofeedback.service.app import broker_url, dashboard, mqtt_settings
    from biofeedback.service.mqtt import MqttLink
    from biofeedback.service.runner import SessionRunner
    from biofeedback.service.topics import Topic, topic

    if not args.speed > 0:
        raise ConfigError(f"--speed must be > 0, got {args.speed}")
    info = open_session(session)
    core = core_from_recording(info)
    cfg = replace(config, client_id=info.client_id)
    if args.http_port is not None:
        cfg = replace(cfg, web=replace(cfg.web, port=args.http_port))
    if args.mqtt_port is not None:
        cfg = replace(cfg, mqtt=replace(cfg.mqtt, port=args.mqtt_port))
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            broker_url(cfg, fixed_port=args.mqtt_port is not None)
        )
        settings = mqtt_settings(cfg, broker)
        link = await stack.enter_async_context(
            MqttLink(
                settings,
                client_name=f"bf-replay-{info.client_id}",
                will=(
                    topic(info.client_id, Topic.STATUS),
                    json.dumps(payloads.offline_status(info.client_id)).encode(),
                    True,
                ),
            )
        )
        await stack.enter_async_context(
            dashboard(
                cfg,
                mqtt_settings(cfg, broker, "dashboard"),
                print,
                fixed_port=args.http_port is not None,
            )
        )
        print(f"replaying {session} at {args.speed:g}x (Ctrl-C stops)")
        start_t = core.last_t  # the recorded start (core_from_recording requires it)
        clock = ScaledClock(args.speed, start=start_t)
        runner = SessionRunner(core=core, device=None, clock=clock, publisher=link)
        for _seq, item in iter_input_rows(session):
            await clock.sleep(float(item.t) - clock.now())
            runner.process(item)
        print("replay finished")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """HTML report of one session, or of one client's progress across sessions."""
    from biofeedback.config import load_config
    from biofeedback.recording import write_client_report, write_report

    if args.client:
        config = load_config(args.config)
        out = args.out or Path(f"report-{args.client}")
        from biofeedback.service.resonance_store import load_history

        history = load_history(config.baseline_dir, args.client)
        path = write_client_report(config.recording_dir, args.client, out, history)
    elif args.session:
        out = args.out or args.session / "report"
        path = write_report(args.session, out)
    else:
        raise ConfigError("report needs a SESSION folder or --client ID")
    print(f"report written to {path}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """BIDS-style physio export of one session."""
    from biofeedback.recording import export_bids

    path = export_bids(args.session, args.bids)
    print(f"exported to {path}")
    return 0
