"""Session and client reports: an HTML page with PNG plots (matplotlib, Agg, imported lazily).

`write_report(session_dir, out_dir)`: HR, RMSSD and arousal over time with steps, pauses and
recoveries marked; time to recover per pause; SUDS before/after each step; breathing coherence
during guidance. `write_client_report(root, client_id, out_dir)`: progress across sessions.
The pages are self-contained (no scripts, no CDN) and link their PNGs by relative path.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biofeedback.errors import RecordingError
from biofeedback.recording.reader import RecordingInfo, list_sessions, open_session
from biofeedback.recording.summary import SessionSummary, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

_EXPOSING = "#f4a261"
_PAUSED = "#8ecae6"
_PAUSE_LINE = "#d62828"
_RECOVER_LINE = "#2a9d8f"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
.warn { background: #fff3cd; padding: 0.5em 1em; border-left: 4px solid #e0a800; }
.note { color: #666; font-size: 0.9em; }
"""


def _figure(rows: int = 1, height: float = 3.0) -> Figure:
    from matplotlib.figure import Figure

    # A bare Figure renders with Agg on savefig: no pyplot, no global backend switch.
    return Figure(figsize=(11, height * rows), layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    try:
        fig.savefig(path, dpi=100, format="png")
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def _minutes(t: Any, start: float) -> Any:
    return (np.asarray(t, dtype=float) - start) / 60.0


def _mark_session(ax: Axes, s: SessionSummary, label_steps: bool) -> None:
    for iv in s.intervals:
        x0, x1 = (iv.start - s.start_t) / 60, (iv.end - s.start_t) / 60
        if iv.state == "exposing":
            ax.axvspan(x0, x1, color=_EXPOSING, alpha=0.25, lw=0)
            if label_steps and iv.step is not None:
                ax.text(
                    x0,
                    1.0,
                    f" step {iv.step + 1}",  # steps from 1 for people (indices from 0)
                    transform=ax.get_xaxis_transform(),
                    va="top",
                    fontsize=8,
                    color="#7a3e00",
                )
        elif iv.state in ("paused", "grounding"):
            ax.axvspan(x0, x1, color=_PAUSED, alpha=0.25, lw=0)
    for p in s.pauses:
        ax.axvline((p.t - s.start_t) / 60, color=_PAUSE_LINE, lw=1, ls="--")
        if p.recovered_t is not None:
            ax.axvline((p.recovered_t - s.start_t) / 60, color=_RECOVER_LINE, lw=1, ls=":")


def _plot_timeline(info: RecordingInfo, s: SessionSummary, path: Path) -> Path:
    beats, metrics, arousal = info.beats(), info.metrics(), info.arousal()
    fig = _figure(3, 2.6)
    axes = fig.subplots(3, 1, sharex=True)
    # HR from the cleaned RR (artifacts corrected), as the metrics use it; strap HR if no RR.
    rr = beats["rr_ms"]
    hr = np.where(np.isfinite(rr) & (rr > 0), 60000.0 / np.where(rr > 0, rr, 1.0), beats["hr_bpm"])
    series = (
        (beats["t"], hr, "HR (bpm)", "#c1121f"),
        (metrics["t"], metrics["short_rmssd_ms"], "RMSSD (ms)", "#1d3557"),
        (arousal["t"], arousal["value"], "arousal (0-100)", "#6a4c93"),
    )
    for i, (ax, (t, y, label, color)) in enumerate(zip(axes, series, strict=True)):
        ok = np.isfinite(y)
        if ok.any():
            ax.plot(_minutes(t[ok], s.start_t), y[ok], lw=0.8, color=color)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        _mark_session(ax, s, label_steps=i == 0)
    if s.upper is not None:
        axes[2].axhline(s.upper, color=_PAUSE_LINE, lw=0.8, alpha=0.7)
    if s.lower is not None:
        axes[2].axhline(s.lower, color=_RECOVER_LINE, lw=0.8, alpha=0.7)
    axes[2].set_xlabel("minutes since start")
    axes[0].set_title(
        "orange: exposing; blue: paused/grounding; red dashes: pause; green dots: recovered"
    )
    return _save(fig, path)


def _plot_recovery(s: SessionSummary, path: Path) -> Path:
    fig = _figure(1, 3.0)
    ax = fig.subplots()
    if not s.pauses:
        _empty(ax, "no pauses in this session")
    else:
        labels = [f"{i + 1}\n{p.reason or '?'}" for i, p in enumerate(s.pauses)]
        vals = [p.time_to_recover_s if p.time_to_recover_s is not None else 0 for p in s.pauses]
        colors = ["#2a9d8f" if p.time_to_recover_s is not None else "#bbb" for p in s.pauses]
        ax.bar(range(len(vals)), vals, color=colors)
        ax.set_xticks(range(len(vals)), labels)
        ax.set_ylabel("time to recover (s)")
        ax.set_title("time from each pause to recovery (grey: did not recover in the session)")
    return _save(fig, path)


def _plot_suds(s: SessionSummary, path: Path) -> Path:
    fig = _figure(1, 3.0)
    ax = fig.subplots()
    if not s.step_suds and not s.suds:
        _empty(ax, "no SUDS check-ins in this session")
    elif s.step_suds:
        x = np.arange(len(s.step_suds))
        before = [np.nan if v.before is None else v.before for v in s.step_suds]
        after = [np.nan if v.after is None else v.after for v in s.step_suds]
        ax.bar(x - 0.2, before, 0.4, label="before", color="#f4a261")
        ax.bar(x + 0.2, after, 0.4, label="after", color="#2a9d8f")
        ax.set_xticks(x, [f"step {v.step + 1}" for v in s.step_suds])
        ax.set_ylim(0, 100)
        ax.set_ylabel("SUDS (0-100)")
        ax.legend(loc="upper right")
        ax.set_title("SUDS before and after each step")
    else:
        ax.plot(_minutes([q.t for q in s.suds], s.start_t), [q.value for q in s.suds], "o-")
        ax.set_ylim(0, 100)
        ax.set_xlabel("minutes since start")
        ax.set_ylabel("SUDS (0-100)")
        ax.set_title("SUDS answers (none tied to a step)")
    return _save(fig, path)


def _plot_coherence(info: RecordingInfo, s: SessionSummary, path: Path) -> Path:
    freq = info.frequency()
    fig = _figure(1, 3.0)
    ax = fig.subplots()
    ok = np.isfinite(freq["coherence"])
    if not ok.any():
        _empty(ax, "no breathing coherence computed in this session")
    else:
        ax.plot(_minutes(freq["t"][ok], s.start_t), freq["coherence"][ok], lw=0.8, color="#264653")
        for b in s.guidance:
            ax.axvspan(
                (b.start - s.start_t) / 60, (b.end - s.start_t) / 60, color=_PAUSED, alpha=0.3, lw=0
            )
        ax.set_ylim(0, 1)
        ax.set_xlabel("minutes since start")
        ax.set_ylabel("coherence (0-1)")
        ax.set_title("breathing coherence at the paced rate (blue: guidance)")
    return _save(fig, path)


def _fmt(v: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}{unit}"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_report(session_dir: Path, out_dir: Path) -> Path:
    """Write `out_dir/report.html` and its PNGs for one recorded session; returns the HTML path."""
    from biofeedback.recording.resonance_report import session_section as resonance_session_section

    info = open_session(session_dir)
    s = summarize(info)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    pngs = [
        _plot_timeline(info, s, out_dir / "timeline.png"),
        _plot_recovery(s, out_dir / "recovery.png"),
        _plot_suds(s, out_dir / "suds.png"),
        _plot_coherence(info, s, out_dir / "coherence.png"),
    ]
    device = info.meta.get("device")
    device_name = device.get("name") if isinstance(device, dict) else device
    overview = [
        ("client", s.client_id),
        ("session", s.session_id),
        ("start", _clock(s.start_t)),
        ("duration", f"{s.duration_s / 60:.1f} min"),
        ("device", str(device_name or "n/a")),
        ("beats", str(s.n_beats)),
        (
            "corrected beats",
            _fmt(None if s.corrected_share is None else 100 * s.corrected_share, " %"),
        ),
        ("rejected inputs", str(s.rejected)),
        ("mean HR", _fmt(s.hr_mean_bpm, " bpm")),
        ("mean RMSSD", _fmt(s.rmssd_mean_ms, " ms")),
        ("mean arousal while exposing", _fmt(s.arousal_mean_exposing)),
        ("peak arousal", _fmt(s.arousal_peak)),
        ("steps started / completed", f"{len(s.steps_started)} / {len(s.steps_completed)}"),
        ("pauses", str(len(s.pauses))),
        ("thresholds upper / lower", f"{_fmt(s.upper)} / {_fmt(s.lower)}"),
    ]
    pauses = [
        (
            str(i + 1),
            f"{(p.t - s.start_t) / 60:.1f} min",
            p.reason or "?",
            p.actor,
            "n/a" if p.step is None else str(p.step + 1),
            _fmt(p.time_to_recover_s, " s") if p.recovered_t is not None else "did not recover",
        )
        for i, p in enumerate(s.pauses)
    ]
    suds = [
        (
            f"{(q.t - s.start_t) / 60:.1f} min",
            str(q.value),
            ", ".join(q.prompts) or "unprompted",
            "n/a" if q.step is None else str(q.step + 1),
        )
        for q in s.suds
    ]
    bouts = [
        (
            f"{(b.start - s.start_t) / 60:.1f} min",
            f"{(b.end - b.start):.0f} s",
            b.technique,
            _fmt(b.coherence_mean, digits=2),
            str(b.coherence_n),
        )
        for b in s.guidance
    ]
    warn = ""
    if s.incomplete and (info.status != "complete" or info.partial_lines):
        parts = [f"status {info.status!r}", *list(info.partial_lines)]
        warn = (
            '<p class="warn">This recording is incomplete (the service stopped without closing '
            f"it): shown up to its last flush. {html.escape('; '.join(parts))}</p>"
        )
    gaps = info.gaps()
    if gaps:
        lost = "; ".join(
            f"{g['rows']} {g['table']} {g['kind']} row(s) from {_clock(g['from_t'])} "
            f"to {_clock(g['to_t'])}"
            for g in gaps
        )
        warn += (
            '<p class="warn">Rows were dropped while the disk was full (gaps.tsv): '
            f"{html.escape(lost)}. {html.escape(str(gaps[0]['reason']))}</p>"
        )
    imgs = "".join(
        f'<h2>{html.escape(title)}</h2><p><img src="{p.name}" alt="{html.escape(title)}"></p>'
        for title, p in zip(
            ("HR, RMSSD and arousal", "Time to recover", "SUDS", "Breathing coherence"),
            pngs,
            strict=True,
        )
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Session {html.escape(s.session_id)} of {html.escape(s.client_id)}</title>
<style>{_CSS}</style></head><body>
<h1>Session {html.escape(s.session_id)} of {html.escape(s.client_id)}</h1>
<p class="note">biofeedback session report. Not a medical device and not a diagnosis.</p>
{warn}
{_table(("", ""), overview)}
{imgs}
<h2>Pauses</h2>
{
        _table(("#", "at", "reason", "by", "step", "time to recover"), pauses)
        if pauses
        else "<p>No pauses.</p>"
    }
<h2>SUDS check-ins</h2>
{_table(("at", "SUDS", "prompt", "step"), suds) if suds else "<p>No check-ins.</p>"}
<h2>Guidance</h2>
{
        _table(("from", "length", "technique", "mean coherence", "spectra"), bouts)
        if bouts
        else "<p>No guidance.</p>"
    }
{resonance_session_section(session_dir)}
</body></html>
"""
    out = _write(out_dir / "report.html", page)
    log.info("report for %s written to %s", session_dir, out)
    return out


def _plot_progress(sums: list[SessionSummary], path: Path) -> Path:
    fig = _figure(2, 2.8)
    axes = fig.subplots(2, 2).ravel()
    x = np.arange(len(sums))
    labels = [s.session_id[:8] for s in sums]

    def series(vals: list[float | None]) -> Any:
        return np.array([np.nan if v is None else v for v in vals], dtype=float)

    panels: tuple[tuple[str, Any], ...] = (
        ("pauses per session", series([float(len(s.pauses)) for s in sums])),
        (
            "mean time to recover (s)",
            series(
                [float(np.mean(s.recovery_times_s)) if s.recovery_times_s else None for s in sums]
            ),
        ),
        ("mean arousal while exposing", series([s.arousal_mean_exposing for s in sums])),
        (
            "mean SUDS after steps",
            series(
                [
                    float(np.mean([v.after for v in s.step_suds if v.after is not None]))
                    if any(v.after is not None for v in s.step_suds)
                    else None
                    for s in sums
                ]
            ),
        ),
    )
    for ax, (title, y) in zip(axes, panels, strict=True):
        if np.isfinite(y).any():
            ax.plot(x, y, "o-", color="#1d3557")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xticks(x, labels, rotation=30, fontsize=8)
    return _save(fig, path)


def write_client_report(
    root: Path, client_id: str, out_dir: Path, resonance: Sequence[Any] | None = None
) -> Path:
    """Write `out_dir/client-<id>.html` (progress across the client's sessions, replays
    excluded) with a report per session in `out_dir/<session_id>/`; returns the HTML path.
    `resonance`: the client's resonance assessments (`ResonanceRecord`s, oldest first), shown
    as their own section when given (docs/resonance.md)."""
    out_dir = Path(out_dir)
    sessions = [
        p for p in list_sessions(root, client_id) if "replay_of" not in open_session(p).meta
    ]
    if not sessions:
        raise RecordingError(f"no recorded sessions of client {client_id!r} under {root}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    sums: list[SessionSummary] = []
    rows = []
    for p in sessions:
        s = summarize(open_session(p))
        sums.append(s)
        write_report(p, out_dir / p.name)
        rec = s.recovery_times_s
        rows.append(
            (
                s.session_id,
                _clock(s.start_t),
                f"{s.duration_s / 60:.1f} min",
                f"{len(s.steps_started)} / {len(s.steps_completed)}",
                str(len(s.pauses)),
                _fmt(float(np.mean(rec)) if rec else None, " s"),
                _fmt(s.arousal_mean_exposing),
                _fmt(s.arousal_peak),
                "incomplete" if s.incomplete else "complete",
            )
        )
    png = _plot_progress(sums, out_dir / f"progress-{client_id}.png")
    links = "".join(
        f'<li><a href="{html.escape(p.name)}/report.html">{html.escape(p.name)}</a></li>'
        for p in sessions
    )
    head = (
        "session",
        "start",
        "length",
        "steps started / done",
        "pauses",
        "mean recovery",
        "mean arousal exposing",
        "peak arousal",
        "recording",
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Progress of {html.escape(client_id)}</title><style>{_CSS}</style></head><body>
<h1>Progress of {html.escape(client_id)} across {len(sessions)} session(s)</h1>
<p class="note">biofeedback progress report. Not a medical device and not a diagnosis.</p>
<p><img src="{png.name}" alt="progress across sessions"></p>
{_table(head, rows)}
{_resonance(resonance, out_dir, client_id)}
<h2>Session reports</h2><ul>{links}</ul>
</body></html>
"""
    return _write(out_dir / f"client-{client_id}.html", page)


def _resonance(records: Sequence[Any] | None, out_dir: Path, client_id: str) -> str:
    if records is None:
        return ""
    from biofeedback.recording.resonance_report import resonance_section

    return resonance_section(records, out_dir, client_id)
