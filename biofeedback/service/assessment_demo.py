"""`biofeedback demo --assessment`: the resonance assessment on a simulated client, end to end.

A simulated client with a known resonance rate (`--seed` picks the person and the rate) follows
the assessment's pacer; their beats pass through the real signal pipeline (intake screen and
artifact correction, revisions included) into `AssessmentSession`, which the simulated therapist
offers and the simulated client consents to. It runs in simulated time (seconds, not the ~15
minutes of a real run). The run is recorded in its own folder, replayed to check the events come
back the same, charted, and added to the demo client's resonance history, so that the next
`biofeedback demo` paces at the measured rate (docs/resonance.md).

Recording folder `<demo data>/assessments/<client>-<UTC time>/`:

- `inputs.jsonl`: every input in order, `{"type": "...", ...fields}`
  (beats as [t, rr_ms, corrected]);
- `events.jsonl`: every event (`seq`, `t`, `kind`, `actor`, `from`, `to`, `reason`, `values`);
- `result.json`: the assessment (`assessment_to_json`), the simulated truth and the date;
- `assessment.png`: per-block bars and heart rate over the pacer (the therapist's chart).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biofeedback.errors import RecordingError
from biofeedback.exposure.assessment import (
    AssessmentEvent,
    AssessmentInput,
    AssessmentProtocol,
    AssessmentSession,
    Beats,
    Breathing,
    OfferAssessment,
    StopAssessment,
    replay,
)
from biofeedback.exposure.messages import Consent, Decline, Pause, Role, Tick
from biofeedback.signal.resonance import ResonanceScorer

log = logging.getLogger(__name__)

DEMO_RATES = (4.5, 5.0, 5.5, 6.0, 6.5)


@dataclass(frozen=True, slots=True)
class DemoRun:
    folder: Path
    true_rate_bpm: float
    session: AssessmentSession
    inputs: list[AssessmentInput]
    events: list[AssessmentEvent]
    hr: list[tuple[float, float]]  # (t, bpm) of every clean beat, for the chart


def demo_resonance(seed: int) -> float:
    """The simulated client's resonance rate for a seed (seed 1 -> 5.0 /min, then round)."""
    return DEMO_RATES[seed % len(DEMO_RATES)]


def simulate_assessment(
    protocol: AssessmentProtocol,
    *,
    seed: int,
    client_id: str,
    stop_after_s: float | None = None,
) -> tuple[
    AssessmentSession,
    list[AssessmentInput],
    list[AssessmentEvent],
    list[tuple[float, float]],
    float,
]:
    """Run the whole assessment on a simulated client in simulated time (pure computation).

    `stop_after_s`: the simulated client stops this long after consenting (a partial run).
    Returns (session, inputs, events, hr, the client's true resonance rate).
    """
    from biofeedback.devices.physiology import Physiology, SimProfile
    from biofeedback.signal import SignalPipeline

    true_rate = demo_resonance(seed)
    m = Physiology(start_t=0.0, seed=seed, profile=SimProfile(resonance_bpm=true_rate))
    pipe = SignalPipeline()
    s = AssessmentSession(protocol, t=0.0, client_id=client_id, scorer=ResonanceScorer())
    inputs: list[AssessmentInput] = []
    events: list[AssessmentEvent] = []
    hr: list[tuple[float, float]] = []

    def send(inp: AssessmentInput) -> None:
        events.extend(s.handle(inp))
        inputs.append(inp)

    def beats_until(t: float) -> None:
        out: list[tuple[float, float, bool]] = []
        for b in m.beats_until(t):
            u = pipe.push_rr(b.t, round(b.rr_s * 1000.0, 3))
            for c in (*u.revised, *((u.beat,) if u.beat is not None else ())):
                out.append((c.t, c.rr_ms, c.corrected))
            if u.beat is not None:
                hr.append((u.beat.t, 60000.0 / u.beat.rr_ms))
        send(Beats(t, tuple(out)))

    m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
    beats_until(30.0)  # half a minute of free breathing while the therapist explains
    send(OfferAssessment(30.0, Role.THERAPIST))
    send(Consent(35.0, Role.CLIENT))
    t = 35.0
    end = t + s.total_s() + 1.0
    while s.state.value == "running" and t < end:
        if stop_after_s is not None and t >= 35.0 + stop_after_s:
            send(StopAssessment(t, Role.CLIENT))
            break
        g = s.guidance()
        if g is not None and g.breathing is not None:
            b = g.breathing
            m.set_stimulus(
                exposure=0.0,
                paced_breathing_bpm=b.rate_bpm,
                pacer_t0=g.start_t,
                pacer_inhale_share=b.inhale_s / b.period_s,
            )
        else:
            m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
        t += 1.0
        beats_until(t)
        send(Tick(t))
    return s, inputs, events, hr, true_rate


# ---- recording --------------------------------------------------------------------------------


def input_to_json(inp: AssessmentInput) -> dict[str, Any]:
    d: dict[str, Any] = {"type": type(inp).__name__}
    for k, v in asdict(inp).items():
        d[k] = v.value if isinstance(v, Role) else v
    return d


_TYPES: dict[str, type] = {
    c.__name__: c
    for c in (OfferAssessment, StopAssessment, Consent, Decline, Pause, Tick, Beats, Breathing)
}


def input_from_json(d: dict[str, Any], where: str) -> AssessmentInput:
    """Rebuild one recorded input; `RecordingError` names the line that is wrong."""
    cls = _TYPES.get(str(d.get("type")))
    if cls is None:
        raise RecordingError(f"{where}: unknown input type {d.get('type')!r}")
    kw = {k: v for k, v in d.items() if k != "type"}
    try:
        if "role" in kw:
            kw["role"] = Role(kw["role"])
        if cls is Beats:
            kw["beats"] = tuple((float(a), float(b), bool(c)) for a, b, c in kw["beats"])
        if cls is Breathing:
            kw["samples"] = tuple((float(a), float(b)) for a, b in kw["samples"])
        if kw.get("t") is None:
            kw["t"] = math.nan
        inp: AssessmentInput = cls(**kw)
    except (TypeError, ValueError, KeyError) as exc:
        raise RecordingError(f"{where}: malformed {cls.__name__}: {exc}") from None
    return inp


def event_to_json(e: AssessmentEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "t": e.t,
        "kind": e.kind,
        "actor": e.actor.value,
        "from": e.from_state.value,
        "to": e.to_state.value,
        "reason": e.reason,
        "values": e.values,
    }


def _jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            # NaN (an unreadable stamp the client's stop is taken at) is written as null
            f.write(json.dumps(r, allow_nan=False, default=str) + "\n")


def _finite(d: Any) -> Any:
    if isinstance(d, float) and not math.isfinite(d):
        return None
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_finite(v) for v in d]
    return d


def write_recording(
    folder: Path,
    protocol: AssessmentProtocol,
    inputs: list[AssessmentInput],
    events: list[AssessmentEvent],
    extra: dict[str, Any],
    session: AssessmentSession,
) -> None:
    from biofeedback.signal.resonance import assessment_to_json

    folder.mkdir(parents=True, exist_ok=False)
    _jsonl(folder / "inputs.jsonl", (_finite(input_to_json(i)) for i in inputs))
    _jsonl(folder / "events.jsonl", (_finite(event_to_json(e)) for e in events))
    result = session.result
    meta = {
        "client_id": session.client_id,
        "protocol": _finite(asdict(protocol)),
        "assessment": assessment_to_json(result) if result is not None else None,
        **extra,
    }
    (folder / "result.json").write_text(json.dumps(_finite(meta), indent=2), encoding="utf-8")


def replay_recording(folder: Path) -> tuple[list[AssessmentEvent], list[dict[str, Any]]]:
    """Replay a recorded assessment: (the events the inputs give now, the recorded events)."""
    meta = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    p = meta["protocol"]
    protocol = AssessmentProtocol(
        name=p["name"],
        rates_bpm=tuple(p["rates_bpm"]),
        block_s=p["block_s"],
        rest_s=p["rest_s"],
        settle_s=p["settle_s"],
        inhale_share=p["inhale_share"],
    )
    inputs = []
    lines = (folder / "inputs.jsonl").read_text(encoding="utf-8").splitlines()
    for no, line in enumerate(lines, start=1):
        inputs.append(input_from_json(json.loads(line), f"{folder / 'inputs.jsonl'}, line {no}"))
    _, events = replay(protocol, 0.0, meta["client_id"], inputs, ResonanceScorer())
    recorded = [
        json.loads(x) for x in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return events, recorded


# ---- the chart --------------------------------------------------------------------------------


def plot_assessment(session: AssessmentSession, hr: list[tuple[float, float]], path: Path) -> Path:
    """Per-block bars (combined score, peak-to-trough HR) and HR over the pacer's lung volume."""
    import numpy as np
    from matplotlib.figure import Figure

    from biofeedback.signal.resonance import Pacer

    result = session.result
    fig = Figure(figsize=(11, 6), layout="constrained")
    ax_bar, ax_hr = fig.subplots(2, 1, height_ratios=(1, 1.4))
    if result is not None and result.blocks:
        labels = [f"{b.rate_bpm:g}/min" for b in result.blocks]
        x = np.arange(len(labels))
        comb = [c or 0.0 for c in result.combined]
        p2t = [b.peak_to_trough_bpm or 0.0 for b in result.blocks]
        colors = ["#2a9d8f" if b.rate_bpm == result.rate_bpm else "#8ecae6" for b in result.blocks]
        ax_bar.bar(x - 0.2, comb, 0.4, color=colors, label="combined score (0..1)")
        ax2 = ax_bar.twinx()
        ax2.bar(x + 0.2, p2t, 0.4, color="#f4a261", label="peak-to-trough HR (bpm)")
        ax2.set_ylabel("bpm")
        ax_bar.set_xticks(x, labels)
        ax_bar.set_ylabel("score")
        ax_bar.set_title(
            f"Resonance assessment: {result.rate_bpm:g}/min"
            if result.rate_bpm is not None
            else "Resonance assessment: no usable block"
        )
        ax_bar.legend(loc="lower left")
        ax2.legend(loc="lower right")
    started = session.snapshot().started_t
    if hr and started is not None:
        t = np.array([a for a, _ in hr])
        v = np.array([b for _, b in hr])
        sel = t >= started
        ax_hr.plot((t[sel] - started) / 60.0, v[sel], color="#d62828", lw=0.8, label="heart rate")
        ax_hr.set_ylabel("bpm")
        ax_v = ax_hr.twinx()
        p = session.protocol
        for i, rate in enumerate(p.rates_bpm):
            s0 = started + i * (p.block_s + p.rest_s)
            tt = np.arange(s0, s0 + p.block_s, 0.1)
            if tt[0] > t[-1]:
                break
            vol = Pacer(s0, rate, p.inhale_share).volume(tt)
            ax_v.plot((tt - started) / 60.0, vol, color="#555", lw=0.6, alpha=0.6)
        ax_v.set_ylabel("pacer (lung volume)")
        ax_hr.set_xlabel("minutes since consent")
        ax_hr.legend(loc="upper left")
    try:
        fig.savefig(path, dpi=90, format="png")
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


# ---- the command ------------------------------------------------------------------------------


def run_assessment_demo(
    *,
    root: Path,
    client_id: str,
    seed: int,
    say: Callable[[str], None],
    protocol: AssessmentProtocol | None = None,
    stop_after_s: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DemoRun:
    """Run, record, replay-check, chart and store one simulated assessment under `root`
    (the demo's own data folder)."""
    from biofeedback.service.resonance_store import ResonanceRecord, append_record

    proto = protocol or AssessmentProtocol()
    session, inputs, events, hr, true_rate = simulate_assessment(
        proto, seed=seed, client_id=client_id, stop_after_s=stop_after_s
    )
    date = now()
    folder = root / "assessments" / f"{client_id}-{date.strftime('%Y%m%dT%H%M%SZ')}"
    write_recording(
        folder,
        proto,
        inputs,
        events,
        {"date": date.isoformat(), "simulated_resonance_bpm": true_rate, "seed": seed},
        session,
    )
    again, recorded = replay_recording(folder)
    if [event_to_json(e)["seq"] for e in again] != [r["seq"] for r in recorded] or [
        (e.kind, e.to_state.value) for e in again
    ] != [(r["kind"], r["to"]) for r in recorded]:
        raise RecordingError(f"{folder}: replaying the inputs did not give the recorded events")
    plot_assessment(session, hr, folder / "assessment.png")
    result = session.result
    say(f"simulated client {client_id}: resonance at {true_rate:g}/min (seed {seed})")
    if result is not None:
        for b, c in zip(result.blocks, result.combined, strict=True):
            say(
                f"  {b.rate_bpm:>4g}/min  peak-to-trough {_f(b.peak_to_trough_bpm)} bpm  "
                f"LF peak {_f(b.lf_peak_hz and b.lf_peak_hz * 60)} /min  "
                f"phase {_f(b.phase_deg, 0)} deg  coherence {_f(b.coherence, 2)}  "
                f"smoothness {_f(b.smoothness, 2)}  quality {b.quality:.2f}  "
                f"score {_f(c, 3)}"
            )
        say(
            f"assessed rate: {result.rate_bpm}/min"
            + ("" if result.complete else " (partial assessment)")
        )
        append_record(
            root / "baselines",
            client_id,
            ResonanceRecord(date.isoformat(), folder.name, result),
        )
        say(
            f"stored in the demo client's history ({root / 'baselines'}); the next demo paces at it"
        )
    say(f"recorded to {folder} (replay gives the same {len(events)} events)")
    return DemoRun(folder, true_rate, session, inputs, events, hr)


def _f(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def run_from_args(args: Any, config: Any, say: Callable[[str], None]) -> int:
    """`biofeedback demo --assessment`: in the demo's own data folder, never a real client's."""
    from dataclasses import replace

    from biofeedback.service.demo_data import claim_for_demo, demo_config

    if args.client_id:
        config = replace(config, client_id=args.client_id)
    cfg = demo_config(config, args.data_dir)
    claim_for_demo(cfg.recording_dir)  # refuses a folder holding real sessions
    root = cfg.recording_dir.parent
    run_assessment_demo(
        root=root,
        client_id=cfg.client_id,
        seed=args.seed,
        say=say,
        stop_after_s=args.duration,
    )
    return 0
