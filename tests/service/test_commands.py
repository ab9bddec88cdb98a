"""Commands on `cmd`: parsing, role rules (biofeedback.exposure.rules), junk, de-duplication."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.errors import CommandError
from biofeedback.exposure.messages import (
    AdjustThresholds,
    ChooseGrounding,
    GroundingTechnique,
    OfferStep,
    Pause,
    Role,
    SudsAnswer,
)
from biofeedback.exposure.rules import ROLE_RULES
from biofeedback.service import payloads
from biofeedback.service.commands import (
    COMMANDS,
    CommandDeduper,
    CommandReply,
    allowed_commands,
    command_id_of,
    parse_command,
)

# A valid set of arguments for every command.
VALID_ARGS: dict[str, dict[str, Any]] = {
    "pause": {"note": "too much"},
    "consent": {},
    "decline": {},
    "offer_step": {"step": 2},
    "complete_step": {},
    "end": {},
    "adjust_thresholds": {"upper": 70, "lower": 40.5, "dwell_s": 5, "recovery_s": 30},
    "suds": {"value": 55},
    "choose_grounding": {"technique": "sensory_5_4_3_2_1"},
    "recalibrate": {"reason": "calm now, the first calibration was right after the stairs"},
    "ready": {},
}


def raw(**fields: Any) -> bytes:
    base: dict[str, Any] = {"v": 1, "id": "c-1", "role": "client", "cmd": "pause", "args": {}}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def parse(data: bytes | str) -> Any:
    return parse_command(data, t=1000.5, client_id="c1")


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("role", ["client", "therapist"])
def test_role_table_is_enforced(name: str, role: str) -> None:
    """Every (command, role) pair is accepted exactly when exposure's ROLE_RULES allows it."""
    data = raw(cmd=name, role=role, args=VALID_ARGS[name], id=f"{name}-{role}")
    allowed = Role(role) in ROLE_RULES[COMMANDS[name]]
    if allowed:
        cmd = parse(data)
        assert isinstance(cmd, COMMANDS[name])
        assert cmd.role is Role(role)
        assert cmd.command_id == f"{name}-{role}"
        assert cmd.t == 1000.5  # the service's time, not the sender's
        payloads.validate("command", json.loads(data))
    else:
        with pytest.raises(CommandError, match=f"role '{role}' may not send '{name}'"):
            parse(data)


def test_the_issue_role_rules_hold() -> None:
    assert set(allowed_commands("client")) == {
        "pause",
        "consent",
        "decline",
        "suds",
        "choose_grounding",
        "ready",
    }
    assert set(allowed_commands("therapist")) == {
        "pause",
        "offer_step",
        "complete_step",
        "end",
        "adjust_thresholds",
        "recalibrate",
    }


def test_arguments_reach_the_dataclass() -> None:
    p = parse(raw(cmd="pause", args={"note": "breathe"}))
    assert p == Pause(t=1000.5, role=Role.CLIENT, note="breathe", command_id="c-1")
    a = parse(raw(role="therapist", cmd="adjust_thresholds", args={"upper": 80, "dwell_s": 4}))
    assert isinstance(a, AdjustThresholds)
    assert (a.upper, a.lower, a.dwell_s, a.recovery_s) == (80.0, None, 4.0, None)
    o = parse(raw(role="therapist", cmd="offer_step", args={}))
    assert o == OfferStep(t=1000.5, role=Role.THERAPIST, step=None, command_id="c-1")
    s = parse(raw(cmd="suds", args={"value": 100.0}))
    assert s == SudsAnswer(t=1000.5, role=Role.CLIENT, value=100, command_id="c-1")
    g = parse(raw(cmd="choose_grounding", args={"technique": "paced_breathing"}))
    assert isinstance(g, ChooseGrounding)
    assert g.technique is GroundingTechnique.PACED_BREATHING
    # args may be omitted for commands without arguments
    assert parse(raw(cmd="consent", args=...)).command_id == "c-1"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"pause"', "must be a JSON object"),
        (raw(v=2), "'v' must be 1"),
        (raw(v=True), "'v' must be 1"),
        (raw(v=...), "'v' must be 1"),
        (raw(id=...), "'id' must be a non-empty string"),
        (raw(id=""), "'id' must be a non-empty string"),
        (raw(id=7), "'id' must be a non-empty string"),
        (raw(id="x" * 129), "printable ASCII"),
        (raw(id="has space"), "printable ASCII"),
        (raw(role="system"), "'role' must be 'client' or 'therapist'"),
        (raw(role=...), "'role' must be 'client' or 'therapist'"),
        (raw(cmd="resume"), 'unknown command "resume"'),
        (raw(cmd=...), "unknown command null"),
        (raw(extra=1), "unknown field(s): extra"),
        (raw(args=[1]), "'args' must be a JSON object"),
        (raw(args={"nope": 1}), "unknown argument(s) nope"),
        (raw(cmd="suds", args={}), "missing argument(s) value"),
        (raw(cmd="suds", args={"value": 101}), "args.value must be an integer 0..100, got 101"),
        (raw(cmd="suds", args={"value": -1}), "args.value must be an integer 0..100, got -1"),
        (raw(cmd="suds", args={"value": "50"}), "args.value must be an integer 0..100, got text"),
        (raw(cmd="suds", args={"value": True}), "args.value must be an integer"),
        (raw(cmd="suds", args={"value": 5.5}), "args.value must be an integer"),
        (raw(cmd="choose_grounding", args={"technique": "run"}), "args.technique must be one of"),
        (raw(cmd="pause", args={"note": 5}), "args.note must be text"),
        (
            raw(role="therapist", cmd="offer_step", args={"step": -1}),
            "args.step must be an integer 0..999",
        ),
        (raw(role="therapist", cmd="adjust_thresholds", args={}), "at least one of"),
        (raw(role="therapist", cmd="adjust_thresholds", args={"upper": 120}), "upper must be 0"),
        (
            raw(role="therapist", cmd="adjust_thresholds", args={"upper": 40, "lower": 60}),
            "lower (60) must be below upper (40)",
        ),
        (raw(role="therapist", cmd="adjust_thresholds", args={"dwell_s": -1}), "dwell_s must be"),
        (
            b'{"v":1,"id":"a","role":"therapist","cmd":"adjust_thresholds","args":{"upper":NaN}}',
            "finite",
        ),
        (raw(role="therapist", cmd="adjust_thresholds", args={"upper": 1e400}), "finite"),
        (b"[" * 100_000, "too large"),
        ("[" * 5000 + "]" * 5000, "too large"),
        (b"[" * 4000 + b"]" * 4000, "not usable JSON"),
        (raw(t="yesterday"), "'t' must be a number"),
    ],
)
def test_bad_commands_name_the_problem(data: bytes | str, needle: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(data)
    assert needle in str(info.value)


def test_role_violation_is_refused_even_with_valid_args() -> None:
    with pytest.raises(CommandError, match="a client may send: pause, consent"):
        parse(raw(role="client", cmd="adjust_thresholds", args={"upper": 50}))
    with pytest.raises(CommandError, match="may not send 'consent'"):
        parse(raw(role="therapist", cmd="consent"))


def test_command_id_of_for_error_replies() -> None:
    assert command_id_of(raw(id="abc", cmd="nonsense")) == "abc"
    assert command_id_of(b"\xff") is None
    assert command_id_of(b'{"id": 5}') is None


# Structured junk: JSON values shaped roughly like commands.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
near_commands = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, "1", True, None]),
        "id": st.one_of(st.text(max_size=10), st.integers()),
        "role": st.sampled_from(["client", "therapist", "system", "", 3]),
        "cmd": st.sampled_from([*COMMANDS, "resume", None]),
        "args": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "value": json_values,
                    "upper": json_values,
                    "lower": json_values,
                    "step": json_values,
                    "technique": st.sampled_from(["paced_breathing", "x", 1]),
                    "note": json_values,
                },
            ),
        ),
        "t": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_command_error(data: bytes) -> None:
    with contextlib.suppress(CommandError):
        parse(data)


@settings(max_examples=500, deadline=None)
@given(near_commands)
def test_random_command_json_raises_only_command_error(value: dict[str, Any]) -> None:
    """Anything parse_command accepts also satisfies the published JSON Schema, and vice versa
    for role and command names: the schema and the parser cannot drift apart silently."""
    data = json.dumps(value).encode()
    try:
        cmd = parse(data)
    except CommandError:
        return
    payloads.validate("command", value)
    assert cmd.command_id == value["id"]


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_raises_only_command_error(value: Any) -> None:
    with contextlib.suppress(CommandError):
        parse(json.dumps(value))


def test_deduper_applies_each_id_once_and_repeats_the_reply() -> None:
    d = CommandDeduper(capacity=3)
    assert d.state("a") == "new"
    assert d.claim("a") is True
    assert d.state("a") == "pending"
    assert d.claim("a") is False  # redelivered while the first is being applied
    assert d.seen("a") is None
    reply = CommandReply("a", True, None, 5.0).payload("c1")
    d.remember("a", reply)
    assert d.state("a") == "done"
    assert d.seen("a") == reply
    assert d.claim("a") is False
    for cid in ("b", "c", "d"):
        d.claim(cid)
    assert "a" not in d  # the oldest ids are forgotten past capacity
    assert len(d) == 3


def test_reply_payload_validates() -> None:
    ok = CommandReply("x-1", True, None, 12.0).payload("c1")
    bad = CommandReply(None, False, "command is not valid JSON", 12.0).payload("c1")
    payloads.validate("reply", ok)
    payloads.validate("reply", bad)
    assert ok == {"v": 1, "t": 12.0, "client": "c1", "id": "x-1", "ok": True, "error": None}
