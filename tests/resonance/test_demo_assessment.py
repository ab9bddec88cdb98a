"""`biofeedback demo --assessment`: runs on a simulated client, records, replays to the same
events, stores the result in the demo client's history, and the next demo paces at that rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biofeedback.cli import build_parser, main
from biofeedback.config import ServiceConfig, load_config
from biofeedback.errors import RecordingError
from biofeedback.exposure.assessment import AssessmentProtocol
from biofeedback.service.app import ServiceOptions, apply_service_overrides
from biofeedback.service.assessment_demo import (
    demo_resonance,
    input_from_json,
    replay_recording,
    run_assessment_demo,
)
from biofeedback.service.clinic import plan_clients
from biofeedback.service.resonance_store import load_history


def test_cli_demo_assessment_then_the_demo_paces_at_the_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--assessment", "--data-dir", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "assessed rate: 6.0/min" in out  # seed 3's simulated client resonates at 6.0
    assert demo_resonance(3) == 6.0
    folders = list((tmp_path / "assessments").iterdir())
    assert len(folders) == 1
    for name in ("inputs.jsonl", "events.jsonl", "result.json", "assessment.png"):
        assert (folders[0] / name).stat().st_size > 0
    history = load_history(tmp_path / "baselines", "client-001")
    assert [r.assessment.rate_bpm for r in history] == [6.0]
    assert history[0].session == folders[0].name
    # the next demo's pacer breathes at the measured rate
    args = build_parser().parse_args(["demo", "--data-dir", str(tmp_path)])
    opts = ServiceOptions.from_args(args)
    service = apply_service_overrides(ServiceConfig.single(load_config(env={})), args, opts)
    plan = plan_clients(service, opts)[0]
    assert plan.protocol.guidance.breathing.rate_bpm == pytest.approx(6.0)


def test_a_stopped_demo_keeps_the_measured_blocks_and_replays(tmp_path: Path) -> None:
    said: list[str] = []
    run = run_assessment_demo(
        root=tmp_path,
        client_id="c-9",
        seed=1,
        say=said.append,
        protocol=AssessmentProtocol(rates_bpm=(6.0, 5.0, 4.5), block_s=90.0, rest_s=10.0),
        stop_after_s=285.0,  # the client stops 85 s into the third block (starts at 200 s)
    )
    r = run.session.result
    assert r is not None
    assert not r.complete
    assert [b.rate_bpm for b in r.blocks] == [6.0, 5.0, 4.5]  # the third spans > 70 s: kept
    assert any("partial" in line for line in said)
    again, recorded = replay_recording(run.folder)
    assert [(e.seq, e.kind, e.to_state.value, e.reason) for e in again] == [
        (x["seq"], x["kind"], x["to"], x["reason"]) for x in recorded
    ]
    stored = json.loads((run.folder / "result.json").read_text())
    assert stored["assessment"]["complete"] is False
    assert load_history(tmp_path / "baselines", "c-9")[0].assessment == r


def test_a_broken_recorded_input_is_named() -> None:
    with pytest.raises(RecordingError, match=r"line 7.*unknown input type"):
        input_from_json({"type": "Launch"}, "x/inputs.jsonl, line 7")
    with pytest.raises(RecordingError, match="malformed Beats"):
        input_from_json({"type": "Beats", "t": 1.0, "beats": [[1.0]]}, "x, line 1")


def test_the_demo_refuses_a_folder_with_real_recordings(tmp_path: Path) -> None:
    real = tmp_path / "recordings" / "client-001" / "s1"
    real.mkdir(parents=True)
    (real / "session.json").write_text("{}")
    assert main(["demo", "--assessment", "--data-dir", str(tmp_path)]) == 2
    assert not (tmp_path / "assessments").exists()
