"""Commands arriving on `biofeedback/v1/<client-id>/cmd`: JSON in, exposure command dataclass out.

Wire format (docs/mqtt.md, "Commands"; schema `schemas/command.json`):

    {"v": 1, "id": "<unique>", "role": "client" | "therapist", "cmd": "<name>", "args": {...}}

`parse_command` checks everything and raises `CommandError` naming what is wrong: bytes that are
not UTF-8 JSON, a missing or unknown field, an unknown command, a bad argument, or a role that
may not send that command (the role table is `biofeedback.exposure.rules.ROLE_RULES`). The time a
command carries is the session time at which the service processes it, never the sender's.
Whether a command fits the session's current state is the session's business, not this module's.

Redelivered QoS 1 messages carry the same id: `CommandDeduper` makes sure each id is applied
once and its reply repeated, and refuses an id reused by a different command. `CommandRateLimiter`
bounds how fast each role's commands are taken (a pause is never refused).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from biofeedback.errors import CommandError
from biofeedback.exposure.messages import (
    ASSESSMENT_ROLE_RULES,
    AdjustThresholds,
    AssessmentConsent,
    AssessmentDecline,
    AssessmentOffer,
    AssessmentStop,
    ChooseBreathingRate,
    ChooseGrounding,
    Command,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    ReadyToContinue,
    Recalibrate,
    Role,
    SudsAnswer,
)
from biofeedback.exposure.protocol import MAX_STEPS
from biofeedback.exposure.rules import ROLE_RULES, may_send
from biofeedback.service import payloads
from biofeedback.service.topics import (
    SCHEMA_VERSION,
    Topic,
    command_topic_role,
    topic,
    valid_client_id,
)

if TYPE_CHECKING:
    from biofeedback.service.mqtt import IncomingMessage, MqttLink

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 8192
MAX_ID_CHARS = 128
MAX_NOTE_CHARS = 500
#: Highest step index a command may name (protocols have at most MAX_STEPS steps).
MAX_STEP_INDEX = MAX_STEPS - 1

#: Wire name -> command dataclass.
COMMANDS: Mapping[str, type] = {
    "pause": Pause,
    "consent": Consent,
    "decline": Decline,
    "offer_step": OfferStep,
    "complete_step": CompleteStep,
    "end": EndSession,
    "adjust_thresholds": AdjustThresholds,
    "suds": SudsAnswer,
    "choose_grounding": ChooseGrounding,
    "recalibrate": Recalibrate,
    "ready": ReadyToContinue,
}
#: Arguments each command accepts (all optional unless listed in _REQUIRED).
_ARGS: Mapping[str, frozenset[str]] = {
    "pause": frozenset({"note"}),
    "consent": frozenset(),
    "decline": frozenset(),
    "offer_step": frozenset({"step"}),
    "complete_step": frozenset(),
    "end": frozenset(),
    "adjust_thresholds": frozenset({"upper", "lower", "dwell_s", "recovery_s"}),
    "suds": frozenset({"value"}),
    "choose_grounding": frozenset({"technique"}),
    "recalibrate": frozenset({"reason"}),
    "ready": frozenset(),
}
_REQUIRED: Mapping[str, frozenset[str]] = {
    "suds": frozenset({"value"}),
    "choose_grounding": frozenset({"technique"}),
}
#: The resonance assessment's commands (docs/resonance.md): handed by the session core to the
#: assessment it hosts, never to the exposure session; role rules in ASSESSMENT_ROLE_RULES.
ASSESSMENT_COMMANDS: Mapping[str, type] = {
    "assessment_offer": AssessmentOffer,
    "assessment_consent": AssessmentConsent,
    "assessment_decline": AssessmentDecline,
    "assessment_stop": AssessmentStop,
    "choose_rate": ChooseBreathingRate,
}
_ASSESSMENT_ARGS: Mapping[str, frozenset[str]] = {
    "assessment_offer": frozenset(),
    "assessment_consent": frozenset(),
    "assessment_decline": frozenset(),
    "assessment_stop": frozenset(),
    "choose_rate": frozenset({"rate_bpm"}),
}
#: The client's own breathing rate may be 3..10 breaths/min (as an assessment protocol's rates).
CHOSEN_RATE_BPM = (3.0, 10.0)
_ALL_COMMANDS: Mapping[str, type] = {**COMMANDS, **ASSESSMENT_COMMANDS}
_ALL_ARGS: Mapping[str, frozenset[str]] = {**_ARGS, **_ASSESSMENT_ARGS}
_TOP = frozenset({"v", "id", "role", "cmd", "args", "t"})
_WIRE_ROLES = (Role.CLIENT.value, Role.THERAPIST.value)


def allowed_commands(role: Role | str) -> tuple[str, ...]:
    """Wire names of the exposure commands `role` may send."""
    return tuple(name for name, cls in COMMANDS.items() if may_send(role, cls))


def _may(role: Role, cls: type) -> bool:
    return may_send(role, cls) or role in ASSESSMENT_ROLE_RULES.get(cls, frozenset())


def _load(raw: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    if isinstance(raw, str):
        text = raw
        size = len(raw.encode("utf-8", "surrogatepass"))
    else:
        data = bytes(raw)
        size = len(data)
        if size > MAX_COMMAND_BYTES:
            raise CommandError(f"command of {size} bytes is too large (limit {MAX_COMMAND_BYTES})")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"command is not UTF-8 text (byte {exc.start})") from exc
    if size > MAX_COMMAND_BYTES:
        raise CommandError(f"command of {size} bytes is too large (limit {MAX_COMMAND_BYTES})")
    if not text.strip():
        raise CommandError("command is empty")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"command is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"command is not usable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CommandError(f"command must be a JSON object, got {type(value).__name__}")
    return value


def command_id_of(raw: bytes | bytearray | memoryview | str) -> str | None:
    """The "id" of a command when one can be read (for the error reply), else None."""
    try:
        value = _load(raw)
    except CommandError:
        return None
    cid = value.get("id")
    return cid if isinstance(cid, str) and 0 < len(cid) <= MAX_ID_CHARS else None


def _number(args: Mapping[str, Any], key: str, cmd: str) -> float | None:
    if key not in args:
        return None
    v = args[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise CommandError(f"{cmd}: args.{key} must be a number, got {json.dumps(v)[:40]}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise CommandError(f"{cmd}: args.{key} must be a finite number")
    return f


def _show(v: Any) -> str:
    """A value for an error message, short whatever was sent (a 301-digit number is not)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int):
        digits = len(str(abs(v)))
        return str(v) if digits <= 15 else f"a {'negative ' if v < 0 else ''}{digits}-digit number"
    if isinstance(v, float):
        return json.dumps(v, allow_nan=True)  # 1e+300, NaN, Infinity: short already
    if isinstance(v, str):
        text = json.dumps(v)
        return "text " + (text if len(text) <= 24 else text[:20] + '..."')
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _integer(args: Mapping[str, Any], key: str, cmd: str, lo: int, hi: int) -> int | None:
    """args[key] as an integer within lo..hi (an integral float such as 3.0 counts).

    Anything else (text, true, 1.5, NaN, 1e300, a huge integer) is refused naming the field and
    the allowed range; the range is checked before any conversion, so no huge value is built.
    """
    if key not in args:
        return None
    v = args[key]
    span = f"an integer {lo}..{hi}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise CommandError(f"{cmd}: args.{key} must be {span}, got {_show(v)}")
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise CommandError(f"{cmd}: args.{key} must be {span}, got {_show(v)}")
    if not lo <= v <= hi:
        raise CommandError(f"{cmd}: args.{key} must be {span}, got {_show(v)}")
    return int(v)


def _build(cmd: str, args: Mapping[str, Any], t: float, role: Role, cid: str) -> Command:
    if cmd == "pause":
        note = args.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise CommandError(f"pause: args.note must be text of at most {MAX_NOTE_CHARS} chars")
        return Pause(t=t, role=role, note=note, command_id=cid)
    if cmd == "consent":
        return Consent(t=t, role=role, command_id=cid)
    if cmd == "decline":
        return Decline(t=t, role=role, command_id=cid)
    if cmd == "offer_step":
        step = _integer(args, "step", cmd, 0, MAX_STEP_INDEX)
        return OfferStep(t=t, role=role, step=step, command_id=cid)
    if cmd == "complete_step":
        return CompleteStep(t=t, role=role, command_id=cid)
    if cmd == "end":
        return EndSession(t=t, role=role, command_id=cid)
    if cmd == "adjust_thresholds":
        upper = _number(args, "upper", cmd)
        lower = _number(args, "lower", cmd)
        dwell = _number(args, "dwell_s", cmd)
        recovery = _number(args, "recovery_s", cmd)
        if upper is None and lower is None and dwell is None and recovery is None:
            raise CommandError(
                "adjust_thresholds: give at least one of upper, lower, dwell_s, recovery_s"
            )
        for name, v in (("upper", upper), ("lower", lower)):
            if v is not None and not 0.0 <= v <= 100.0:
                raise CommandError(f"adjust_thresholds: args.{name} must be 0..100, got {v:g}")
        for name, v in (("dwell_s", dwell), ("recovery_s", recovery)):
            if v is not None and v < 0.0:
                raise CommandError(f"adjust_thresholds: args.{name} must be >= 0, got {v:g}")
        if upper is not None and lower is not None and not lower < upper:
            raise CommandError(
                f"adjust_thresholds: lower ({lower:g}) must be below upper ({upper:g})"
            )
        return AdjustThresholds(
            t=t,
            role=role,
            upper=upper,
            lower=lower,
            dwell_s=dwell,
            recovery_s=recovery,
            command_id=cid,
        )
    if cmd == "suds":
        value = _integer(args, "value", cmd, 0, 100)
        assert value is not None  # required, checked by the caller
        return SudsAnswer(t=t, role=role, value=value, command_id=cid)
    if cmd == "choose_grounding":
        tech = args["technique"]
        try:
            technique = GroundingTechnique(tech)
        except ValueError as exc:
            options = ", ".join(g.value for g in GroundingTechnique)
            raise CommandError(
                f"choose_grounding: args.technique must be one of {options}, got "
                f"{json.dumps(tech)[:40]}"
            ) from exc
        return ChooseGrounding(t=t, role=role, technique=technique, command_id=cid)
    if cmd == "recalibrate":
        reason = args.get("reason", "")
        if not isinstance(reason, str) or len(reason) > MAX_NOTE_CHARS:
            raise CommandError(
                f"recalibrate: args.reason must be text of at most {MAX_NOTE_CHARS} chars"
            )
        return Recalibrate(t=t, role=role, reason=reason, command_id=cid)
    if cmd == "ready":
        return ReadyToContinue(t=t, role=role, command_id=cid)
    if cmd == "assessment_offer":
        return AssessmentOffer(t=t, role=role, command_id=cid)
    if cmd == "assessment_consent":
        return AssessmentConsent(t=t, role=role, command_id=cid)
    if cmd == "assessment_decline":
        return AssessmentDecline(t=t, role=role, command_id=cid)
    if cmd == "assessment_stop":
        return AssessmentStop(t=t, role=role, command_id=cid)
    if cmd == "choose_rate":
        rate = args.get("rate_bpm")
        if rate is not None:
            rate = _number(args, "rate_bpm", cmd)
            lo, hi = CHOSEN_RATE_BPM
            assert rate is not None
            if not lo <= rate <= hi:
                raise CommandError(
                    f"choose_rate: args.rate_bpm must be {lo:g}..{hi:g} breaths/min or null "
                    f"(the measured rate), got {rate:g}"
                )
        return ChooseBreathingRate(t=t, role=role, rate_bpm=rate, command_id=cid)
    raise CommandError(f"unknown command {cmd!r}")  # unreachable: checked against COMMANDS


def parse_command(
    raw: bytes | bytearray | memoryview | str,
    *,
    t: float,
    client_id: str,
    required_role: Role | str | None = None,
) -> Command:
    """Decode one command for `client_id`, stamped with session time `t`.

    Returns the exposure command dataclass (its `command_id` is the wire "id"); raises
    CommandError naming what is wrong. Never raises anything else for any input.
    `required_role` is the role a role-bound topic (`cmd/client`) admits; any other is refused.
    """
    value = _load(raw)
    unknown = sorted(set(value) - _TOP)
    if unknown:
        raise CommandError(f"command has unknown field(s): {', '.join(unknown)}")
    v = value.get("v")
    if isinstance(v, bool) or v != SCHEMA_VERSION:
        raise CommandError(f"command field 'v' must be {SCHEMA_VERSION}, got {json.dumps(v)[:20]}")
    cid = value.get("id")
    if not isinstance(cid, str) or not cid:
        raise CommandError("command field 'id' must be a non-empty string")
    if len(cid) > MAX_ID_CHARS or not cid.isprintable() or not cid.isascii() or " " in cid:
        raise CommandError(
            f"command 'id' must be 1-{MAX_ID_CHARS} printable ASCII chars, no spaces"
        )
    role_name = value.get("role")
    if role_name not in _WIRE_ROLES:
        raise CommandError(
            "command field 'role' must be 'client' or 'therapist', "
            f"got {json.dumps(role_name)[:40]}"
        )
    role = Role(role_name)
    if required_role is not None and role is not Role(required_role):
        raise CommandError(
            f"role {role.value!r} not allowed on this topic: commands on cmd/{Role(required_role)} "
            f"must have role {Role(required_role).value!r}"
        )
    name = value.get("cmd")
    if not isinstance(name, str) or name not in _ALL_COMMANDS:
        raise CommandError(
            f"unknown command {json.dumps(name)[:40]}; commands are {', '.join(_ALL_COMMANDS)}"
        )
    if not _may(role, _ALL_COMMANDS[name]):
        mine = [n for n, c in _ALL_COMMANDS.items() if _may(role, c)]
        raise CommandError(
            f"role {role.value!r} may not send {name!r} (a {role.value} may send: "
            f"{', '.join(mine)})"
        )
    args = value.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CommandError(f"{name}: field 'args' must be a JSON object")
    extra = sorted(set(args) - _ALL_ARGS[name])
    if extra:
        allowed = ", ".join(sorted(_ALL_ARGS[name])) or "none"
        raise CommandError(f"{name}: unknown argument(s) {', '.join(extra)} (allowed: {allowed})")
    missing = sorted(_REQUIRED.get(name, frozenset()) - set(args))
    if missing:
        raise CommandError(f"{name}: missing argument(s) {', '.join(missing)}")
    if "t" in value and (isinstance(value["t"], bool) or not isinstance(value["t"], int | float)):
        raise CommandError("command field 't' must be a number when given")
    log.debug("command %s %s from %s for %s", cid, name, role.value, client_id)
    return _build(name, args, float(t), role, cid)


# ---- replies and de-duplication -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The answer to one command (`reply` payload, schema `schemas/reply.json`)."""

    id: str | None
    ok: bool
    error: str | None
    t: float

    def payload(self, client_id: str) -> dict[str, Any]:
        """The JSON object published on the reply topic."""
        return payloads.reply(client_id, self.t, self.id, self.ok, self.error)


def command_fingerprint(cmd: Command) -> str:
    """What a command says, without its id and time: (role, command, arguments).

    Two deliveries with the same id are the same command only when their fingerprints match; an
    id reused by another sender or for another command has a different fingerprint.
    """
    parts = [type(cmd).__name__]
    for f in fields(cmd):
        if f.name in ("t", "command_id"):
            continue
        v = getattr(cmd, f.name)
        parts.append(f"{f.name}={v.value if isinstance(v, enum.Enum) else v!r}")
    return "|".join(parts)


@dataclass(slots=True)
class _Seen:
    fingerprint: str
    reply: dict[str, Any] | None


class CommandDeduper:
    """Applies each command id once: remembers the reply of the last `capacity` ids.

    An id is remembered with the fingerprint of its command (`command_fingerprint`). `claim(id,
    fingerprint)` is True the first time an id is seen; a second delivery of the same command
    (same id, same fingerprint) that is still being applied or already answered is not applied
    again: `seen(id)` returns the stored reply payload, if any, to repeat. The same id with a
    different fingerprint (another sender, another command) is a `conflict`: it is neither
    applied nor answered with the earlier command's reply.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._seen: collections.OrderedDict[str, _Seen] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._seen

    def state(
        self, command_id: str, fingerprint: str = ""
    ) -> Literal["new", "pending", "done", "conflict"]:
        """Whether this id is new, claimed but unanswered, answered, or taken by another command."""
        entry = self._seen.get(command_id)
        if entry is None:
            return "new"
        if entry.fingerprint != fingerprint:
            return "conflict"
        return "pending" if entry.reply is None else "done"

    def claim(self, command_id: str, fingerprint: str = "") -> bool:
        """True (and the id is now taken) when this id was never seen; False for a repeat."""
        if command_id in self._seen:
            self._seen.move_to_end(command_id)
            return False
        self._seen[command_id] = _Seen(fingerprint, None)
        self._trim()
        return True

    def seen(self, command_id: str) -> dict[str, Any] | None:
        """The reply stored for this id, or None (never seen, or not answered yet)."""
        entry = self._seen.get(command_id)
        return entry.reply if entry is not None else None

    def remember(self, command_id: str, reply: dict[str, Any], fingerprint: str = "") -> None:
        """Store the reply for this id (claiming it if needed)."""
        entry = self._seen.get(command_id)
        if entry is None:
            entry = self._seen[command_id] = _Seen(fingerprint, None)
        entry.reply = dict(reply)
        self._seen.move_to_end(command_id)
        self._trim()

    def _trim(self) -> None:
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


# ---- rate limit -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many commands one role may send: a burst of `burst`, then `per_s` a second."""

    burst: int = 30
    per_s: float = 3.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float
    refused: int = 0  # commands refused in the current burst (logged when it ends)


class CommandRateLimiter:
    """A token bucket per role for one client's commands (docs/mqtt.md, "Rate limit").

    `admit(role, is_pause)` takes one token and says whether the command may go on. A pause is
    never refused: it is the safe direction, and whether it changes anything depends on the
    session's state when it is applied, which only the session knows (a pause while already
    paused changes nothing and adds no event). It uses a token when one is left, so a flood of
    pauses leaves no room for other commands from that role. Refusals are logged once per burst: a
    warning at the first, a count when the role's commands are admitted again.
    """

    def __init__(
        self,
        limit: RateLimit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit or RateLimit()
        self._clock = clock
        self._buckets: dict[Role, _Bucket] = {}

    def admit(self, role: Role, *, is_pause: bool = False) -> bool:
        """Take a token for one command from `role`; False when it must be refused."""
        now = self._clock()
        lim = self.limit
        b = self._buckets.get(role)
        if b is None:
            b = self._buckets[role] = _Bucket(float(lim.burst), now)
        b.tokens = min(float(lim.burst), b.tokens + max(0.0, now - b.last) * lim.per_s)
        b.last = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            self._burst_over(role, b)
            return True
        if is_pause:
            return True
        if b.refused == 0:
            log.warning(
                "%s commands arrive faster than %s (burst %d): refusing them until they slow down",
                role.value,
                self.describe(),
                lim.burst,
            )
        b.refused += 1
        return False

    def describe(self) -> str:
        """The sustained rate in words, for messages."""
        return f"{self.limit.per_s:g} per second"

    def refusal(self, role: Role) -> str:
        """The error sent back for a refused command."""
        return (
            f"too many commands from the {role.value}: at most {self.limit.burst} at once, then "
            f"{self.describe()}; not applied, send it again in a moment (pause is never refused)"
        )

    @staticmethod
    def _burst_over(role: Role, b: _Bucket) -> None:
        if b.refused:
            log.warning("rate limit: %d %s commands were refused", b.refused, role.value)
            b.refused = 0


# ---- a ready-made command pump --------------------------------------------------------------


async def serve_commands(
    link: MqttLink,
    client_id: str,
    *,
    now: Callable[[], float],
    submit: Callable[[Command, Callable[[dict[str, Any]], None]], None],
    deduper: CommandDeduper | None = None,
    limiter: CommandRateLimiter | None = None,
) -> None:
    """Subscribe to the client's `cmd` topics and hand each valid new command to `submit`.

    Listens on plain `cmd` and on the role-bound `cmd/client` and `cmd/therapist`.

    `submit(command, reply)` must eventually call `reply(payload)` with the reply payload (e.g.
    `payloads.command_reply(...)`). Junk gets an error reply and a log line; a redelivered id
    gets its earlier reply again (or nothing while the first delivery is still being applied);
    an id reused by another command is refused; a role over its rate limit is refused (except
    for pauses). Runs until the link closes or the task is cancelled.
    """
    if not valid_client_id(client_id):
        raise CommandError(f"client id {client_id!r} is not a valid pseudonym")
    dedupe = deduper or CommandDeduper()
    limits = limiter or CommandRateLimiter()
    await link.subscribe(topic(client_id, Topic.CMD), qos=1)
    await link.subscribe(topic(client_id, Topic.CMD) + "/+", qos=1)
    async for msg in link.messages():
        if not command_topic_role(client_id, msg.topic)[0]:
            continue
        handle_command_message(link, client_id, msg, now(), submit, dedupe, limits)
        await asyncio.sleep(0)


def handle_command_message(
    link: MqttLink,
    client_id: str,
    msg: IncomingMessage,
    t: float,
    submit: Callable[[Command, Callable[[dict[str, Any]], None]], None],
    dedupe: CommandDeduper,
    limiter: CommandRateLimiter | None = None,
) -> Command | None:
    """One `cmd` message: parse, dedupe, rate-limit, submit; returns the command if submitted."""

    def reply(payload: dict[str, Any]) -> None:
        link.reply(msg, client_id, payload)

    is_cmd, bound_role = command_topic_role(client_id, msg.topic)
    try:
        if not is_cmd:
            raise CommandError(f"{msg.topic} is not a command topic of client {client_id}")
        cmd = parse_command(msg.payload, t=t, client_id=client_id, required_role=bound_role)
    except CommandError as exc:
        cid = command_id_of(msg.payload)
        log.warning("refused command %s for %s: %s", cid or "(no id)", client_id, exc)
        reply(payloads.command_error(client_id, t, cid, str(exc)))
        return None
    cid = cmd.command_id
    fingerprint = command_fingerprint(cmd)
    state = dedupe.state(cid, fingerprint)
    if state == "conflict":
        log.warning(
            "refused command %s for %s: its id was already used by another command", cid, client_id
        )
        reply(
            payloads.command_error(
                client_id,
                t,
                cid,
                f"command id {cid!r} was already used by an earlier command (another sender or "
                "another command); not applied: send it again with a new, unique id",
            )
        )
        return None
    if state != "new":
        previous = dedupe.seen(cid)
        log.info("command %s delivered again: not applied twice", cid)
        if previous is not None:
            reply(previous)
        return None
    if limiter is not None and not limiter.admit(cmd.role, is_pause=isinstance(cmd, Pause)):
        # Not claimed: the same command may be sent again with the same id once the rate allows.
        reply(payloads.command_error(client_id, t, cid, limiter.refusal(cmd.role)))
        return None
    dedupe.claim(cid, fingerprint)

    def answer(payload: dict[str, Any]) -> None:
        dedupe.remember(cid, payload, fingerprint)
        reply(payload)

    submit(cmd, answer)
    return cmd


__all__ = [
    "ASSESSMENT_COMMANDS",
    "COMMANDS",
    "ROLE_RULES",
    "CommandDeduper",
    "CommandRateLimiter",
    "CommandReply",
    "RateLimit",
    "allowed_commands",
    "command_fingerprint",
    "command_id_of",
    "handle_command_message",
    "parse_command",
    "serve_commands",
]
