"""The assessment's commands on the wire: parsed with validated JSON, role rules enforced,
every accepted one valid against schemas/command.json (docs/mqtt.md, "Commands")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biofeedback.errors import CommandError
from biofeedback.exposure.messages import ASSESSMENT_ROLE_RULES, ChooseBreathingRate, Role
from biofeedback.service import payloads
from biofeedback.service.commands import ASSESSMENT_COMMANDS, parse_command


def raw(cmd: str, role: str, args: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"v": 1, "id": f"{cmd}-{role}", "role": role, "cmd": cmd}
    if args is not None:
        body["args"] = args
    return json.dumps(body).encode()


@pytest.mark.parametrize("name", sorted(ASSESSMENT_COMMANDS))
@pytest.mark.parametrize("role", ["client", "therapist"])
def test_role_rules(name: str, role: str) -> None:
    cls = ASSESSMENT_COMMANDS[name]
    args = {"rate_bpm": 5.5} if name == "choose_rate" else None
    data = raw(name, role, args)
    if Role(role) in ASSESSMENT_ROLE_RULES[cls]:
        cmd = parse_command(data, t=12.5, client_id="c1")
        assert isinstance(cmd, cls)
        assert cmd.role is Role(role)
        assert cmd.t == 12.5
        payloads.validate("command", json.loads(data))
    else:
        with pytest.raises(CommandError, match=f"role '{role}' may not send '{name}'"):
            parse_command(data, t=12.5, client_id="c1")


def test_the_rules_are_the_issues() -> None:
    table = {n: ASSESSMENT_ROLE_RULES[c] for n, c in ASSESSMENT_COMMANDS.items()}
    assert table["assessment_offer"] == {Role.THERAPIST}  # only the therapist offers
    assert table["assessment_consent"] == {Role.CLIENT}  # only the client consents
    assert table["assessment_decline"] == {Role.CLIENT}
    assert table["assessment_stop"] == {Role.CLIENT, Role.THERAPIST}
    assert table["choose_rate"] == {Role.CLIENT}  # the client's own rate


def test_choose_rate_null_goes_back_to_the_measured_rate() -> None:
    cmd = parse_command(raw("choose_rate", "client", {"rate_bpm": None}), t=0.0, client_id="c1")
    assert isinstance(cmd, ChooseBreathingRate)
    assert cmd.rate_bpm is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"rate_bpm": 2.0}, "3..10 breaths/min"),
        ({"rate_bpm": 11}, "3..10 breaths/min"),
        ({"rate_bpm": "6"}, "must be a number"),
        ({"rate_bpm": True}, "must be a number"),
        ({"rate": 6}, "unknown argument"),
    ],
)
def test_bad_rates_are_named(args: dict[str, Any], match: str) -> None:
    with pytest.raises(CommandError, match=match):
        parse_command(raw("choose_rate", "client", args), t=0.0, client_id="c1")


def test_assessment_commands_take_no_arguments() -> None:
    with pytest.raises(CommandError, match="unknown argument"):
        parse_command(raw("assessment_offer", "therapist", {"x": 1}), t=0.0, client_id="c1")


@given(st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text(max_size=5)))
def test_any_rate_is_taken_or_refused_by_name(value: Any) -> None:
    data = raw("choose_rate", "client", {"rate_bpm": value})
    ok = value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and 3 <= value <= 10
    )
    if not ok:
        with pytest.raises(CommandError, match=r"choose_rate|JSON"):
            parse_command(data, t=0.0, client_id="c1")
        return
    cmd = parse_command(data, t=0.0, client_id="c1")
    assert isinstance(cmd, ChooseBreathingRate)
    assert cmd.rate_bpm is None or 3.0 <= cmd.rate_bpm <= 10.0
