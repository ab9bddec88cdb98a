"""The command line as a user meets it: fast help, clear errors, exit codes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from biofeedback.cli import main
from tests.support import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biofeedback", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from biofeedback.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "heavy = [m for m in ('neurokit2', 'bleak', 'paho', 'aiohttp', 'pandas', 'matplotlib')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"--help imported {out.stdout.strip()}"


def test_import_from_repo_root_does_not_shadow_stdlib() -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, signal, biofeedback; asyncio.run(asyncio.sleep(0))",
        ],
        cwd=REPO_ROOT,
        check=True,
    )


def test_check_validates_the_shipped_config() -> None:
    out = _run("check")
    assert out.returncode == 0, out.stderr
    assert "spider-hierarchy.toml" in out.stdout


def test_broken_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[signal]\nshort_window_s = -3\n")
    out = _run("check", "--config", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr
    assert "short_window_s" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_protocol_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[session]\nprotocol = 'nope.toml'\n")
    out = _run("check", "--config", str(cfg))
    assert out.returncode == 2
    assert "nope.toml" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_without_a_strap_says_how_to_choose_one(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[device]\nkind = 'ble'\n[session]\nprotocol = '{REPO_ROOT}/config/protocols/demo.toml'\n"
    )
    out = _run("run", "--config", str(cfg), "--no-web", "--data-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert "--device" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_client_id_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--client-id", "Jane Doe", "--no-web"]) == 2
    assert "--client-id" in capsys.readouterr().err


def test_taken_dashboard_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run(
            "demo", "--http-port", str(port), "--mqtt-port", "0", "--data-dir", str(tmp_path)
        )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert f"port {port}" in out.stderr
    assert "--http-port" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("[device]\nstale_after_s = nan\n", "stale_after_s"),
        ("[device]\nreconnect_max_s = inf\n", "reconnect_max_s"),
        ("[signal]\nhr_sd_floor_bpm = nan\n", "hr_sd_floor_bpm"),
    ],
)
def test_check_refuses_nan_and_inf_naming_the_field(tmp_path: Path, table: str, field: str) -> None:
    """The drill: `check` passed `stale_after_s = nan`; `run` failed after the broker was up."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[session]\nprotocol = '{REPO_ROOT}/config/protocols/demo.toml'\n" + table)
    out = _run("check", "--config", str(cfg))
    assert out.returncode == 2, out.stdout
    assert field in out.stderr
    assert str(cfg) in out.stderr
    assert "Traceback" not in out.stderr


def test_check_refuses_what_the_session_core_would(tmp_path: Path) -> None:
    """A resting calibration shorter than the HRV window fails `run` when the core is built;
    `check` says so first."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[session]\nprotocol = '{REPO_ROOT}/config/protocols/demo.toml'\n"
        "[signal]\nshort_window_s = 30\nlong_window_s = 180\n"
    )
    out = _run("check", "--config", str(cfg))
    assert out.returncode == 2, out.stdout
    assert "calibration_s" in out.stderr
    assert "long_window_s" in out.stderr


def test_check_accepts_a_private_config_file_with_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[session]\nprotocol = '{REPO_ROOT}/config/protocols/demo.toml'\n"
        "[mqtt]\nurl = 'mqtt://broker.invalid:1883'\nusername = 'svc'\npassword = 'pw'\n"
        "[web]\ntherapist_secret = 'a-long-therapist-secret'\n"
    )
    cfg.chmod(0o600)
    out = _run("check", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    cfg.chmod(0o644)
    out = _run("check", "--config", str(cfg))
    assert out.returncode == 2
    assert f"chmod 600 {cfg}" in out.stderr
    assert "pw" not in out.stderr.replace("password", "")


def test_an_mqtt_url_password_message_is_true() -> None:
    """It says "put it in the config file": the config file takes it (test_config.py shows how)."""
    from biofeedback.errors import ConfigError
    from biofeedback.service.mqtt import MqttSettings

    with pytest.raises(ConfigError) as info:
        MqttSettings.from_url("mqtt://svc:pw@broker:1883")
    assert "[mqtt] password" in str(info.value)
    assert "chmod 600" in str(info.value)


def test_demo_protocol_comes_with_the_package_not_from_next_to_the_config(tmp_path: Path) -> None:
    """`demo --config X` looked for protocols/demo.toml next to X."""
    from biofeedback.cli import build_parser
    from biofeedback.config import load_config
    from biofeedback.exposure import load_protocol
    from biofeedback.service.app import apply_overrides

    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    cfg_file = elsewhere / "clinic.toml"
    cfg_file.write_text("[client]\nid = 'c-42'\n")
    args = build_parser().parse_args(["demo", "--config", str(cfg_file)])
    cfg = apply_overrides(load_config(cfg_file, env={}), args, demo=True)
    assert cfg.protocol == REPO_ROOT / "config" / "protocols" / "demo.toml"
    assert load_protocol(cfg.protocol).name  # loads, as `demo` would
    # --protocol still wins
    args = build_parser().parse_args(["demo", "--config", str(cfg_file), "--protocol", "x.toml"])
    assert apply_overrides(load_config(cfg_file, env={}), args, demo=True).protocol.name == "x.toml"


# ---- issue 12: `run` needs a real strap and Bluetooth; the demo keeps its data apart -------------


def _data_config(tmp_path: Path) -> Path:
    """A config whose real data folders are in tmp_path/data (as data/ is for the shipped one)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[session]\nprotocol = '{REPO_ROOT}/config/protocols/demo.toml'\n"
        f"baseline_dir = '{tmp_path}/data/baselines'\n"
        f"[recording]\ndir = '{tmp_path}/data/recordings'\n"
    )
    return cfg


def _no_bus_env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-system-bus"}


def test_run_without_a_device_says_to_use_demo_or_scan(tmp_path: Path) -> None:
    """It used to run the simulated strap and record it as a real session."""
    out = _run("run", "--config", str(_data_config(tmp_path)), "--no-web")
    assert out.returncode == 2, out.stderr
    assert "--device" in out.stderr
    assert "biofeedback demo" in out.stderr
    assert "biofeedback scan" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()  # nothing recorded, nothing started


@pytest.mark.skipif(sys.platform != "linux", reason="the adapter check asks BlueZ (Linux)")
def test_run_without_bluetooth_fails_fast_naming_what_is_missing(tmp_path: Path) -> None:
    """It used to wait forever, printing an errno that named no file."""
    cfg = _data_config(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "biofeedback", "run", "--config", str(cfg), "--device", "NOPE"],
        cwd=REPO_ROOT,
        env=_no_bus_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert f"{tmp_path}/no-system-bus" in err  # the file that is missing ...
    assert "[Errno 2]" in err  # ... with the errno
    assert "Fix: start D-Bus and BlueZ" in err
    assert "Traceback" not in err
    assert "MQTT broker" not in proc.stdout  # failed before anything started
    assert not (tmp_path / "data").exists()


@pytest.mark.mosquitto
@pytest.mark.skipif(sys.platform != "linux", reason="the adapter check asks BlueZ (Linux)")
def test_run_wait_for_device_publishes_the_device_error_with_its_fix(tmp_path: Path) -> None:
    import contextlib
    import json
    import queue
    import signal
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.support import free_port

    port = free_port()
    observer = tmp_path / "observer.json"
    env = {
        **_no_bus_env(tmp_path),
        "BIOFEEDBACK_BROKER_OBSERVER_FILE": str(observer),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [
        sys.executable, "-m", "biofeedback", "run", "--config", str(_data_config(tmp_path)),
        "--device", "NOPE", "--wait-for-device", "--no-web", "--mqtt-port", str(port),
        "--client-id", "c-wait",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    got: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t-wait")
    try:
        deadline = time.monotonic() + 60
        login: dict[str, str] = {}
        while not login:  # the file is written after the broker started, not in one step
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the broker never started"
            time.sleep(0.1)
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                login = json.loads(observer.read_text())
        client.username_pw_set(login["username"], login["password"])
        client.on_message = lambda _c, _u, m: got.put((m.topic, json.loads(m.payload)))
        client.connect("127.0.0.1", port)
        client.subscribe("biofeedback/v1/c-wait/#", qos=1)
        client.loop_start()
        event: dict[str, object] | None = None
        status: dict[str, object] | None = None
        while event is None or status is None:
            topic, body = got.get(timeout=max(0.1, deadline - time.monotonic()))
            if topic.endswith("/event") and body.get("kind") == "error":
                event = body
            if topic.endswith("/status") and body.get("device_error"):
                status = body
        assert event["source"] == "device"
        assert f"{tmp_path}/no-system-bus" in str(event["detail"])
        assert "systemctl start dbus bluetooth" in str(event["hint"])
        assert status["device_hint"] == event["hint"]  # retained for a dashboard opened later
        assert proc.poll() is None  # still waiting for the strap
    finally:
        client.loop_stop()
        client.disconnect()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


@pytest.mark.slow
def test_the_demo_never_writes_where_run_reads(tmp_path: Path) -> None:
    """The demo saved its simulated baseline as client-001; a later `run` skipped calibration
    and used it for a real client."""
    cfg = _data_config(tmp_path)
    out = _run(
        "demo", "--config", str(cfg), "--no-web", "--speed", "40", "--duration", "150",
        "--mqtt-port", "0", "--log-level", "WARNING",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    real = tmp_path / "data"
    demo_root = real / "demo"
    # the demo's own folder, marked as such; its calibration (60 s) passed but nothing was saved
    assert f"recording to {demo_root / 'recordings'}" in out.stdout
    assert (demo_root / "recordings" / "DEMO-DATA.txt").is_file()
    assert [p.name for p in (demo_root / "recordings").iterdir() if p.is_dir()] == ["client-001"]
    assert not list(tmp_path.rglob("baselines/*.json"))
    assert not (real / "recordings").exists()
    assert not (real / "baselines").exists()
    # `run` refuses to record among the demo's sessions ...
    out = _run("run", "--config", str(cfg), "--device", "X", "--data-dir", str(demo_root))
    assert out.returncode == 2
    assert "DEMO-DATA.txt" in out.stderr
    assert "Traceback" not in out.stderr
    # ... and the demo refuses a folder with real sessions in it
    (tmp_path / "clinic" / "recordings" / "c-7").mkdir(parents=True)
    out = _run("demo", "--config", str(cfg), "--no-web", "--data-dir", str(tmp_path / "clinic"))
    assert out.returncode == 2
    assert "holds real recordings" in out.stderr
    assert not (tmp_path / "clinic" / "recordings" / "DEMO-DATA.txt").exists()
