"""Random sequences of offers, consents, declines, stops (client and therapist, any role, late and
unreadable time stamps), beats and waits, checked after every input against an independent model
of docs/resonance.md ("The assessment session"):

- the assessment runs only after a client consent to an open offer (consent before it starts):
  every transition into `running` is the client's consent from `offered`;
- the client's stop is never refused and, while running, ends the run at once with a result that
  keeps every block scored so far (plus the block in progress when it spans settle + 60 s);
- a command from a role that may not send it, or not valid in the state, is refused and changes
  nothing; time never runs backwards in the log and seq counts up by one;
- blocks are scored exactly when their end has passed; the pacer runs only inside a block;
- the same inputs give the same events (replay).

Composite actions put the stop on block edges (exactly at a block's end, one float step either
side, in a rest, at the settle + 60 s edge), so every run covers them. Profiles as
tests/exposure/test_stateful.py (`ci` under CI=true, derandomised; `dev` otherwise).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from biofeedback.errors import CommandError
from biofeedback.exposure.assessment import (
    AssessmentEvent,
    AssessmentInput,
    AssessmentProtocol,
    AssessmentSession,
    AssessmentState,
    Beats,
    OfferAssessment,
    StopAssessment,
    replay,
)
from biofeedback.exposure.messages import Consent, Decline, Pause, Role, Tick
from biofeedback.signal.resonance import ResonanceScorer

A = AssessmentState
SCORER = ResonanceScorer()
C, T, SYS = Role.CLIENT, Role.THERAPIST, Role.SYSTEM
PROTO = AssessmentProtocol(rates_bpm=(6.0, 5.0, 4.5), block_s=80.0, rest_s=10.0, settle_s=5.0)
CYCLE = PROTO.block_s + PROTO.rest_s
TOTAL = 3 * PROTO.block_s + 2 * PROTO.rest_s

_BASE: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "stateful_step_count": 30,
}
settings.register_profile(
    "assessment-ci", max_examples=120, derandomize=True, database=None, **_BASE
)
settings.register_profile("assessment-dev", max_examples=80, **_BASE)
settings.register_profile("assessment-long", max_examples=2000, **_BASE)


def profile() -> settings:
    name = os.environ.get("BIOFEEDBACK_HYPOTHESIS_PROFILE", "").strip()
    if not name:
        ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
        name = "ci" if ci else "dev"
    if name == "mutation":
        name = "ci"
    return settings.get_profile(f"assessment-{name}")


def sine_beats(t0: float, t1: float, rate: float = 5.5) -> tuple[tuple[float, float, bool], ...]:
    """Beats with RR in (t0, t1], an oscillation at `rate`/min."""
    out: list[tuple[float, float, bool]] = []
    t = t0
    while True:
        rr = 850.0 + 60.0 * math.sin(2 * math.pi * rate / 60.0 * t)
        t += rr / 1000.0
        if t > t1:
            return tuple(out)
        out.append((t, rr, False))


@dataclass(frozen=True, slots=True)
class Stop:
    role: Role
    pause: bool  # a Pause instead of StopAssessment
    stamp: str  # "now", "late", "nan"


@dataclass(frozen=True, slots=True)
class RunThenStop:
    """Consent (after an offer), run to an edge, stop as the client."""

    block: int
    edge: str  # "end", "before_end", "after_end", "in_rest", "scorable", "unscorable", "start"


EDGES = ("end", "before_end", "after_end", "in_rest", "scorable", "unscorable", "start")
COVERED: set[str] = set()


class AssessmentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = AssessmentSession(PROTO, t=0.0, client_id="c-1", scorer=SCORER)
        self.t = 0.0
        self.inputs: list[AssessmentInput] = []
        self.events: list[AssessmentEvent] = []
        # the model
        self.state = A.READY
        self.started: float | None = None
        self.scored_before_stop = 0

    # -- sending --------------------------------------------------------------------------------
    def _ends_passed(self, t: float) -> int:
        assert self.started is not None
        return sum(1 for i in range(3) if self.started + i * CYCLE + PROTO.block_s <= t)

    def _send(self, inp: AssessmentInput, expect_ok: bool | None) -> list[AssessmentEvent] | None:
        before = self.s.snapshot()
        seq0 = self.s.seq
        try:
            events = self.s.handle(inp)
        except CommandError:
            assert expect_ok is not True, f"{inp} refused"
            assert self.s.snapshot() == before  # a refused command changes nothing
            assert self.s.seq == seq0
            return None
        assert expect_ok is not False, f"{inp} accepted"
        self.inputs.append(inp)
        for k, e in enumerate(events):
            assert e.seq == seq0 + k + 1
            prev = self.events[-1].t if self.events else -math.inf
            assert e.t >= prev
            if e.kind == "transition" and e.to_state is A.RUNNING:  # consent before it starts
                assert e.from_state is A.OFFERED
                assert e.actor is C
                assert e.reason == "consent"
            self.events.append(e)
        self.t = self.s.t
        return events

    def _tick_model(self, t: float) -> None:
        if self.state is A.RUNNING and self.started is not None and t >= self.started + TOTAL:
            self.state = A.DONE

    def _wait(self, dt: float) -> None:
        self._wait_until(self.t + dt)

    def _wait_until(self, t1: float) -> None:
        self._send(Beats(t1, sine_beats(self.t, t1)), True)
        self._tick_model(t1)
        self._send(Tick(t1), True)

    # -- rules ----------------------------------------------------------------------------------
    @rule(role=st.sampled_from([C, T, SYS]))
    def offer(self, role: Role) -> None:
        ok = role is T and self.state not in (A.OFFERED, A.RUNNING)
        if self._send(OfferAssessment(self.t, role), ok) is not None:
            self.state = A.OFFERED

    @rule(role=st.sampled_from([C, T, SYS]), yes=st.booleans())
    def answer(self, role: Role, yes: bool) -> None:
        ok = role is C and self.state is A.OFFERED
        got = self._send(Consent(self.t, role) if yes else Decline(self.t, role), ok)
        if got is not None:
            self.state = A.RUNNING if yes else A.READY
            if yes:
                self.started = self.t

    @rule(dt=st.sampled_from([0.0, 1.0, 30.0, 75.0, 90.0, 200.0]))
    def wait(self, dt: float) -> None:
        self._wait(dt)

    @rule(
        a=st.builds(
            Stop,
            st.sampled_from([C, T, SYS]),
            st.booleans(),
            st.sampled_from(["now", "late", "nan"]),
        )
    )
    def stop(self, a: Stop) -> None:
        t = {"now": self.t, "late": self.t - 3.0, "nan": math.nan}[a.stamp]
        inp: AssessmentInput = Pause(t, a.role) if a.pause else StopAssessment(t, a.role)
        if a.role is C:
            ok: bool | None = True  # the client's stop is never refused
        elif a.role is T:
            ok = a.stamp == "now"  # a therapist's late or unreadable stamp is refused
        else:
            ok = False
        self._stop_and_check(inp, ok)

    def _stop_and_check(self, inp: AssessmentInput, ok: bool | None) -> None:
        running = self.state is A.RUNNING
        scored_before = len(self.s.snapshot().blocks)
        got = self._send(inp, ok)
        if got is None:
            return
        if running:
            snap = self.s.snapshot()
            assert snap.state is A.STOPPED
            assert snap.result is not None  # a partial assessment keeps what was measured
            assert len(snap.result.blocks) >= scored_before
            assert snap.result.blocks[:scored_before] == snap.blocks[:scored_before]
            assert snap.guidance is None
            self.state = A.STOPPED
        elif self.state is A.OFFERED:
            self.state = A.READY

    @rule(a=st.builds(RunThenStop, st.integers(0, 2), st.sampled_from(EDGES)))
    def run_then_stop(self, a: RunThenStop) -> None:
        if self.state is A.RUNNING:
            self._stop_and_check(StopAssessment(self.t, C), True)
        if self.state is not A.OFFERED:
            self.offer(T)
        self.answer(C, True)
        assert self.started is not None
        block_start = self.started + a.block * CYCLE
        end = block_start + PROTO.block_s
        target = {
            "end": end,
            "before_end": math.nextafter(end, -math.inf),
            "after_end": math.nextafter(end, math.inf),
            "in_rest": end + PROTO.rest_s / 2,
            "scorable": block_start + PROTO.settle_s + 60.0,
            "unscorable": math.nextafter(block_start + PROTO.settle_s + 60.0, -math.inf),
            "start": block_start,
        }[a.edge]
        if a.block == 2 and a.edge in ("in_rest", "after_end"):
            target = math.nextafter(end, -math.inf)  # no rest after the last block
        if target > self.t:
            self._wait_until(target)
        COVERED.add(a.edge)
        expected_blocks = self._ends_passed(self.t)
        if self.state is A.RUNNING:
            in_block = self.t < end  # the same float expression as the session's
            partial = in_block and self.t - block_start >= PROTO.settle_s + 60.0
            self._stop_and_check(StopAssessment(self.t, C), True)
            snap = self.s.snapshot()
            assert snap.result is not None
            assert len(snap.result.blocks) == expected_blocks + (1 if partial else 0)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def matches_model(self) -> None:
        snap = self.s.snapshot()
        assert snap.state is self.state
        if self.state is A.RUNNING:
            assert self.started is not None
            assert len(snap.blocks) == self._ends_passed(self.t)
            assert (snap.guidance is not None) == (snap.phase == "block")
            if snap.guidance is not None:
                assert snap.guidance.breathing is not None
                assert snap.guidance.breathing.rate_bpm == snap.rate_bpm
        else:
            assert snap.guidance is None
        assert (snap.consent_needed is not None) == (self.state is A.OFFERED)
        if self.state is A.DONE:
            assert snap.result is not None
            assert snap.result.complete
            assert len(snap.result.blocks) == 3

    def teardown(self) -> None:
        # replay: the same accepted inputs give the same events
        _, again = replay(PROTO, 0.0, "c-1", self.inputs, SCORER)
        assert [(e.seq, e.kind, e.to_state, e.reason) for e in again] == [
            (e.seq, e.kind, e.to_state, e.reason) for e in self.events
        ]


def test_assessment_machine() -> None:
    COVERED.clear()
    run_state_machine_as_test(AssessmentMachine, settings=profile())
    assert set(EDGES) <= COVERED


test_assessment_machine.is_hypothesis_test = True  # type: ignore[attr-defined]
