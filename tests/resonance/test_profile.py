"""The assessment result in the client's profile: stored history, personal rate, and guidance at
that rate by default (docs/resonance.md, "The result belongs to the client")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biofeedback.exposure.guidance import at_rate, personal_breathing, with_personal_rate
from biofeedback.exposure.messages import BreathingPattern
from biofeedback.exposure.protocol import ExposureProtocol, Step
from biofeedback.service.resonance_store import (
    ResonanceRecord,
    append_record,
    history_path,
    load_history,
    personal_rate,
)
from biofeedback.signal.resonance import choose
from tests.resonance.sim import assess, client, simulate


def _protocol() -> ExposureProtocol:
    return ExposureProtocol(name="p", steps=(Step("s", "d", 60.0),))


def test_at_rate_keeps_each_phase_share() -> None:
    p = at_rate(BreathingPattern(4.0, 1.0, 5.0, 0.0), 5.0)
    assert p.rate_bpm == pytest.approx(5.0)
    assert (p.inhale_s, p.hold_in_s, p.exhale_s) == pytest.approx((4.8, 1.2, 6.0))
    with pytest.raises(ValueError, match="breathing rate"):
        at_rate(BreathingPattern(), 20.0)


def test_personal_rate_by_default_the_clients_choice_wins() -> None:
    d = BreathingPattern()
    assert personal_breathing(d, None) == d
    assert personal_breathing(d, 5.5).rate_bpm == pytest.approx(5.5)
    assert personal_breathing(d, 5.5, chosen_rate_bpm=6.5).rate_bpm == pytest.approx(6.5)
    proto = _protocol()
    assert with_personal_rate(proto, None) is proto
    mine = with_personal_rate(proto, 4.5)
    assert mine.guidance.breathing.rate_bpm == pytest.approx(4.5)
    assert mine.guidance.grounding == proto.guidance.grounding
    assert mine.steps == proto.steps


def test_the_session_guides_at_the_personal_rate() -> None:
    from biofeedback.exposure import (
        ArousalSample,
        CalibrationDone,
        ChooseGrounding,
        Consent,
        ExposureSession,
        GroundingTechnique,
        OfferStep,
        Pause,
        Role,
    )

    s = ExposureSession(with_personal_rate(_protocol(), 5.0), t=0.0, client_id="c-1")
    for inp in (
        CalibrationDone(1.0, True),
        ArousalSample(2.0, 20.0),
        OfferStep(3.0, Role.THERAPIST),
        Consent(4.0, Role.CLIENT),
        Pause(6.0, Role.CLIENT),
        ChooseGrounding(7.0, Role.CLIENT, GroundingTechnique.PACED_BREATHING),
    ):
        s.handle(inp)
    g = s.guidance
    assert g is not None
    assert g.breathing is not None
    assert g.breathing.rate_bpm == pytest.approx(5.0)
    assert "out for 7.2" in g.prompt


def test_history_round_trip_personal_rate_and_broken_file(tmp_path: Path) -> None:
    a1 = assess(simulate(client(5.0, 1), 1))
    a2 = choose(a1.blocks[:2])  # a partial reassessment
    assert load_history(tmp_path, "c-1") == []
    append_record(tmp_path, "c-1", ResonanceRecord("2026-11-01T10:00:00+00:00", "s1", a1))
    assert personal_rate(load_history(tmp_path, "c-1")) == a1.rate_bpm
    append_record(tmp_path, "c-1", ResonanceRecord("2026-12-01T10:00:00+00:00", "s2", a2))
    h = load_history(tmp_path, "c-1")
    assert [r.session for r in h] == ["s1", "s2"]
    assert h[0].assessment == a1
    assert personal_rate(h) == a2.rate_bpm
    path = history_path(tmp_path, "c-1")
    d = json.loads(path.read_text())
    d["assessments"][0]["date"] = "yesterday"
    path.write_text(json.dumps(d))
    assert load_history(tmp_path, "c-1") == []  # reported, never trusted
    append_record(tmp_path, "c-1", ResonanceRecord("2026-12-02T10:00:00+00:00", "s3", a1))
    assert (tmp_path / "c-1.resonance.broken-1.json").exists()  # kept, not overwritten
    assert [r.session for r in load_history(tmp_path, "c-1")] == ["s3"]
