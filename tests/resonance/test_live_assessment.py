"""The resonance assessment run live by the session core, beside the exposure session
(service/assessment_host.py): consent first, never while a step runs, the client stops it at any
moment keeping what was measured, recorded in the session recording and replayed identically."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from biofeedback.devices.physiology import SimProfile
from biofeedback.devices.simulated import StrapEmulator
from biofeedback.exposure.assessment import AssessmentProtocol, AssessmentState
from biofeedback.exposure.messages import (
    AssessmentConsent,
    AssessmentDecline,
    AssessmentOffer,
    AssessmentStop,
    ChooseBreathingRate,
    Consent,
    Decline,
    OfferStep,
    Pause,
    Role,
    SessionState,
    Tick,
)
from biofeedback.recording import (
    RecordingInfo,
    SessionRecorder,
    iter_inputs,
    open_session,
    record_output,
    replay_session,
    write_report,
)
from biofeedback.recording.reader import iter_rows, table_path
from biofeedback.recording.schema import EVENTS
from biofeedback.service import payloads
from biofeedback.service.assessment_host import AssessmentHost
from biofeedback.service.core import CoreOutput, SessionCore
from tests.recording.closed_loop import SIGNAL, T0, core_from_recording, make_core

# Two short blocks keep the test quick; the live service runs the default five (docs/resonance.md).
SHORT = AssessmentProtocol(rates_bpm=(6.0, 5.0), block_s=90.0, rest_s=20.0, settle_s=10.0)


class Loop:
    """A simulated client (resonance 5.5 /min, breathing with whatever pacer the screen shows)
    through a real SessionCore, every input recorded as the live runner records it."""

    def __init__(self, root: Path | None, seed: int = 3) -> None:
        self.core = make_core("c-live", T0)
        self.core.assessment = AssessmentHost("c-live", T0, SHORT)
        self.strap = StrapEmulator(
            "SimStrap", start_t=T0, seed=seed, profile=SimProfile(resonance_bpm=5.5)
        )
        self.rec = (
            None
            if root is None
            else SessionRecorder(
                root,
                client_id="c-live",
                meta={"start_t": T0, "seed": seed, "signal_config": SIGNAL},
            )
        )
        self.t = T0
        self.next_tick = T0 + 1.0
        self.outputs: list[CoreOutput] = []
        for r in self.strap.start():
            self.feed(r)

    def feed(self, item: Any) -> CoreOutput:
        out = self.core.feed(item)
        self.outputs.append(out)
        if self.rec is not None:
            self.rec.input(item, out.seq)
            record_output(self.rec, out)
        g = self.core.snapshot.guidance
        b = g.breathing if g is not None else None
        self.strap.model.set_stimulus(
            exposure=0.8 if self.core.session.state is SessionState.EXPOSING else 0.0,
            paced_breathing_bpm=None if b is None else b.rate_bpm,
            pacer_t0=None if g is None else g.start_t,
            pacer_inhale_share=0.5 if b is None else b.inhale_s / b.period_s,
        )
        return out

    def run_until(self, end: float) -> None:
        while True:
            due = self.strap.next_due()
            t = min(due, self.next_tick)
            if t > end:
                break
            if t == self.next_tick:
                self.feed(Tick(t))
                self.next_tick += 1.0
            else:
                for r in self.strap.step(due):
                    self.feed(r)
            if self.rec is not None:
                self.rec.flush_if_due(time.monotonic())
        self.t = end

    def command(self, cmd: Any) -> CoreOutput:
        return self.feed(cmd)

    def state(self) -> AssessmentState:
        return self.core.assessment.session.state


def _ready(loop: Loop) -> None:
    loop.run_until(T0 + 75.0)  # the demo protocol calibrates for 60 s from the first beat
    if loop.core.session.state is SessionState.STEP_OFFERED:  # the protocol offers step 1 itself
        out = loop.command(AssessmentOffer(loop.t, Role.THERAPIST, "o-step-on-offer"))
        assert out.command is not None
        assert not out.command.ok
        assert "step_offered" in (out.command.error or "")
        loop.command(Decline(loop.t, Role.CLIENT, "not-yet"))
    assert loop.core.session.state is SessionState.READY


@pytest.mark.slow
def test_consent_first_stop_keeps_blocks_and_replay_is_identical(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    # refused during the first calibration, with a message that says why
    early = loop.command(AssessmentOffer(T0 + 5.0, Role.THERAPIST, "offer-early"))
    assert early.command is not None
    assert not early.command.ok
    assert "calibrating" in (early.command.error or "")
    assert loop.state() is AssessmentState.READY
    _ready(loop)

    # only the therapist offers; the offer alone starts nothing
    t = loop.t
    assert not loop.command(AssessmentOffer(t, Role.CLIENT, "o-client")).command.ok  # type: ignore[union-attr]
    assert loop.command(AssessmentOffer(t, Role.THERAPIST, "o1")).command.ok  # type: ignore[union-attr]
    assert loop.state() is AssessmentState.OFFERED
    snap = loop.core.assessment.snapshot()
    assert snap.consent_needed is not None
    assert "stop at any moment" in snap.consent_needed
    assert loop.core.snapshot.guidance is None  # no pacer before consent
    # the therapist cannot consent for the client, and no step is offered meanwhile
    assert not loop.command(AssessmentConsent(t, Role.THERAPIST, "c-th")).command.ok  # type: ignore[union-attr]
    refused = loop.command(OfferStep(t, Role.THERAPIST, None, "step-while-offered")).command
    assert refused is not None
    assert not refused.ok
    assert "assessment" in (refused.error or "")
    assert loop.core.session.state is SessionState.READY
    loop.run_until(t + 20.0)
    assert loop.state() is AssessmentState.OFFERED  # time passing does not start it

    # the client's consent starts it: the pacer is the first block's
    consent = loop.command(AssessmentConsent(loop.t, Role.CLIENT, "c1"))
    assert consent.command is not None
    assert consent.command.ok
    assert loop.state() is AssessmentState.RUNNING
    started = loop.t
    g = loop.core.snapshot.guidance
    assert g is not None
    assert g.breathing is not None
    assert g.breathing.rate_bpm == pytest.approx(6.0)

    # block 1 runs and is scored at its end; the rest has no pacer; block 2 paces at 5.0
    loop.run_until(started + 95.0)
    kinds = [e.kind for o in loop.outputs for e in o.assessment_events]
    assert kinds.count("block_scored") == 1
    assert "rest_started" in kinds
    assert loop.core.snapshot.guidance is None
    loop.run_until(started + 110.0 + 75.0)  # block 2 spans settle + 65 s
    g = loop.core.snapshot.guidance
    assert g is not None
    assert g.breathing is not None
    assert g.breathing.rate_bpm == pytest.approx(5.0)

    # the client stops: never refused, both blocks kept (the second up to the stop), partial
    stop = loop.command(AssessmentStop(loop.t, Role.CLIENT, "stop-1"))
    assert stop.command is not None
    assert stop.command.ok
    assert loop.state() is AssessmentState.STOPPED
    result = loop.core.assessment.session.result
    assert result is not None
    assert not result.complete
    assert [b.rate_bpm for b in result.blocks] == [6.0, 5.0]
    assert result.rate_bpm in (6.0, 5.0)
    assert loop.core.assessment.finished() is result
    assert loop.core.assessment.finished() is None  # handed out once
    assert loop.core.snapshot.guidance is None
    # a second stop is acknowledged, not refused; the result stays
    again = loop.command(AssessmentStop(loop.t, Role.CLIENT, "stop-2"))
    assert again.command is not None
    assert again.command.ok
    assert loop.core.assessment.session.result is result

    # its state validates against the topic's schema, block scores included
    payload = payloads.assessment(
        "c-live", loop.core.assessment.snapshot(), stop.assessment_events, None
    )
    payloads.validate("assessment", json.loads(json.dumps(payload)))
    assert payload["state"] == "stopped"
    assert len(payload["blocks"]) == 2

    # the client's own rate wins over the session's pacer rate; None goes back
    loop.command(ChooseBreathingRate(loop.t, Role.CLIENT, 5.0, "rate-1"))
    assert loop.core.assessment.chosen_rate_bpm == 5.0
    loop.run_until(loop.t + 2.0)
    assert loop.rec is not None
    loop.rec.snapshot(loop.core.snapshot)
    loop.rec.close()

    # recorded: the commands in inputs.tsv, the events in events.tsv (kind "assessment_...")
    info = open_session(loop.rec.path)
    names = {type(i).__name__ for i in iter_inputs(loop.rec.path)}
    assert {"AssessmentOffer", "AssessmentConsent", "AssessmentStop"} <= names
    assert {"ChooseBreathingRate", "OfferStep"} <= names
    rows = list(iter_rows(table_path(loop.rec.path, EVENTS), EVENTS))
    akinds = [r["kind"] for r in rows if str(r["kind"]).startswith("assessment_")]
    assert akinds.count("assessment_block_scored") == 2
    assert "assessment_transition" in akinds

    # replayed through a fresh core with the same assessment protocol: identical
    def factory(i: RecordingInfo) -> SessionCore:
        core = core_from_recording(i)
        core.assessment = AssessmentHost(i.client_id, float(i.start_t or T0), SHORT)
        return core

    res = replay_session(loop.rec.path, tmp_path / "replays", core_factory=factory)
    assert res.differences == ()
    again_info = open_session(res.replay)
    assert again_info.files["events"].read_bytes() == info.files["events"].read_bytes()

    # and in the session's report: each scored block's criteria and how it ended
    page = write_report(loop.rec.path, tmp_path / "report").read_text()
    section = page[page.index("<h2>Breathing-rate check</h2>") :]
    assert "Started on the client's consent." in section
    assert section.count("<tr><td>") == 2
    assert "(up to the stop)" in section
    assert "stopped by the client: rate" in section


@pytest.mark.slow
def test_never_while_a_step_runs_and_a_client_pause_stops_it() -> None:
    loop = Loop(None, seed=5)
    _ready(loop)
    t = loop.t
    assert loop.command(OfferStep(t, Role.THERAPIST, None, "s0")).command.ok  # type: ignore[union-attr]
    loop.command(Consent(t + 1.0, Role.CLIENT, "s0-yes"))
    assert loop.core.session.state is SessionState.EXPOSING
    out = loop.command(AssessmentOffer(t + 2.0, Role.THERAPIST, "o-during-step"))
    assert out.command is not None
    assert not out.command.ok
    assert "exposing" in (out.command.error or "")
    assert "cannot be offered" in (out.command.error or "")
    assert loop.state() is AssessmentState.READY

    # after the step is paused and stopped by the client, between steps: it can be offered
    loop.command(Pause(t + 3.0, Role.CLIENT, "", "p1"))
    assert loop.state() is AssessmentState.READY  # a pause with nothing running: no event
    assert not any(o.assessment_events for o in loop.outputs)

    fresh = Loop(None, seed=6)
    _ready(fresh)
    t = fresh.t
    fresh.command(AssessmentOffer(t, Role.THERAPIST, "o1"))
    fresh.command(AssessmentDecline(t + 1.0, Role.CLIENT, "no"))
    assert fresh.state() is AssessmentState.READY  # declined: nothing ran
    fresh.command(AssessmentOffer(t + 2.0, Role.THERAPIST, "o2"))
    fresh.command(AssessmentConsent(t + 3.0, Role.CLIENT, "yes"))
    fresh.run_until(t + 30.0)
    # a client Pause stops it at once; nothing had reached settle + 60 s: no block, kept empty
    out = fresh.command(Pause(fresh.t, Role.CLIENT, "", "p2"))
    assert out.command is not None
    assert out.command.ok
    assert fresh.state() is AssessmentState.STOPPED
    result = fresh.core.assessment.session.result
    assert result is not None
    assert result.blocks == ()
    assert result.rate_bpm is None
