"""The assessment session's protocol kind, purity, a full run on a simulated client, partial
results and replay (docs/resonance.md, "The assessment session")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from biofeedback.devices.physiology import Physiology
from biofeedback.errors import CommandError, ConfigError
from biofeedback.exposure.assessment import (
    DEFAULT_RATES_BPM,
    KIND,
    AssessmentProtocol,
    AssessmentSession,
    AssessmentState,
    Beats,
    OfferAssessment,
    StopAssessment,
    parse_assessment_protocol,
    pattern_at,
)
from biofeedback.exposure.messages import Consent, Pause, Role, Tick
from biofeedback.signal import resonance
from tests.resonance.sim import client
from tests.support import REPO_ROOT

A = AssessmentState
SCORER = resonance.ResonanceScorer()


def test_import_pulls_in_no_signal_code_numpy_or_io_stack() -> None:
    code = (
        "import sys, json\n"
        "import biofeedback.exposure.assessment\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('asyncio', 'numpy', 'paho', 'aiohttp', 'bleak', 'socket', 'neurokit2') "
        "or m.startswith('biofeedback.signal'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_default_rates_agree_with_the_scoring() -> None:
    assert DEFAULT_RATES_BPM == resonance.DEFAULT_RATES_BPM


def test_protocol_kind_parses_and_names_bad_fields() -> None:
    p = parse_assessment_protocol(
        f'kind = "{KIND}"\nrates_bpm = [6, 5.5, 5]\nblock_s = 150\nrest_s = 30\n', "x.toml"
    )
    assert p.rates_bpm == (6.0, 5.5, 5.0)
    assert p.block_s == 150.0
    assert parse_assessment_protocol(f'kind = "{KIND}"').rates_bpm == DEFAULT_RATES_BPM
    bad = {
        'kind = "exposure"': "field kind",
        f'kind = "{KIND}"\nrates_bpm = [6, 20]': "rates_bpm",
        f'kind = "{KIND}"\nrates_bpm = [6, 6]': "listed twice",
        f'kind = "{KIND}"\nblock_s = 30': "block_s",
        f'kind = "{KIND}"\nrest_s = "long"': "rest_s",
        f'kind = "{KIND}"\nsettle_s = 55': "settle_s",
        f'kind = "{KIND}"\ncolour = 1': "unknown field",
        f'kind = "{KIND}"\nrates_bpm = [': "not valid TOML",
    }
    for text, msg in bad.items():
        with pytest.raises(ConfigError, match=msg) as e:
            parse_assessment_protocol(text, "x.toml")
        assert "x.toml" in str(e.value)


def test_pattern_at_gives_the_rate_and_inhale_share() -> None:
    p = pattern_at(5.5, 0.4)
    assert p.rate_bpm == pytest.approx(5.5)
    assert p.inhale_s / p.period_s == pytest.approx(0.4)


def _feed_simulated(s: AssessmentSession, m: Physiology, until: float, step: float = 5.0) -> None:
    """Drive the session with a simulated client who follows the pacer the session shows."""
    t = s.t
    while t < until:
        g = s.guidance()
        if g is not None and g.breathing is not None:
            m.set_stimulus(
                exposure=0.0,
                paced_breathing_bpm=g.breathing.rate_bpm,
                pacer_t0=g.start_t,
                pacer_inhale_share=g.breathing.inhale_s / g.breathing.period_s,
            )
        else:
            m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
        t = min(until, t + step)
        beats = tuple((b.t, b.rr_s * 1000.0, False) for b in m.beats_until(t) if not b.ectopic)
        s.handle(Beats(t, beats))


@pytest.mark.parametrize(("res", "seed"), [(5.0, 3), (6.0, 4)])
def test_full_run_on_a_simulated_client_finds_its_rate(res: float, seed: int) -> None:
    s = AssessmentSession(AssessmentProtocol(), t=100.0, client_id="c-1", scorer=SCORER)
    s.handle(OfferAssessment(100.0, Role.THERAPIST))
    assert s.snapshot().consent_needed is not None
    with pytest.raises(CommandError):
        s.handle(Consent(101.0, Role.THERAPIST))  # only the client consents
    s.handle(Consent(102.0, Role.CLIENT))
    assert s.state is A.RUNNING
    m = Physiology(start_t=100.0, seed=seed, profile=client(res, seed))
    _feed_simulated(s, m, 102.0 + s.total_s() + 1.0)
    assert s.state is A.DONE
    r = s.result
    assert r is not None
    assert r.complete
    assert r.rate_bpm is not None
    assert abs(r.rate_bpm - res) <= 0.5
    assert [b.rate_bpm for b in r.blocks] == list(DEFAULT_RATES_BPM)
    assert all(b.usable for b in r.blocks)


def test_client_stop_mid_block_keeps_the_measured_blocks() -> None:
    s = AssessmentSession(AssessmentProtocol(), t=0.0, client_id="c-1", scorer=SCORER)
    s.handle(OfferAssessment(0.0, Role.THERAPIST))
    s.handle(Consent(0.0, Role.CLIENT))
    # two blocks and a rest, then 100 s into the third block
    m = Physiology(start_t=0.0, seed=7, profile=client(5.5, 7))
    _feed_simulated(s, m, 2 * 180.0 + 100.0)
    assert len(s.snapshot().blocks) == 2
    events = s.handle(Pause(float("nan"), Role.CLIENT))  # never refused, even unreadable time
    assert s.state is A.STOPPED
    r = s.result
    assert r is not None
    assert not r.complete
    assert len(r.blocks) == 3  # the third block spans more than settle + 60 s: scored
    assert r.rate_bpm in (6.5, 6.0, 5.5)
    assert any(e.kind == "block_scored" and e.values.get("partial") for e in events)
    # a stop where nothing runs is acknowledged once per role
    assert [e.kind for e in s.handle(StopAssessment(s.t, Role.CLIENT))] == ["stop_acknowledged"]
    assert s.handle(StopAssessment(s.t, Role.CLIENT)) == []
    # reassessment: offered again, the old result stays until the client consents
    s.handle(OfferAssessment(s.t, Role.THERAPIST))
    assert s.result is r
    s.handle(Consent(s.t, Role.CLIENT))
    assert s.result is None
    assert s.snapshot().blocks == ()
    s.handle(Tick(s.t + 1.0))


def test_bad_inputs_are_refused_and_change_nothing() -> None:
    s = AssessmentSession(AssessmentProtocol(), t=0.0, client_id="c-1", scorer=SCORER)
    before = s.snapshot()
    for inp in (
        Consent(1.0, Role.CLIENT),  # nothing offered
        OfferAssessment(1.0, Role.CLIENT),  # the therapist offers
        Beats(1.0, ((1.0, 5000.0, False),)),  # implausible RR
        Beats(1.0, ((1.0, 800.0),)),  # type: ignore[arg-type]
        Tick(float("inf")),
        StopAssessment(-5.0, Role.THERAPIST),  # the therapist's late stamp
    ):
        with pytest.raises(CommandError):
            s.handle(inp)
        assert s.snapshot() == before
