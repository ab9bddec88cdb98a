"""The resonance assessments in the client's progress report: the rate across assessments and the
newest assessment's per-block scores (docs/resonance.md). matplotlib is imported lazily."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from biofeedback.errors import RecordingError
from biofeedback.signal.resonance import Assessment, ResonanceRecord


def _f(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def plot_history(records: Sequence[ResonanceRecord], path: Path) -> Path:
    """The assessed rate per assessment (left) and the newest one's per-block bars (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.2), layout="constrained")
    ax_rate, ax_bar = fig.subplots(1, 2)
    dates = [r.date[:10] for r in records]
    rates = [r.assessment.rate_bpm for r in records]
    xs = list(range(len(records)))
    ax_rate.plot(
        [x for x, r in zip(xs, rates, strict=True) if r is not None],
        [r for r in rates if r is not None],
        "o-",
        color="#2a9d8f",
    )
    ax_rate.set_xticks(xs, dates, rotation=30, fontsize=8)
    ax_rate.set_ylabel("breaths/min")
    ax_rate.set_ylim(4.0, 7.0)
    ax_rate.set_title("assessed resonance rate")
    newest: Assessment = records[-1].assessment
    labels = [f"{b.rate_bpm:g}" for b in newest.blocks]
    comb = [c or 0.0 for c in newest.combined]
    colors = ["#2a9d8f" if b.rate_bpm == newest.rate_bpm else "#8ecae6" for b in newest.blocks]
    ax_bar.bar(labels, comb, color=colors)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_xlabel("paced rate (breaths/min)")
    ax_bar.set_title(f"newest assessment ({dates[-1]}): combined score per block")
    try:
        fig.savefig(path, dpi=100, format="png")
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def resonance_section(records: Sequence[ResonanceRecord], out_dir: Path, client_id: str) -> str:
    """HTML for the progress report (empty list: a line saying none was done)."""
    if not records:
        return (
            '<h2>Resonance breathing rate</h2><p class="note">No resonance assessment yet: '
            "the pacer uses the protocol's rate.</p>"
        )
    png = plot_history(records, out_dir / f"resonance-{client_id}.png")
    rows = []
    for r in records:
        a = r.assessment
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(c)}</td>"
                for c in (
                    r.date[:16].replace("T", " "),
                    "-" if a.rate_bpm is None else f"{a.rate_bpm:g}/min",
                    "complete" if a.complete else "partial",
                    f"{len(a.blocks)} / {len(a.planned_rates_bpm)}",
                    f"{a.quality:.2f}",
                    r.session,
                )
            )
            + "</tr>"
        )
    newest = records[-1].assessment
    brows = []
    for b, c in zip(newest.blocks, newest.combined, strict=True):
        brows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(x)}</td>"
                for x in (
                    f"{b.rate_bpm:g}",
                    _f(b.peak_to_trough_bpm),
                    _f(b.lf_peak_hz * 60 if b.lf_peak_hz is not None else None),
                    _f(b.lf_ms2, 0),
                    _f(b.phase_deg, 0) + f" ({b.phase_source})",
                    _f(b.coherence, 2),
                    _f(b.smoothness, 2),
                    f"{b.quality:.2f}" + ("" if b.usable else " (not used)"),
                    _f(c, 3),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("date", "rate", "run", "blocks", "signal quality", "recorded in")
    )
    bhead = "".join(
        f"<th>{h}</th>"
        for h in (
            "paced rate /min",
            "peak-to-trough HR (bpm)",
            "LF peak /min",
            "LF power (ms²)",
            "HR-breathing phase (deg)",
            "coherence",
            "smoothness",
            "quality",
            "combined score",
        )
    )
    return f"""<h2>Resonance breathing rate</h2>
<p class="note">Each assessment paces the client through slow breathing rates and scores each
block (docs/resonance.md). The newest rate is the pacer's default.</p>
<p><img src="{html.escape(png.name)}" alt="resonance assessments"></p>
<table><tr>{head}</tr>{"".join(rows)}</table>
<h3>Newest assessment, per block</h3>
<table><tr>{bhead}</tr>{"".join(brows)}</table>
"""


def session_section(session_dir: Path) -> str:
    """The breathing-rate check run in one recorded session (its `assessment_*` rows of
    events.tsv): every scored block's criteria and how it ended; "" when none ran."""
    from biofeedback.recording.reader import iter_rows, table_path
    from biofeedback.recording.schema import EVENTS

    rows = [
        r
        for r in iter_rows(table_path(session_dir, EVENTS), EVENTS)
        if str(r["kind"] or "").startswith("assessment_")
    ]
    if not rows:
        return ""
    start = next((r for r in rows if r["to_state"] == "running"), None)
    blocks: list[tuple[str, ...]] = []
    ends: list[str] = []
    for r in rows:
        values = r["values"] if isinstance(r["values"], dict) else {}
        if r["kind"] == "assessment_block_scored":
            b = values.get("score") or {}
            hz = b.get("lf_peak_hz")
            blocks.append(
                (
                    _f(b.get("rate_bpm")),
                    _f(b.get("peak_to_trough_bpm")),
                    _f(None if hz is None else 60.0 * hz, 2),
                    _f(b.get("phase_deg"), 0),
                    _f(b.get("coherence"), 2),
                    _f(b.get("smoothness"), 2),
                    _f(b.get("quality"), 2),
                    ("yes" if b.get("usable") else "no")
                    + (" (up to the stop)" if values.get("partial") else ""),
                )
            )
        elif r["kind"] == "assessment_transition" and r["to_state"] in ("done", "stopped"):
            rate = values.get("rate_bpm")
            how = "all blocks done" if r["to_state"] == "done" else f"stopped by the {r['actor']}"
            ends.append(
                f"{how}: "
                + ("no usable block, no rate chosen" if rate is None else f"rate {_f(rate)} /min")
            )
    head = ("rate /min", "HR peak-trough", "LF peak /min", "phase deg", "coherence",
            "smoothness", "quality", "usable")  # fmt: skip
    table = (
        "<table><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in blocks
        )
        + "</table>"
        if blocks
        else "<p>No block was scored.</p>"
    )
    began = (
        "<p>Offered, never started (the client did not agree).</p>"
        if start is None
        else "<p>Started on the client's consent.</p>"
    )
    outcome = "".join(f"<p>{html.escape(e)}.</p>" for e in ends) or "<p>Still running.</p>"
    return f"<h2>Breathing-rate check</h2>{began}{table}{outcome}"
