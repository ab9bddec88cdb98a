"""Protocol files: the shipped examples load, and every problem names file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.errors import ConfigError
from biofeedback.exposure import (
    BreathingPattern,
    GroundingTechnique,
    load_protocol,
    parse_protocol,
)
from tests.exposure.helpers import BASE
from tests.support import REPO_ROOT

PROTOCOLS = REPO_ROOT / "config" / "protocols"


@pytest.mark.parametrize("name", ["spider-hierarchy.toml", "demo.toml"])
def test_shipped_protocols_load(name: str) -> None:
    p = load_protocol(PROTOCOLS / name)
    assert p.steps
    assert p.thresholds.lower < p.thresholds.upper
    assert p.source.endswith(name)


def test_demo_protocol_is_tuned_for_a_two_minute_demo() -> None:
    p = load_protocol(PROTOCOLS / "demo.toml")
    # as short as a resting HRV baseline allows: it is measured over the long window
    from biofeedback.signal import SignalConfig

    assert p.calibration_s == SignalConfig().long_window_s
    assert p.thresholds.dwell_s <= 5
    assert p.thresholds.recovery_s <= 15
    assert p.options.auto_offer


def test_spider_hierarchy_fields() -> None:
    p = load_protocol(PROTOCOLS / "spider-hierarchy.toml")
    assert len(p.steps) == 6
    assert p.guidance.breathing == BreathingPattern(4, 0, 6, 0)
    assert p.guidance.grounding[0] is GroundingTechnique.PACED_BREATHING
    assert p.steps[0].suds_anchors[0] == (0, "completely calm")
    assert p.checkins.at_step_start
    assert p.checkins.at_step_end
    assert p.checkins.after_recovery


def test_defaults_when_optional_tables_are_absent() -> None:
    p = parse_protocol(BASE, source="x.toml")
    assert p.guidance.breathing == BreathingPattern(4.0, 0.0, 6.0, 0.0)
    assert p.guidance.breathing.rate_bpm == pytest.approx(6.0)
    assert len(p.guidance.grounding) == 4
    assert p.options.auto_offer is False
    assert p.thresholds.stale_s == 5.0


def _line_of(text: str, needle: str) -> int:
    for no, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return no
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("old", "new", "field", "needle"),
    [
        ("lower = 40", "lower = 80", "thresholds.lower", "lower = 80"),
        ("upper = 70", "upper = 170", "thresholds.upper", "upper = 170"),
        ("dwell_s = 5", 'dwell_s = "five"', "thresholds.dwell_s", "dwell_s ="),
        ("recovery_s = 10", "recovery_s = -1", "thresholds.recovery_s", "recovery_s ="),
        (
            "planned_s = 60\n\n[[steps]]",
            "planned_s = 0\n\n[[steps]]",
            "steps[0].planned_s",
            "planned_s = 0",
        ),
        ('title = "Two"', 'title = ""', "steps[1].title", 'title = ""'),
        ('title = "Two"', 'titel = "Two"', "steps[1].titel", "titel"),
        ("max_step_s = 300", "max_step_s = 300\nuper = 3", "thresholds.uper", "uper = 3"),
        ("calibration_s = 30", "calibration_s = true", "calibration_s", "calibration_s"),
    ],
)
def test_errors_name_file_line_and_field(old: str, new: str, field: str, needle: str) -> None:
    assert old in BASE
    text = BASE.replace(old, new, 1)
    with pytest.raises(ConfigError) as exc:
        parse_protocol(text, source="protocols/bad.toml")
    msg = str(exc.value)
    assert msg.startswith("protocols/bad.toml, line ")
    assert f"line {_line_of(text, needle)}," in msg
    assert f"field {field}:" in msg


@pytest.mark.parametrize(
    ("extra", "field", "needle"),
    [
        ('\n[guidance]\ngrounding = ["paced_breathing", "yoga"]\n', "guidance.grounding", "yoga"),
        (
            '\n[guidance]\ngrounding = ["paced_breathing", "paced_breathing"]\n',
            "guidance.grounding",
            "grounding =",
        ),
        (
            "\n[guidance]\nbreathing = { inhale_s = 0, exhale_s = 6 }\n",
            "guidance.breathing.inhale_s",
            "breathing =",
        ),
        ("\n[checkins]\nevery_s = -5\n", "checkins.every_s", "every_s"),
        ('\n[session]\nauto_offer = "yes"\n', "session.auto_offer", "auto_offer"),
    ],
)
def test_optional_table_errors(extra: str, field: str, needle: str) -> None:
    text = BASE
    # Optional tables go before the [[steps]] array so they are top-level tables.
    head, steps = text.split("[[steps]]", 1)
    text = head + extra + "\n[[steps]]" + steps
    with pytest.raises(ConfigError) as exc:
        parse_protocol(text, source="p.toml")
    msg = str(exc.value)
    assert f"line {_line_of(text, needle)}," in msg, msg
    assert f"field {field}:" in msg


def test_suds_anchor_keys_are_checked() -> None:
    text = BASE.replace(
        "planned_s = 60\n\n[[steps]]",
        'planned_s = 60\nsuds_anchors = { 0 = "calm", 150 = "off the scale" }\n\n[[steps]]',
        1,
    )
    line = _line_of(text, "150 =")
    with pytest.raises(ConfigError, match=rf"line {line}, field steps\[0\]\.suds_anchors\.150"):
        parse_protocol(text, source="p.toml")


def test_missing_required_parts() -> None:
    no_steps = BASE.split("[[steps]]")[0]
    with pytest.raises(ConfigError, match=r"field steps: is required"):
        parse_protocol(no_steps, source="p.toml")
    no_upper = BASE.replace("upper = 70\n", "")
    with pytest.raises(ConfigError, match=r"line 4, field thresholds\.upper: is required"):
        parse_protocol(no_upper, source="p.toml")
    no_thresholds = re.sub(r"\[thresholds\][^\[]*", "", BASE)
    with pytest.raises(ConfigError, match=r"field thresholds: is required"):
        parse_protocol(no_thresholds, source="p.toml")


def test_toml_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"^p\.toml: not valid TOML: .*line 3"):
        parse_protocol('name = "x"\n\nupper = = 3\n', source="p.toml")


def test_load_protocol_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_protocol(tmp_path / "missing.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_protocol(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text(BASE.replace("lower = 40", "lower = 75"), encoding="utf-8")
    line = _line_of(BASE, "lower = ")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(ok))}, line {line}, field thresholds"):
        load_protocol(ok)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_gives_config_error_or_protocol(text: str) -> None:
    try:
        p = parse_protocol(text, source="fuzz.toml")
    except ConfigError as exc:
        msg = str(exc)
    else:
        assert p.steps
        return
    assert msg.startswith("fuzz.toml")


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["upper", "lower", "dwell_s", "recovery_s", "max_step_s"]),
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
        st.integers(min_value=-1000, max_value=1000),
        st.booleans(),
        st.text(alphabet="abc xyz019.-", max_size=5),
    ),
)
def test_fuzzed_threshold_values(key: str, value: object) -> None:
    rendered = (
        repr(value).lower()
        if isinstance(value, bool)
        else (f'"{value}"' if isinstance(value, str) else repr(value))
    )
    text = re.sub(rf"\n{key} = [^\n]*", lambda _: f"\n{key} = {rendered}", BASE, count=1)
    try:
        p = parse_protocol(text, source="f.toml")
    except ConfigError as exc:
        msg = str(exc)
    else:
        th = p.thresholds
        assert 0 <= th.lower < th.upper <= 100
        return
    assert f"field thresholds.{key}" in msg or "thresholds.lower" in msg
    assert re.match(r"f\.toml, line \d+, ", msg) or msg.startswith("f.toml: not valid")
