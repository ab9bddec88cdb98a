"""Command ids, step numbers and the per-role rate limit (issue 16, "Commands and config").

- a reused id from another sender or for another command is refused, never answered with the
  earlier command's reply; a true redelivery still gets the same reply, applied once;
- step numbers are bounded integers, refused with the field and the range named;
- a role's commands are rate-limited, but a client's pause is never refused by the limit, and a
  flood of pauses does not flood the event stream.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.errors import CommandError
from biofeedback.exposure import load_protocol
from biofeedback.exposure.messages import Command, OfferStep, Pause, Role, SessionState
from biofeedback.service import payloads
from biofeedback.service.commands import (
    MAX_STEP_INDEX,
    CommandDeduper,
    CommandRateLimiter,
    RateLimit,
    command_fingerprint,
    handle_command_message,
    parse_command,
)
from biofeedback.service.core import CommandResult, SessionCore
from biofeedback.service.mqtt import IncomingMessage
from biofeedback.service.topics import command_topic
from biofeedback.signal import SignalConfig
from tests.exposure.helpers import exposing
from tests.support import REPO_ROOT

C1 = "c-7f3a"
CMD_TOPIC = command_topic(C1)


@dataclass
class FakeLink:
    """Collects replies the way MqttLink.reply would publish them."""

    replies: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, msg: IncomingMessage, client_id: str, payload: dict[str, Any]) -> None:
        payloads.validate("reply", payload)
        self.replies.append(payload)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _msg(cid: str, cmd: str = "pause", role: str = "client", **args: Any) -> IncomingMessage:
    body = {"v": 1, "id": cid, "role": role, "cmd": cmd, "args": args}
    return IncomingMessage(CMD_TOPIC, json.dumps(body).encode(), qos=1)


class CoreSink:
    """Applies submitted commands to a real SessionCore at once, as the runner does."""

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        self.applied: list[Command] = []
        self.events: list[Any] = []

    def submit(self, cmd: Command, reply: Any) -> None:
        self.applied.append(cmd)
        out = self.core.feed(cmd)
        self.events += out.events
        assert isinstance(out.command, CommandResult)
        reply(payloads.command_reply(C1, out.t, out.command))


def _core() -> SessionCore:
    protocol = load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml")
    return SessionCore(client_id=C1, protocol=protocol, signal_config=SignalConfig(), start_t=0.0)


def _send(
    link: FakeLink,
    sink: CoreSink,
    dedupe: CommandDeduper,
    limiter: CommandRateLimiter | None,
    msg: IncomingMessage,
    t: float = 10.0,
) -> dict[str, Any]:
    n = len(link.replies)
    handle_command_message(cast(Any, link), C1, msg, t, sink.submit, dedupe, limiter)
    assert len(link.replies) == n + 1, "every delivery gets exactly one reply here"
    return link.replies[-1]


# ---- reused ids ---------------------------------------------------------------------------------


def test_a_reused_id_from_another_sender_is_refused_not_answered_with_the_old_reply() -> None:
    link, sink, dedupe = FakeLink(), CoreSink(_core()), CommandDeduper()
    first = _send(link, sink, dedupe, None, _msg("x-1", "pause", "client"))
    assert first["ok"] is True
    # the therapist's `end` reuses the id of the client's pause: not applied, and not "ok"
    r = _send(link, sink, dedupe, None, _msg("x-1", "end", "therapist"))
    assert r["ok"] is False
    assert r["id"] == "x-1"
    assert "already used" in r["error"]
    assert "new, unique id" in r["error"]
    assert len(sink.applied) == 1
    assert sink.core.snapshot.state is not SessionState.ENDED
    # another command from the same sender with that id, and the same command with other args
    assert not _send(link, sink, dedupe, None, _msg("x-1", "consent"))["ok"]
    assert not _send(link, sink, dedupe, None, _msg("x-1", "pause", note="other"))["ok"]
    # a true redelivery (same sender, command and arguments) still gets its own reply once
    again = _send(link, sink, dedupe, None, _msg("x-1", "pause", "client"))
    assert again == first
    assert len(sink.applied) == 1


def test_fingerprint_ignores_time_and_id_but_not_role_command_or_args() -> None:
    def fp(data: dict[str, Any], t: float = 1.0) -> str:
        body = {"v": 1, "id": "a", **data}
        return command_fingerprint(parse_command(json.dumps(body), t=t, client_id=C1))

    base = {"role": "therapist", "cmd": "pause", "args": {"note": "x"}}
    assert fp(base) == fp(base, t=99.0) == fp({**base, "t": 5})
    assert fp(base) != fp({**base, "role": "client"})
    assert fp(base) != fp({**base, "args": {"note": "y"}})
    assert fp(base) != fp({"role": "therapist", "cmd": "end"})
    assert fp({"role": "therapist", "cmd": "offer_step", "args": {"step": 1}}) == fp(
        {"role": "therapist", "cmd": "offer_step", "args": {"step": 1.0}}
    )


def test_deduper_reports_a_conflict_for_another_fingerprint() -> None:
    d = CommandDeduper()
    assert d.claim("a", "pause|client")
    assert d.state("a", "pause|client") == "pending"
    assert d.state("a", "end|therapist") == "conflict"
    d.remember("a", {"ok": True}, "pause|client")
    assert d.state("a", "pause|client") == "done"
    assert d.state("a", "end|therapist") == "conflict"


# ---- step numbers -------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d{21,}")


def _offer(step: Any) -> str:
    return (
        '{"v":1,"id":"o-1","role":"therapist","cmd":"offer_step","args":{"step":'
        + (step if isinstance(step, str) and step[:1] in "-0123456789NI" else json.dumps(step))
        + "}}"
    )


@pytest.mark.parametrize(
    "step",
    ["1e300", "-1", "1.5", "3", True, "NaN", "Infinity", "-Infinity", "1" + "0" * 300, "1000"],
)
def test_bad_step_numbers_are_refused_naming_the_field_and_range(step: Any) -> None:
    raw = _offer(step) if step != "3" else _offer(json.dumps("3"))
    with pytest.raises(CommandError) as info:
        parse_command(raw, t=1.0, client_id=C1)
    msg = str(info.value)
    assert "args.step" in msg
    assert f"0..{MAX_STEP_INDEX}" in msg
    assert not _DIGITS.search(msg), msg  # no 301-digit number
    assert len(msg) < 160


def test_good_step_numbers_pass() -> None:
    for raw, want in [("0", 0), ("2", 2), ("2.0", 2), (str(MAX_STEP_INDEX), MAX_STEP_INDEX)]:
        cmd = parse_command(_offer(raw), t=1.0, client_id=C1)
        assert isinstance(cmd, OfferStep)
        assert cmd.step == want
        assert type(cmd.step) is int


step_values = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(step_values)
def test_any_step_value_is_a_bounded_int_or_a_clear_refusal(step: Any) -> None:
    body = {"v": 1, "id": "o-1", "role": "therapist", "cmd": "offer_step", "args": {"step": step}}
    try:
        raw = json.dumps(body, allow_nan=True)
    except ValueError:
        return  # an integer past Python's conversion limit cannot even be sent
    try:
        cmd = parse_command(raw, t=1.0, client_id=C1)
    except CommandError as exc:
        msg = str(exc)
        if "args.step" in msg:
            assert f"0..{MAX_STEP_INDEX}" in msg
        else:  # an integer past the JSON parser's own limit
            assert "not usable JSON" in msg
        assert not _DIGITS.search(msg), msg
        assert len(msg) < 200
        return
    assert isinstance(cmd, OfferStep)
    assert isinstance(cmd.step, int)
    assert not isinstance(cmd.step, bool)
    assert 0 <= cmd.step <= MAX_STEP_INDEX
    assert isinstance(step, int | float)
    assert not isinstance(step, bool)
    assert math.isfinite(step)
    assert step == cmd.step


def test_the_published_schema_states_the_same_step_bound() -> None:
    schema = payloads.schema("command")
    rules = [
        r["then"]["properties"]["args"]["properties"]["step"]
        for r in schema["allOf"]
        if r["if"]["properties"].get("cmd", {}).get("const") == "offer_step"
    ]
    assert rules == [{"type": "integer", "minimum": 0, "maximum": MAX_STEP_INDEX}]


# ---- the rate limit -----------------------------------------------------------------------------


def test_three_thousand_pauses_do_not_flood_the_event_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The drill: 3,000 pauses from one client link put 957 pause_acknowledged events in the log."""
    link, sink, dedupe = FakeLink(), CoreSink(_core()), CommandDeduper()
    limiter = CommandRateLimiter(clock=FakeClock())
    with caplog.at_level(logging.INFO):
        replies = [
            _send(link, sink, dedupe, limiter, _msg(f"p-{i}"), t=10.0 + i * 0.001)
            for i in range(3000)
        ]
    assert all(r["ok"] for r in replies), "a pause is never refused"
    acks = [e for e in sink.events if e.kind == "pause_acknowledged"]
    assert len(acks) <= 1, f"{len(acks)} pause_acknowledged events"
    assert len(sink.events) <= 1
    assert len(caplog.records) < 20, "a pause flood must not flood the log either"


def test_other_commands_over_the_rate_are_refused_and_logged_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limiter = CommandRateLimiter(RateLimit(burst=5, per_s=1.0), clock=clock)
    link, sink, dedupe = FakeLink(), CoreSink(_core()), CommandDeduper()
    with caplog.at_level(logging.WARNING, logger="biofeedback.service.commands"):
        replies = [
            _send(link, sink, dedupe, limiter, _msg(f"s-{i}", "suds", value=20)) for i in range(50)
        ]
    refused = [r for r in replies if "too many commands" in (r["error"] or "")]
    assert len(refused) == 45
    assert "client" in refused[0]["error"]
    assert "at most 5 at once, then 1 per second" in refused[0]["error"]
    assert len(sink.applied) == 5
    rate_lines = [r for r in caplog.records if "faster than" in r.getMessage()]
    assert len(rate_lines) == 1, "logged once per burst, not once per command"
    # the other role has its own budget
    r = _send(link, sink, dedupe, limiter, _msg("t-1", "adjust_thresholds", "therapist", upper=80))
    assert "too many" not in (r["error"] or "")
    # after a pause in the flood the client may send again; the burst's count is logged once
    caplog.clear()
    clock.t += 2.0
    with caplog.at_level(logging.WARNING, logger="biofeedback.service.commands"):
        r = _send(link, sink, dedupe, limiter, _msg("s-again", "suds", value=20))
    assert "too many" not in (r["error"] or "")
    assert [x.getMessage() for x in caplog.records] == [
        "rate limit: 45 client commands were refused"
    ]
    # a refused command was not claimed: the same id can be sent again once the rate allows
    clock.t += 2.0
    r = _send(link, sink, dedupe, limiter, _msg("s-7", "suds", value=20))
    assert "too many" not in (r["error"] or "")


def test_a_real_first_pause_always_gets_through_an_exhausted_limit() -> None:
    """Safety: whatever the client sent before, a pause while not paused pauses."""
    clock = FakeClock()
    limiter = CommandRateLimiter(RateLimit(burst=3, per_s=0.01), clock=clock)
    session = exposing()
    applied: list[Command] = []

    def submit(cmd: Command, reply: Any) -> None:
        applied.append(cmd)
        try:
            session.handle(cmd)
        except CommandError as exc:
            reply(payloads.command_error(C1, cmd.t, cmd.command_id, str(exc)))
            return
        reply(payloads.reply(C1, cmd.t, cmd.command_id, True, None))

    link, dedupe = FakeLink(), CommandDeduper()
    for i in range(40):  # the client's whole budget and more, on other commands
        msg = _msg(f"d-{i}", "decline")
        handle_command_message(cast(Any, link), C1, msg, 3.0, submit, dedupe, limiter)
    assert session.state is SessionState.EXPOSING
    handle_command_message(cast(Any, link), C1, _msg("stop"), 3.0, submit, dedupe, limiter)
    assert link.replies[-1]["ok"] is True
    assert isinstance(applied[-1], Pause)
    assert session.state is SessionState.PAUSED


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([Role.CLIENT, Role.THERAPIST]),
            st.booleans(),
            st.floats(min_value=0.0, max_value=2.0),
        ),
        max_size=200,
    ),
    st.integers(min_value=1, max_value=40),
    st.floats(min_value=0.01, max_value=20.0),
)
def test_the_limiter_never_refuses_a_pause(
    sends: list[tuple[Role, bool, float]], burst: int, per_s: float
) -> None:
    clock = FakeClock()
    limiter = CommandRateLimiter(RateLimit(burst=burst, per_s=per_s), clock=clock)
    admitted = 0
    for role, is_pause, dt in sends:
        clock.t += dt
        ok = limiter.admit(role, is_pause=is_pause)
        if is_pause:
            assert ok
        admitted += ok
    # and the others stay within the bucket: burst + rate x elapsed time, per role
    assert admitted <= len(sends)


def test_a_protocol_cannot_have_steps_no_command_could_name() -> None:
    from biofeedback.errors import ConfigError
    from biofeedback.exposure import parse_protocol

    head = 'name = "Big"\n[thresholds]\nupper = 70\nlower = 40\ndwell_s = 5\nrecovery_s = 10\n'
    step = '[[steps]]\ntitle = "s"\ndescription = "d"\nplanned_s = 60\n'
    assert len(parse_protocol(head + step * (MAX_STEP_INDEX + 1)).steps) == MAX_STEP_INDEX + 1
    with pytest.raises(ConfigError, match="at most 1000"):
        parse_protocol(head + step * (MAX_STEP_INDEX + 2))
