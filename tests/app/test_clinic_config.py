"""The clinic file: several clients in one service; every error names the file, client and field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from biofeedback.config import (
    DEFAULT_MAX_LINKS_PER_ADAPTER,
    REPO_CONFIG_DIR,
    load_config,
    load_service_config,
    parse_config,
    parse_service_config,
)
from biofeedback.errors import ConfigError
from biofeedback.service.topics import valid_client_id

SRC = Path("/etc/biofeedback/clinic.toml")


def _clients(*entries: str) -> str:
    return "".join(f"[[clients]]\n{e}\n" for e in entries)


def test_the_example_clinic_file_loads_and_shares_everything_but_the_client() -> None:
    cfg = load_service_config(REPO_CONFIG_DIR / "clinic.example.toml", env={})
    assert cfg.is_clinic
    assert [c.client_id for c in cfg.clients] == ["room1-a", "room1-b", "room1-c"]
    assert [c.device.target for c in cfg.clients] == [
        "Polar H10 A1B2C3D4",
        "A0:9E:1A:00:00:02",
        "Polar H10 C3D4E5F6",
    ]
    assert all(c.device.kind == "ble" for c in cfg.clients)
    shared = {(c.mqtt, c.web, c.recording_dir, c.baseline_dir, c.signal) for c in cfg.clients}
    assert len(shared) == 1
    assert cfg.bluetooth.max_links_per_adapter == DEFAULT_MAX_LINKS_PER_ADAPTER


def test_a_one_client_file_is_the_service_of_one() -> None:
    one = load_service_config(env={})
    assert not one.is_clinic
    assert one.clients == (load_config(env={}),)


def test_a_client_protocol_resolves_against_the_file_and_defaults_to_the_session_one() -> None:
    text = (
        _clients('id = "a"\nstrap = "S1"\nprotocol = "p/a.toml"', 'id = "b"\nstrap = "S2"')
        + '[session]\nprotocol = "shared.toml"\n'
    )
    cfg = parse_service_config(text, source=SRC, env={})
    assert [c.protocol for c in cfg.clients] == [
        SRC.parent / "p/a.toml",
        SRC.parent / "shared.toml",
    ]


def test_more_clients_than_the_adapter_holds_is_refused_with_the_fix() -> None:
    six = _clients(*(f'id = "c{i}"\nstrap = "S{i}"' for i in range(6)))
    with pytest.raises(ConfigError) as err:
        parse_service_config(six, source=SRC, env={})
    msg = str(err.value)
    for part in (str(SRC), "max_links_per_adapter = 5 (the default)", "6 clients", "Split"):
        assert part in msg
    raised = parse_service_config(six + "[bluetooth]\nmax_links_per_adapter = 8\n", env={})
    assert len(raised.clients) == 6


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (_clients('id = "a b"\nstrap = "S1"'), ["[[clients]] #1", "id 'a b'", "pseudonym"]),
        (_clients('id = "a"\nstrap = "S1"', 'id = "a"\nstrap = "S2"'), ["#2", "'a'", "#1"]),
        (_clients('id = "a"\nstrap = "S1"', 'id = "b"\nstrap = "s1"'), ["#2 (id 'b')", "strap"]),
        (_clients('id = "a"'), ["#1 (id 'a')", "strap is missing"]),
        (_clients('strap = "S"'), ["#1", "id is missing"]),
        (_clients('id = "a"\nstrap = ""'), ["(id 'a')", "strap", "empty"]),
        (_clients('id = "a"\nstrap = 3'), ["(id 'a')", "strap must be text", "int"]),
        (_clients('id = "a"\nstrap = "S"\nprotocol = 1'), ["(id 'a')", "protocol"]),
        (_clients('id = "a"\nstrap = "S"\nadapter = "hci1"'), ["(id 'a')", "adapter"]),
        ("clients = []\n", ["[[clients]]", "at least one"]),
        ("clients = [1]\n", ["[[clients]] #1", "must be a table"]),
        ('[client]\nid = "x"\n' + _clients('id = "a"\nstrap = "S"'), ["[client]", "remove"]),
        (_clients('id = "a"\nstrap = "S"') + '[device]\ntarget = "X"\n', ["[device].target"]),
        (
            _clients('id = "a"\nstrap = "S"') + "[bluetooth]\nmax_links_per_adapter = 0\n",
            ["[bluetooth].max_links_per_adapter", "at least 1"],
        ),
        (_clients('id = "a"\nstrap = "S"') + "[signal]\nmin_rr_ms = nan\n", ["[signal].min_rr_ms"]),
    ],
)
def test_clinic_errors_name_the_file_the_client_and_the_field(text: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_service_config(text, source=SRC, env={})
    msg = str(err.value)
    assert msg.startswith(str(SRC)), msg
    for name in names:
        assert name in msg, msg


def test_one_client_commands_refuse_a_clinic_file_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match="clinic file"):
        parse_config(_clients('id = "a"\nstrap = "S"'), source=SRC, env={})


# ---- hypothesis: any malformed clinic file is a ConfigError naming the file, never a crash

_valid_ids = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
_valid_straps = st.from_regex(r"Polar H10 [0-9A-F]{3}", fullmatch=True)
_junk = st.one_of(st.text(max_size=70), st.integers(), st.floats(), st.booleans(), st.none())


@st.composite
def _clinic_docs(draw: st.DrawFn) -> str:
    """Clinic files, mostly well formed with one thing or another wrong, some wholly valid."""
    lines = []
    for _ in range(draw(st.integers(0, 7))):
        lines.append("[[clients]]")
        broken = draw(st.integers(0, 4)) == 0  # one entry in five has something wrong
        entry: dict[str, Any] = {
            "id": draw(st.one_of(_valid_ids, _junk) if broken else _valid_ids),
            "strap": draw(st.one_of(_valid_straps, _junk) if broken else _valid_straps),
        }
        if draw(st.integers(0, 3)) == 0:
            entry["protocol"] = draw(
                st.one_of(st.just("p.toml"), _junk) if broken else st.just("p.toml")
            )
        if broken and draw(st.booleans()):
            entry[draw(st.sampled_from(["adapter", "x", "Id"]))] = draw(_junk)
        for key, value in entry.items():
            if value is not None:
                lines.append(f"{key} = {_toml(value)}")
    if draw(st.booleans()):
        limit = draw(st.one_of(st.integers(-2, 40), _junk))
        lines.append(
            f"[bluetooth]\nmax_links_per_adapter = {_toml(limit if limit is not None else 0)}"
        )
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return (
            "nan"
            if value != value
            else ("inf" if value > 0 else "-inf")
            if abs(value) == float("inf")
            else repr(value)
        )
    return repr(value)


@settings(max_examples=300, deadline=None)
@given(_clinic_docs())
def test_any_clinic_file_loads_valid_or_fails_naming_the_file(text: str) -> None:
    """Accepted only when valid (ids, straps, the link limit), else refused naming the file."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raw = None
    try:
        cfg = parse_service_config(text, source=SRC, env={})
    except ConfigError as exc:
        error = str(exc)
    else:
        error = ""
    event("refused" if error else "accepted")
    if error:
        assert error.startswith(str(SRC)), error
        return
    # accepted: then it really is valid
    assert raw is not None
    ids = [c.client_id for c in cfg.clients]
    assert all(valid_client_id(i) for i in ids)
    assert len(set(ids)) == len(ids)
    if cfg.is_clinic:
        assert len(ids) == len(raw["clients"])
        assert len(ids) <= cfg.bluetooth.max_links_per_adapter
        assert all(c.device.target.strip() for c in cfg.clients)


@pytest.mark.parametrize("command", ["check", "run"])
def test_more_straps_than_the_adapter_holds_stops_check_and_run_at_once(
    tmp_path: Path, command: str
) -> None:
    import subprocess
    import sys

    from tests.support import REPO_ROOT

    six = tmp_path / "clinic.toml"
    six.write_text(_clients(*(f'id = "c{i}"\nstrap = "Polar H10 {i}"' for i in range(6))))
    out = subprocess.run(
        [sys.executable, "-m", "biofeedback.cli", command, "--config", str(six)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert str(six) in out.stderr
    assert "6 clients need 6 Bluetooth LE links" in out.stderr
    assert "max_links_per_adapter = 5" in out.stderr
    assert "Traceback" not in out.stderr
