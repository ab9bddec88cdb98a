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
        f"[session]\nprotocol = '{REPO_ROOT}/config/protocols/spider-hierarchy.toml'\n"
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
