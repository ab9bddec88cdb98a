"""The resonance-frequency assessment: its own protocol kind, its own small consent-driven session.

The therapist offers it, it begins only on the client's consent, it paces the client through
blocks at the protocol's rates with rests between them, scores each block as it ends
(by the `Scorer` it is given, `biofeedback.signal.resonance.ResonanceScorer`), and the client can
stop it at any moment: a stopped assessment
keeps every block measured so far (and the block in progress, when it already spans a minute).
docs/resonance.md describes the states, the events and what the result holds.

Pure: no clock, no I/O, no asyncio; every input carries its own time `t` (session seconds).
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from biofeedback.errors import CommandError, ConfigError
from biofeedback.exposure.messages import (
    BreathingPattern,
    Consent,
    Decline,
    GroundingTechnique,
    Guidance,
    Pause,
    Role,
    Tick,
)

if TYPE_CHECKING:  # types only: exposure imports nothing but the standard library at run time
    from biofeedback.signal.resonance import Assessment, BlockScore, Weights

KIND = "resonance_assessment"
#: Lehrer et al. (2013): five 2-minute blocks from 6.5 down to 4.5 breaths/min
#: (the same as biofeedback.signal.resonance.DEFAULT_RATES_BPM, checked by a test).
DEFAULT_RATES_BPM: tuple[float, ...] = (6.5, 6.0, 5.5, 5.0, 4.5)
MIN_WINDOW_S = 60.0  # the shortest spectral window (biofeedback.signal.frequency)


class Scorer(Protocol):
    """How a block is scored and the blocks combined. The session is given one
    (`biofeedback.signal.resonance.ResonanceScorer`), so this module needs no numpy and no
    signal code at run time (docs/architecture.md, "Seams")."""

    def score(
        self,
        beats: Sequence[tuple[float, float, bool]],
        breathing: Sequence[tuple[float, float]] | None,
        *,
        block_start_t: float,
        rate_bpm: float,
        inhale_share: float,
        end_t: float,
        settle_s: float,
    ) -> BlockScore:
        """Score the block paced from `block_start_t` up to `end_t` from its clean beats
        (t s, RR ms, corrected), oldest first, and the chest trace when there is one."""
        ...

    def choose(
        self,
        blocks: Sequence[BlockScore],
        planned_rates_bpm: Sequence[float],
        weights: Weights | None,
    ) -> Assessment:
        """Combine the blocks measured so far into an assessment."""
        ...


class AssessmentState(enum.StrEnum):
    READY = "ready"  # nothing running: the therapist may offer it (also after done or stopped)
    OFFERED = "offered"  # waiting for the client's consent
    RUNNING = "running"  # pacing blocks and rests
    STOPPED = "stopped"  # stopped early (client or therapist): a partial result
    DONE = "done"  # every block ran: a full result


@dataclass(frozen=True, slots=True)
class AssessmentProtocol:
    """The assessment's agenda (TOML `kind = "resonance_assessment"`, docs/resonance.md)."""

    name: str = "Resonance-frequency assessment"
    rates_bpm: tuple[float, ...] = DEFAULT_RATES_BPM
    block_s: float = 120.0
    rest_s: float = 60.0
    settle_s: float = 10.0  # the start of each block left out of the score (following the pacer)
    inhale_share: float = 0.4  # 4 s in, 6 s out at 6/min: the project's default pattern
    weights: Weights | None = None  # None: the documented default (docs/resonance.md)
    source: str = "<assessment>"

    def __post_init__(self) -> None:
        for name, problem in protocol_problems(self):
            raise ConfigError(f"{self.source}, field {name}: {problem}")

    def pattern(self, rate_bpm: float) -> BreathingPattern:
        """The pacer's breathing pattern at `rate_bpm` with this protocol's inhale share."""
        return pattern_at(rate_bpm, self.inhale_share)


def pattern_at(rate_bpm: float, inhale_share: float = 0.4) -> BreathingPattern:
    """A breathing pattern (no holds) at `rate_bpm`, inhaling for `inhale_share` of each breath."""
    period = 60.0 / rate_bpm
    return BreathingPattern(
        inhale_s=period * inhale_share, hold_in_s=0.0, exhale_s=period * (1 - inhale_share)
    )


def protocol_problems(p: AssessmentProtocol) -> list[tuple[str, str]]:
    """(field, problem) pairs; empty when the protocol is consistent."""
    out: list[tuple[str, str]] = []
    if not p.rates_bpm:
        out.append(("rates_bpm", "must list at least one rate"))
    for r in p.rates_bpm:
        if not (isinstance(r, int | float) and math.isfinite(r) and 3.0 <= r <= 10.0):
            out.append(("rates_bpm", f"each rate must be 3..10 breaths/min, got {r!r}"))
    if len(set(p.rates_bpm)) != len(p.rates_bpm):
        out.append(("rates_bpm", "a rate is listed twice"))
    if not (math.isfinite(p.block_s) and 60.0 <= p.block_s <= 600.0):
        out.append(("block_s", f"must be 60..600 seconds, got {p.block_s!r}"))
    if not (math.isfinite(p.rest_s) and 0.0 <= p.rest_s <= 600.0):
        out.append(("rest_s", f"must be 0..600 seconds, got {p.rest_s!r}"))
    if not (math.isfinite(p.settle_s) and 0.0 <= p.settle_s <= 60.0):
        out.append(("settle_s", f"must be 0..60 seconds, got {p.settle_s!r}"))
    elif math.isfinite(p.block_s) and p.block_s - p.settle_s < MIN_WINDOW_S + 15.0:
        out.append(("settle_s", "leaves under 75 s of each block to score"))
    if not (math.isfinite(p.inhale_share) and 0.2 <= p.inhale_share <= 0.8):
        out.append(("inhale_share", f"must be 0.2..0.8, got {p.inhale_share!r}"))
    return out


def parse_assessment_protocol(text: str, source: str = "<assessment>") -> AssessmentProtocol:
    """Validate assessment TOML; `ConfigError` names the source and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    allowed = {"kind", "name", "rates_bpm", "block_s", "rest_s", "settle_s", "inhale_share"}
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{source}, field {key}: unknown field (expected one of: "
                f"{', '.join(sorted(allowed))})"
            )
    if data.get("kind") != KIND:
        raise ConfigError(f"{source}, field kind: must be {KIND!r}, got {data.get('kind')!r}")
    kwargs: dict[str, Any] = {"source": source}
    name = data.get("name", "Resonance-frequency assessment")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}, field name: must be a non-empty string")
    kwargs["name"] = name.strip()
    if "rates_bpm" in data:
        rates = data["rates_bpm"]
        if not isinstance(rates, list) or not all(
            isinstance(r, int | float) and not isinstance(r, bool) for r in rates
        ):
            raise ConfigError(f"{source}, field rates_bpm: must be a list of numbers")
        kwargs["rates_bpm"] = tuple(float(r) for r in rates)
    for key in ("block_s", "rest_s", "settle_s", "inhale_share"):
        if key in data:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"{source}, field {key}: must be a number, got {v!r}")
            kwargs[key] = float(v)
    return AssessmentProtocol(**kwargs)


# ---- inputs that only the assessment takes ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferAssessment:
    """The therapist offers the assessment (the client still has to consent)."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class StopAssessment:
    """Stop now (client or therapist); what was measured is kept. A client `Pause` does the same."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class Beats:
    """Clean beats (R-peak time s, RR ms, corrected) from the signal pipeline. A beat whose time
    was given before replaces the earlier value (the artifact detector's later revision)."""

    t: float
    beats: tuple[tuple[float, float, bool], ...]


@dataclass(frozen=True, slots=True)
class Breathing:
    """Chest-expansion samples (time s, value; larger = more air) when the strap gives them."""

    t: float
    samples: tuple[tuple[float, float], ...]


AssessmentInput = (
    OfferAssessment | StopAssessment | Consent | Decline | Pause | Tick | Beats | Breathing
)

MAY_SEND: dict[type, frozenset[Role]] = {
    OfferAssessment: frozenset({Role.THERAPIST}),
    Consent: frozenset({Role.CLIENT}),
    Decline: frozenset({Role.CLIENT}),
    StopAssessment: frozenset({Role.CLIENT, Role.THERAPIST}),
    Pause: frozenset({Role.CLIENT, Role.THERAPIST}),
}

CONSENT_TEXT = (
    "Breathing-rate check: about {minutes:.0f} minutes of breathing with the circle at a few slow "
    "rates, with rests between them. You can stop at any moment. Shall we start?"
)


@dataclass(frozen=True, slots=True)
class AssessmentEvent:
    """One thing that happened: who, why, when, and the values (block scores, the result)."""

    seq: int
    t: float
    kind: str  # "transition", "block_started", "block_scored", "rest_started", "stop_acknowledged"
    actor: Role
    from_state: AssessmentState
    to_state: AssessmentState
    reason: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssessmentSnapshot:
    """What the screens show (JSON-friendly)."""

    t: float
    client_id: str
    state: AssessmentState
    state_since_t: float
    started_t: float | None
    block_index: int | None  # the block running or the rest after it
    phase: str | None  # "block" or "rest" while running
    phase_ends_t: float | None
    rate_bpm: float | None  # the pacer's rate in the block running
    guidance: Guidance | None  # the pacer while a block runs
    consent_needed: str | None
    rates_bpm: tuple[float, ...]
    blocks: tuple[BlockScore, ...]  # scored so far
    result: Assessment | None  # when done or stopped


class AssessmentSession:
    """The assessment's state machine. `handle` one input at a time; `snapshot` any time."""

    def __init__(
        self, protocol: AssessmentProtocol, *, t: float, client_id: str, scorer: Scorer
    ) -> None:
        if not math.isfinite(t):
            raise ValueError(f"assessment start time must be finite, got {t!r}")
        self.protocol = protocol
        self.client_id = client_id
        self._scorer = scorer
        self._t = float(t)
        self._state = AssessmentState.READY
        self._since = self._t
        self._seq = 0
        self._started: float | None = None
        self._beats: dict[float, tuple[float, float, bool]] = {}
        self._breath: list[tuple[float, float]] = []
        self._blocks: list[BlockScore] = []
        self._announced = -1  # newest block (2i) or rest (2i+1) announced
        self._result: Assessment | None = None
        self._stop_acknowledged: set[Role] = set()

    # -- read ---------------------------------------------------------------------------------
    @property
    def state(self) -> AssessmentState:
        return self._state

    @property
    def t(self) -> float:
        return self._t

    @property
    def seq(self) -> int:
        """The newest event's seq (0 before any)."""
        return self._seq

    @property
    def result(self) -> Assessment | None:
        return self._result

    def total_s(self) -> float:
        """How long a full run takes."""
        n = len(self.protocol.rates_bpm)
        return n * self.protocol.block_s + (n - 1) * self.protocol.rest_s

    def _block_start(self, i: int) -> float:
        assert self._started is not None
        return self._started + i * (self.protocol.block_s + self.protocol.rest_s)

    def _where(self, t: float) -> tuple[int, str, float]:
        """(block index, "block" or "rest", phase end) at `t` while running."""
        assert self._started is not None
        p = self.protocol
        cycle = p.block_s + p.rest_s
        i = min(int((t - self._started) // cycle), len(p.rates_bpm) - 1)
        start = self._block_start(i)
        if t < start + p.block_s or i == len(p.rates_bpm) - 1:
            return i, "block", start + p.block_s
        return i, "rest", start + cycle

    def guidance(self) -> Guidance | None:
        """The pacer for the block running now (None in a rest or when not running)."""
        if self._state is not AssessmentState.RUNNING:
            return None
        i, phase, _ = self._where(self._t)
        if phase != "block":
            return None
        rate = self.protocol.rates_bpm[i]
        pattern = self.protocol.pattern(rate)
        return Guidance(
            self._block_start(i),
            GroundingTechnique.PACED_BREATHING,
            pattern,
            f"Breathe with the circle at {rate:g} breaths a minute. Stop whenever you like.",
        )

    def snapshot(self) -> AssessmentSnapshot:
        running = self._state is AssessmentState.RUNNING
        i, phase, end = self._where(self._t) if running else (None, None, None)
        return AssessmentSnapshot(
            t=self._t,
            client_id=self.client_id,
            state=self._state,
            state_since_t=self._since,
            started_t=self._started,
            block_index=i,
            phase=phase,
            phase_ends_t=end,
            rate_bpm=self.protocol.rates_bpm[i] if i is not None and phase == "block" else None,
            guidance=self.guidance(),
            consent_needed=(
                CONSENT_TEXT.format(minutes=self.total_s() / 60)
                if self._state is AssessmentState.OFFERED
                else None
            ),
            rates_bpm=self.protocol.rates_bpm,
            blocks=tuple(self._blocks),
            result=self._result,
        )

    # -- write --------------------------------------------------------------------------------
    def handle(self, inp: AssessmentInput) -> list[AssessmentEvent]:
        """Apply one input; returns its events. A refused command raises `CommandError` and
        changes nothing. The client's stop (`StopAssessment` or `Pause`) is never refused: a
        late or unreadable time stamp is taken as the session's newest time."""
        role = getattr(inp, "role", None)
        client_stop = isinstance(inp, StopAssessment | Pause) and role is Role.CLIENT
        t = inp.t
        if client_stop and not (isinstance(t, int | float) and math.isfinite(t) and t >= self._t):
            t = self._t
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
            raise CommandError(f"{type(inp).__name__}: time must be a finite number, got {t!r}")
        if t < self._t:
            raise CommandError(
                f"{type(inp).__name__}: time {t:g} is before the assessment's newest time "
                f"{self._t:g}"
            )
        allowed = MAY_SEND.get(type(inp))
        if allowed is not None and role not in allowed:
            raise CommandError(f"{type(inp).__name__} may not be sent by {role!r}")
        s = self._state
        if isinstance(inp, OfferAssessment) and s in (
            AssessmentState.OFFERED,
            AssessmentState.RUNNING,
        ):
            raise CommandError(f"the assessment is already {s.value}: it cannot be offered again")
        if isinstance(inp, Consent | Decline) and s is not AssessmentState.OFFERED:
            raise CommandError(f"nothing to consent to: the assessment is {s.value}")
        if isinstance(inp, Beats):
            self._take_beats(inp)
        elif isinstance(inp, Breathing):
            self._take_breathing(inp)
        events: list[AssessmentEvent] = []
        # time passes first: blocks that ended before this input are scored at their end
        events += self._advance(float(t))
        self._t = float(t)
        if isinstance(inp, OfferAssessment):
            events.append(self._go(AssessmentState.OFFERED, inp.role, "offer", {}))
        elif isinstance(inp, Consent):
            # a reassessment starts from nothing; the previous result stays in the profile
            self._started = self._t
            self._blocks = []
            self._result = None
            self._announced = -1
            events.append(
                self._go(
                    AssessmentState.RUNNING,
                    Role.CLIENT,
                    "consent",
                    {"rates_bpm": list(self.protocol.rates_bpm), "total_s": self.total_s()},
                )
            )
            events += self._advance(self._t)
        elif isinstance(inp, Decline):
            events.append(self._go(AssessmentState.READY, Role.CLIENT, "decline", {}))
        elif isinstance(inp, StopAssessment | Pause):
            assert role is not None
            events += self._stop(role)
        return events

    def _take_beats(self, inp: Beats) -> None:
        for b in inp.beats:
            if (
                not isinstance(b, tuple)
                or len(b) != 3
                or not all(isinstance(x, int | float) and math.isfinite(x) for x in b[:2])
                or not isinstance(b[2], bool)
                or not 200.0 <= b[1] <= 3000.0
            ):
                raise CommandError(
                    f"Beats: each beat must be (t s, rr 200..3000 ms, corrected), got {b!r}"
                )
        if self._state is AssessmentState.RUNNING:
            for b in inp.beats:
                self._beats[float(b[0])] = (float(b[0]), float(b[1]), b[2])

    def _take_breathing(self, inp: Breathing) -> None:
        for b in inp.samples:
            if not (
                isinstance(b, tuple)
                and len(b) == 2
                and all(isinstance(x, int | float) and math.isfinite(x) for x in b)
            ):
                raise CommandError(f"Breathing: each sample must be (t s, value), got {b!r}")
        if self._state is AssessmentState.RUNNING:
            self._breath.extend(inp.samples)

    def _event(
        self,
        kind: str,
        actor: Role,
        frm: AssessmentState,
        to: AssessmentState,
        reason: str,
        values: Mapping[str, Any],
        t: float | None = None,
    ) -> AssessmentEvent:
        self._seq += 1
        return AssessmentEvent(
            self._seq, self._t if t is None else t, kind, actor, frm, to, reason, dict(values)
        )

    def _go(
        self,
        to: AssessmentState,
        actor: Role,
        reason: str,
        values: Mapping[str, Any],
        t: float | None = None,
    ) -> AssessmentEvent:
        frm = self._state
        self._state = to
        self._since = self._t if t is None else t
        self._stop_acknowledged.clear()
        return self._event("transition", actor, frm, to, reason, values, t)

    def _advance(self, t: float) -> list[AssessmentEvent]:
        """Announce blocks and rests that began, and score blocks that ended, up to `t`."""
        if self._state is not AssessmentState.RUNNING:
            return []
        out: list[AssessmentEvent] = []
        p = self.protocol
        n = len(p.rates_bpm)
        while True:
            k = self._announced + 1  # 2i: block i starts; 2i+1: block i ends (then the rest)
            i = k // 2
            if i >= n:
                break
            at = self._block_start(i) + (p.block_s if k % 2 else 0.0)
            if at > t:
                break
            self._announced = k
            st = self._state
            if k % 2 == 0:
                out.append(
                    self._event(
                        "block_started",
                        Role.SYSTEM,
                        st,
                        st,
                        f"block {i + 1} of {n} at {p.rates_bpm[i]:g}/min",
                        {"block": i, "rate_bpm": p.rates_bpm[i], "ends_t": at + p.block_s},
                        t=at,
                    )
                )
                continue
            score = self._score(i, at)
            self._blocks.append(score)
            out.append(
                self._event(
                    "block_scored",
                    Role.SYSTEM,
                    st,
                    st,
                    f"block {i + 1} scored",
                    {"block": i, "score": _block_values(score)},
                    t=at,
                )
            )
            if i == n - 1:
                self._result = self._scorer.choose(self._blocks, p.rates_bpm, p.weights)
                out.append(
                    self._go(
                        AssessmentState.DONE,
                        Role.SYSTEM,
                        "all blocks done",
                        {"rate_bpm": self._result.rate_bpm},
                        t=at,
                    )
                )
                self._drop_samples()
                break
            if p.rest_s > 0:
                out.append(
                    self._event(
                        "rest_started",
                        Role.SYSTEM,
                        st,
                        st,
                        "rest: breathe as you like",
                        {"block": i, "ends_t": at + p.rest_s},
                        t=at,
                    )
                )
        return out

    def _score(self, i: int, end_t: float) -> BlockScore:
        p = self.protocol
        start = self._block_start(i)
        beats = sorted(x for x in self._beats.values() if start - 5.0 <= x[0] <= end_t + 5.0)
        breathing = [x for x in self._breath if start - 5.0 <= x[0] <= end_t + 5.0] or None
        return self._scorer.score(
            beats,
            breathing,
            block_start_t=start,
            rate_bpm=p.rates_bpm[i],
            inhale_share=p.inhale_share,
            end_t=end_t,
            settle_s=p.settle_s,
        )

    def _drop_samples(self) -> None:
        self._beats.clear()
        self._breath.clear()

    def _stop(self, role: Role) -> list[AssessmentEvent]:
        s = self._state
        if s is AssessmentState.OFFERED:
            return [self._go(AssessmentState.READY, role, "stop: offer withdrawn", {})]
        if s is not AssessmentState.RUNNING:
            if role in self._stop_acknowledged:
                return []
            self._stop_acknowledged.add(role)
            return [self._event("stop_acknowledged", role, s, s, "nothing running", {})]
        out: list[AssessmentEvent] = []
        i, phase, _ = self._where(self._t)
        if phase == "block" and self._announced == 2 * i:
            # the block in progress counts when it already spans enough to score
            if self._t - self._block_start(i) >= MIN_WINDOW_S + self.protocol.settle_s:
                score = self._score(i, self._t)
                self._blocks.append(score)
                out.append(
                    self._event(
                        "block_scored",
                        Role.SYSTEM,
                        s,
                        s,
                        f"block {i + 1} scored up to the stop",
                        {"block": i, "score": _block_values(score), "partial": True},
                    )
                )
            self._announced = 2 * i + 1
        result = self._scorer.choose(self._blocks, self.protocol.rates_bpm, self.protocol.weights)
        # stopped early is never complete, even when the last block was scored up to the stop
        note = f"stopped by the {role.value} after {len(self._blocks)} block(s)"
        self._result = replace(result, complete=False, notes=(*result.notes, note))
        out.append(
            self._go(
                AssessmentState.STOPPED,
                role,
                f"stop by {role.value}",
                {"rate_bpm": self._result.rate_bpm, "blocks": len(self._blocks)},
            )
        )
        self._drop_samples()
        return out


def _block_values(b: BlockScore) -> dict[str, Any]:
    d = asdict(b)
    d["notes"] = list(b.notes)
    return d


def replay(
    protocol: AssessmentProtocol,
    t: float,
    client_id: str,
    inputs: Sequence[AssessmentInput],
    scorer: Scorer,
) -> tuple[AssessmentSession, list[AssessmentEvent]]:
    """Run `inputs` through a fresh session (the recording's replay); refused ones are skipped
    as they were live."""
    s = AssessmentSession(protocol, t=t, client_id=client_id, scorer=scorer)
    events: list[AssessmentEvent] = []
    for inp in inputs:
        try:
            events += s.handle(inp)
        except CommandError:
            continue
    return s, events
