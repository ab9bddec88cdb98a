"""Bad input to the assessment's parts gets a clear error of the project's own kind, never a crash:
stored results (ParseError), protocol files (ConfigError), session inputs (CommandError)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.errors import CommandError, ConfigError, ParseError
from biofeedback.exposure.assessment import (
    KIND,
    AssessmentProtocol,
    AssessmentSession,
    Beats,
    Breathing,
    OfferAssessment,
    StopAssessment,
    parse_assessment_protocol,
)
from biofeedback.exposure.messages import Consent, Pause, Role
from biofeedback.signal.resonance import (
    ResonanceScorer,
    assessment_from_json,
    assessment_to_json,
)
from tests.resonance.sim import assess, client, simulate

_GOOD = assessment_to_json(assess(simulate(client(5.5, 2), 2)))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def _paths(d: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*prefix, i))
    return out


_ALL_PATHS = _paths(_GOOD)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(_ALL_PATHS), value=_JSON, drop=st.booleans())
def test_a_damaged_stored_result_is_refused_by_name_or_read(
    path: tuple[Any, ...], value: Any, drop: bool
) -> None:
    d = json.loads(json.dumps(_GOOD))
    node = d
    for k in path[:-1]:
        node = node[k]
    if drop and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    try:
        a = assessment_from_json(d)
    except ParseError as exc:
        message = str(exc)
        a = None
    if a is None:
        assert "resonance assessment" in message
        return
    # accepted: then every number it holds is finite
    for b in a.blocks:
        assert math.isfinite(b.rate_bpm)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_protocol_text_is_parsed_or_refused_with_a_config_error(text: str) -> None:
    try:
        p = parse_assessment_protocol(f'kind = "{KIND}"\n' + text, "x.toml")
    except ConfigError as exc:
        message = str(exc)
        p = None
    if p is None:
        assert "x.toml" in message
        return
    assert p.rates_bpm


_ROLES = st.sampled_from(list(Role)) | st.text(max_size=3)
_NUM = (
    st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.none() | st.text(max_size=2)
)
_INPUTS = st.one_of(
    st.builds(OfferAssessment, _NUM, _ROLES),
    st.builds(StopAssessment, _NUM, _ROLES),
    st.builds(Consent, _NUM, _ROLES),
    st.builds(Pause, _NUM, _ROLES),
    st.builds(Beats, _NUM, st.lists(st.tuples(_NUM, _NUM, _JSON), max_size=3).map(tuple)),
    st.builds(Breathing, _NUM, st.lists(st.tuples(_NUM, _NUM), max_size=3).map(tuple)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_INPUTS, max_size=8))
def test_junk_inputs_are_refused_with_a_command_error_and_change_nothing(inputs: list[Any]) -> None:
    s = AssessmentSession(AssessmentProtocol(), t=0.0, client_id="c-1", scorer=ResonanceScorer())
    for inp in inputs:
        before = s.snapshot()
        try:
            s.handle(inp)
        except CommandError:
            assert s.snapshot() == before
