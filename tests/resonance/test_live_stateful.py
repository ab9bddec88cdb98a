"""The assessment hosted by the live session core, beside the exposure session, as a hypothesis
state machine (the profiles of test_assessment_stateful.py): any interleaving of the therapist's
and the client's exposure and assessment commands, arousal and time. After every input:

- the assessment starts only on the client's `AssessmentConsent` to an open offer (never on an
  offer, a therapist's consent, time or arousal);
- it never runs, nor is on offer, while an exposure step is on offer or running: offering or
  starting it then is refused, and so is offering a step while it is active;
- the client's `AssessmentStop` and `Pause` are never refused and end a running assessment at
  once, keeping every block scored before (a partial result); an offer is withdrawn;
- the pacer the client sees is the assessment's while one of its blocks runs.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from biofeedback.exposure.assessment import AssessmentProtocol, AssessmentState
from biofeedback.exposure.messages import (
    ArousalSample,
    AssessmentConsent,
    AssessmentDecline,
    AssessmentOffer,
    AssessmentStop,
    CalibrationDone,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    OfferStep,
    Pause,
    Recalibrate,
    Role,
    SessionState,
    Tick,
)
from biofeedback.service.assessment_host import FREE_STATES, AssessmentHost
from biofeedback.service.core import CoreOutput
from tests.recording.closed_loop import T0, make_core
from tests.resonance.test_assessment_stateful import profile

A = AssessmentState
C, T = Role.CLIENT, Role.THERAPIST
PROTO = AssessmentProtocol(rates_bpm=(6.0, 5.0), block_s=80.0, rest_s=10.0, settle_s=5.0)
STEP_STATES = frozenset(SessionState) - FREE_STATES - {SessionState.CALIBRATING, SessionState.ENDED}
SEEN: set[str] = set()


class LiveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = make_core("c-1", T0)
        self.core.assessment = AssessmentHost("c-1", T0, PROTO)
        self.t = T0
        self.n = 0
        # most runs start between steps (calibrated, the protocol's first offer declined)
        self.feed(CalibrationDone(self.later(1.0), True, "baseline ready"))
        if self.core.session.state is SessionState.STEP_OFFERED:
            self.feed(Decline(self.later(1.0), C, "d0"))

    @property
    def a(self) -> AssessmentState:
        return self.core.assessment.session.state

    def feed(self, item: Any) -> CoreOutput:
        before_a, before_x = self.a, self.core.session.state
        blocks_before = len(self.core.assessment.session.snapshot().blocks)
        out = self.core.feed(item)
        after = self.a
        ok = out.command is None or out.command.ok
        if after is A.RUNNING and before_a is not A.RUNNING:
            # only the client's consent to an open offer, between exposure steps, starts it
            assert isinstance(item, AssessmentConsent), item
            assert item.role is C
            assert before_a is A.OFFERED
            assert before_x in FREE_STATES
            SEEN.add("started")
        if isinstance(item, AssessmentOffer | AssessmentConsent) and before_x not in FREE_STATES:
            assert not ok, (item, before_x)
            assert out.command is not None
            assert before_x.value in (out.command.error or "")
            SEEN.add("refused during a step")
        if isinstance(item, OfferStep) and before_a in (A.OFFERED, A.RUNNING):
            assert not ok
            SEEN.add("step refused while active")
        if isinstance(item, AssessmentStop | Pause) and item.role is C:
            assert ok, out.command  # never refused
            if before_a is A.RUNNING:
                assert after is A.STOPPED
                result = self.core.assessment.session.result
                assert result is not None
                assert not result.complete
                assert len(result.blocks) >= blocks_before  # nothing measured is lost
                SEEN.add("client stopped it running")
            elif before_a is A.OFFERED:
                assert after is A.READY
                SEEN.add("client withdrew the offer")
        return out

    def later(self, dt: float) -> float:
        self.t += dt
        self.n += 1
        return self.t

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 5.0, 30.0, 61.0, 80.0]))
    def tick(self, dt: float) -> None:
        self.feed(Tick(self.later(dt)))

    @rule(value=st.sampled_from([20.0, 55.0, 95.0]))
    def arousal(self, value: float) -> None:
        self.feed(ArousalSample(self.later(0.5), value, 1.0))

    @precondition(lambda self: self.core.session.state is SessionState.CALIBRATING)
    @rule()
    def calibrated(self) -> None:
        self.feed(CalibrationDone(self.later(1.0), True, "baseline ready"))

    @rule(
        cmd=st.sampled_from(
            [
                AssessmentOffer,
                AssessmentStop,
                OfferStep,
                CompleteStep,
                EndSession,
                Recalibrate,
                AssessmentConsent,  # refused: consent is the client's
            ]
        )
    )
    def therapist(self, cmd: type) -> None:
        t = self.later(0.5)
        if cmd is OfferStep:
            item = OfferStep(t, T, None, f"x{self.n}")
        elif cmd is Recalibrate:
            item = Recalibrate(t, T, "", f"x{self.n}")
        else:
            item = cmd(t, T, f"x{self.n}")
        out = self.feed(item)
        if cmd is AssessmentConsent:
            assert out.command is not None
            assert not out.command.ok

    @rule(wait=st.sampled_from([0.0, 3.0]))
    def offer_and_answer_yes(self, wait: float) -> None:
        """The therapist offers; the client says yes (the path to a running assessment)."""
        self.feed(AssessmentOffer(self.later(0.5), T, f"o{self.n}"))
        self.feed(AssessmentConsent(self.later(wait), C, f"y{self.n}"))

    @rule(
        cmd=st.sampled_from(
            [AssessmentConsent, AssessmentDecline, AssessmentStop, Pause, Consent, Decline]
        )
    )
    def client(self, cmd: type) -> None:
        t = self.later(0.5)
        item = Pause(t, C, "", f"c{self.n}") if cmd is Pause else cmd(t, C, f"c{self.n}")
        self.feed(item)

    @invariant()
    def never_beside_a_step(self) -> None:
        if self.a in (A.OFFERED, A.RUNNING):
            assert self.core.session.state not in STEP_STATES, self.core.session.state

    @invariant()
    def the_pacer_is_the_blocks(self) -> None:
        g = self.core.assessment.guidance()
        if g is not None:
            assert self.a is A.RUNNING
            assert self.core.snapshot.guidance == g
            SEEN.add("paced a block")


def test_live_assessment_machine() -> None:
    SEEN.clear()
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LiveMachine, settings=profile())
    assert {"started", "client stopped it running", "refused during a step"} <= SEEN, SEEN


test_live_assessment_machine.is_hypothesis_test = True  # type: ignore[attr-defined]
