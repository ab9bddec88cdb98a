"""The resonance assessment hosted live, beside one client's exposure session (docs/resonance.md).

The session core (`service/core.py`) owns one `AssessmentHost` per client. It takes the
assessment's commands (`biofeedback.exposure.messages.AssessmentCommand`), the clean beats the
signal pipeline produces (revisions included) and the session's ticks, and hands them to the pure
`AssessmentSession` (`biofeedback/exposure/assessment.py`). Synchronous and deterministic like the
core: the recording's inputs replayed through a fresh core give the same assessment events.

Safety rules kept here, because they involve both sessions:

- it is offered by the therapist and starts only with the client's `AssessmentConsent`;
- it cannot be offered or started while an exposure step is offered or running (nor during the
  first calibration): refused with a message saying why; and while it is on offer or running, no
  exposure step can be offered;
- the client's `AssessmentStop` or `Pause` ends it at any moment and is never refused; a stop keeps
  every block measured so far (a partial result).

The client's own breathing rate (`ChooseBreathingRate`) is kept here too: it wins over the
measured rate for the exposure session's paced breathing (`with_chosen_rate`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from biofeedback.errors import CommandError
from biofeedback.exposure.assessment import (
    AssessmentEvent,
    AssessmentProtocol,
    AssessmentSession,
    AssessmentSnapshot,
    AssessmentState,
    Beats,
    OfferAssessment,
    StopAssessment,
)
from biofeedback.exposure.guidance import personal_breathing
from biofeedback.exposure.messages import (
    AssessmentCommand,
    AssessmentConsent,
    AssessmentDecline,
    AssessmentOffer,
    AssessmentStop,
    ChooseBreathingRate,
    Consent,
    Decline,
    GroundingTechnique,
    Guidance,
    Pause,
    Role,
    SessionState,
    Tick,
)
from biofeedback.signal.measures import BeatUpdate
from biofeedback.signal.resonance import Assessment, ResonanceScorer

log = logging.getLogger(__name__)

#: Exposure states in which the assessment may be offered or started: no step on offer or
#: running, no first calibration (the client rests then), no session ended.
FREE_STATES = frozenset({SessionState.READY, SessionState.STEP_COMPLETE, SessionState.DEBRIEF})
ACTIVE = frozenset({AssessmentState.OFFERED, AssessmentState.RUNNING})


class AssessmentHost:
    """One client's live assessment and chosen breathing rate."""

    def __init__(
        self, client_id: str, start_t: float, protocol: AssessmentProtocol | None = None
    ) -> None:
        self.session = AssessmentSession(
            protocol or AssessmentProtocol(),
            t=start_t,
            client_id=client_id,
            scorer=ResonanceScorer(),
        )
        self.chosen_rate_bpm: float | None = None
        self._handed_out: Assessment | None = None  # the newest result `finished` returned

    @property
    def active(self) -> bool:
        """On offer or running: no exposure step may be offered meanwhile."""
        return self.session.state in ACTIVE

    def snapshot(self) -> AssessmentSnapshot:
        return self.session.snapshot()

    def guidance(self) -> Guidance | None:
        """The assessment's pacer while one of its blocks runs."""
        return self.session.guidance()

    def command(
        self, cmd: AssessmentCommand, t: float, exposure: SessionState
    ) -> list[AssessmentEvent]:
        """Apply one assessment command at session time `t`; `CommandError` says why one is refused
        (a client stop never is)."""
        if isinstance(cmd, ChooseBreathingRate):
            if cmd.role is not Role.CLIENT:
                raise CommandError("only the client chooses their breathing rate")
            self.chosen_rate_bpm = cmd.rate_bpm
            return []
        if isinstance(cmd, AssessmentOffer | AssessmentConsent) and exposure not in FREE_STATES:
            what = "offered" if isinstance(cmd, AssessmentOffer) else "started"
            raise CommandError(
                f"the breathing-rate assessment cannot be {what} while the exposure session is "
                f"{exposure.value}: only between exposure steps (ready, step complete, debrief), "
                "never while a step is on offer or running, nor during the first calibration"
            )
        if isinstance(cmd, AssessmentOffer):
            return self.session.handle(OfferAssessment(t, cmd.role, cmd.command_id))
        if isinstance(cmd, AssessmentConsent):
            return self.session.handle(Consent(t, cmd.role, cmd.command_id))
        if isinstance(cmd, AssessmentDecline):
            return self.session.handle(Decline(t, cmd.role, cmd.command_id))
        assert isinstance(cmd, AssessmentStop)
        return self.session.handle(StopAssessment(t, cmd.role, cmd.command_id))

    def pause(self, cmd: Pause, t: float) -> list[AssessmentEvent]:
        """A Pause (the client's or the therapist's) stops an assessment on offer or running."""
        if not self.active:
            return []
        return self.session.handle(replace(cmd, t=t))

    def end(self, role: Role, t: float) -> list[AssessmentEvent]:
        """The session ends: an assessment on offer or running stops (what it measured kept)."""
        if not self.active:
            return []
        return self.session.handle(StopAssessment(t, role))

    def beats(self, updates: Sequence[BeatUpdate], t: float) -> list[AssessmentEvent]:
        """The pipeline's clean beats (and their revisions) from one input."""
        if self.session.state is not AssessmentState.RUNNING:
            return self.tick(t)
        out: list[tuple[float, float, bool]] = []
        for u in updates:
            for c in (*u.revised, *((u.beat,) if u.beat is not None else ())):
                if 200.0 <= c.rr_ms <= 3000.0:
                    out.append((c.t, c.rr_ms, c.corrected))
        return self._handle(Beats(t, tuple(out)))

    def tick(self, t: float) -> list[AssessmentEvent]:
        """Session time passes: blocks start, end and are scored on time."""
        if self.session.state is not AssessmentState.RUNNING:
            return []
        return self._handle(Tick(t))

    def _handle(self, inp: Beats | Tick) -> list[AssessmentEvent]:
        try:
            return self.session.handle(inp)
        except CommandError as exc:  # a late time stamp from another source: nothing lost
            log.debug("assessment input at %s skipped: %s", inp.t, exc)
            return []

    def finished(self) -> Assessment | None:
        """The result of an assessment that has just ended (done or stopped), once."""
        result = self.session.result
        if result is None or self.session.state not in (
            AssessmentState.DONE,
            AssessmentState.STOPPED,
        ):
            return None
        if result is self._handed_out:
            return None
        self._handed_out = result
        return result

    def with_chosen_rate(self, g: Guidance | None) -> Guidance | None:
        """The exposure session's guidance with the pacer at the client's chosen rate, if any."""
        if (
            g is None
            or self.chosen_rate_bpm is None
            or g.technique is not GroundingTechnique.PACED_BREATHING
            or g.breathing is None
        ):
            return g
        return replace(g, breathing=personal_breathing(g.breathing, None, self.chosen_rate_bpm))
