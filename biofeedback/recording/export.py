"""BIDS-style export of a recorded session (layout and choices in docs/recording.md).

    <out>/dataset_description.json, README, participants.tsv
    <out>/sub-<c>/ses-<s>/beh/sub-<c>_ses-<s>_task-exposure_events.tsv (+ .json)
    <out>/sub-<c>/ses-<s>/beh/sub-<c>_ses-<s>_task-exposure_recording-cardiac_physio.tsv.gz
        (+ .json)
    <out>/sub-<c>/ses-<s>/beh/sub-<c>_ses-<s>_task-exposure_recording-ecg_physio.tsv.gz
        (+ .json; only when the strap streamed raw ECG)
    <out>/sub-<c>/ses-<s>/beh/sub-<c>_ses-<s>_task-exposure_recording-acc_physio.tsv.gz
        (+ .json; only when the strap streamed chest acceleration)
    <out>/sourcedata/sub-<c>/ses-<s>/   the original recording, raw bytes and all

No imaging, so the data type folder is `beh`. BIDS physio files must be uniformly sampled: beat
data are resampled to 4 Hz by sample-and-hold (each sample carries the latest value known at that
time, as the live session saw it; `n/a` inside signal gaps), with a `cardiac_beat` column marking
the samples in which an R peak fell. The beat-exact series stay in `sourcedata/`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeedback import __version__
from biofeedback.errors import RecordingError
from biofeedback.recording.reader import RecordingInfo, open_session
from biofeedback.recording.schema import dump_json
from biofeedback.recording.summary import SessionSummary, summarize

log = logging.getLogger(__name__)

SAMPLING_HZ = 4.0
GAP_S = 5.0  # no beat for longer than this: physio samples are n/a (as the signal pipeline)
TASK = "exposure"


def bids_label(value: str) -> str:
    """A BIDS label (letters and digits only) from a client or session id."""
    label = re.sub(r"[^A-Za-z0-9]", "", value)
    if not label:
        raise RecordingError(f"{value!r} has no letters or digits to make a BIDS label from")
    return label


def _hold(
    t_src: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    grid: npt.NDArray[np.float64],
    *,
    keep_unknown: bool = False,
) -> npt.NDArray[np.float64]:
    """Latest value at or before each grid time; NaN before the first and after a gap.

    Rows without a value are skipped (a rejected RR does not blank the series) unless
    `keep_unknown`: an unknown arousal stays unknown until the next estimate.
    """
    ok = np.isfinite(t_src) if keep_unknown else np.isfinite(t_src) & np.isfinite(v)
    t_src, v = t_src[ok], v[ok]
    idx = np.searchsorted(t_src, grid, side="right") - 1
    out = np.full(grid.shape, np.nan)
    has = idx >= 0
    out[has] = v[idx[has]]
    stale = has & (grid - t_src[np.clip(idx, 0, None)] > GAP_S)
    out[stale] = np.nan
    return out


def _num_cell(x: float) -> str:
    return "n/a" if not np.isfinite(x) else repr(float(x))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_bids(session_dir: Path, out_dir: Path) -> Path:
    """Export one recording into the BIDS-style dataset at `out_dir` (created or added to);
    returns the session's `beh` folder."""
    info = open_session(session_dir)
    s = summarize(info)
    sub, ses = bids_label(info.client_id), bids_label(info.session_id)
    out_dir = Path(out_dir)
    beh = out_dir / f"sub-{sub}" / f"ses-{ses}" / "beh"
    stem = f"sub-{sub}_ses-{ses}_task-{TASK}"
    try:
        beh.mkdir(parents=True, exist_ok=True)
        _dataset_files(out_dir, sub)
        _events(info, s, beh / f"{stem}_events.tsv")
        _physio(info, s.start_t, beh / f"{stem}_recording-cardiac_physio.tsv.gz")
        _ecg_physio(info, s.start_t, beh / f"{stem}_recording-ecg_physio.tsv.gz")
        _acc_physio(info, s.start_t, beh / f"{stem}_recording-acc_physio.tsv.gz")
        src = out_dir / "sourcedata" / f"sub-{sub}" / f"ses-{ses}"
        if src.exists():
            shutil.rmtree(src)
        shutil.copytree(info.path, src)
    except OSError as exc:
        raise RecordingError(f"cannot export to {out_dir}: {exc}") from exc
    log.info("exported %s to %s", session_dir, beh)
    return beh


def _dataset_files(out: Path, sub: str) -> None:
    desc = out / "dataset_description.json"
    if not desc.exists():
        _write_json(
            desc,
            {
                "Name": "biofeedback exposure sessions",
                "BIDSVersion": "1.9.0",
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "biofeedback", "Version": __version__}],
            },
        )
    readme = out / "README"
    if not readme.exists():
        readme.write_text(
            "Heart-rate biofeedback during paced, consent-driven exposure sessions, exported by\n"
            "biofeedback. Participant ids are pseudonyms. beh/*_physio: 4 Hz sample-and-hold of\n"
            "beat data; beh/*_events: session states, pauses, check-ins; sourcedata/: the\n"
            "original recordings with raw strap bytes. Not a medical device.\n",
            encoding="utf-8",
        )
    parts = out / "participants.tsv"
    have = parts.read_text(encoding="utf-8").splitlines() if parts.exists() else ["participant_id"]
    if f"sub-{sub}" not in have:
        have.append(f"sub-{sub}")
        parts.write_text("\n".join(have) + "\n", encoding="utf-8")


_EVENT_COLUMNS = {
    "onset": ("s", "seconds since the session start (start_t of the recording's sidecar)"),
    "duration": ("s", "length of a state interval; 0 for instantaneous events"),
    "trial_type": ("", "state (an interval in one session state) or the event kind"),
    "state": ("", "session state of a state interval"),
    "step": ("", "exposure step index, when known"),
    "actor": ("", "client, therapist or system"),
    "from_state": ("", "state before the event"),
    "to_state": ("", "state after the event"),
    "reason": ("", "why it happened"),
    "suds": ("", "SUDS answer 0-100 of a check-in"),
    "values": ("", "the event's values as JSON"),
}


def _events(info: RecordingInfo, s: SessionSummary, path: Path) -> None:
    rows: list[tuple[float, int, list[str]]] = []
    na = "n/a"
    for iv in s.intervals:
        iv_step = na if iv.step is None else str(iv.step)
        cells = [repr(iv.start - s.start_t), repr(iv.end - iv.start), "state", iv.state, iv_step]
        rows.append((iv.start, 0, [*cells, na, na, na, na, na, na]))
    for ev in info.events():
        vals = ev["values"] if isinstance(ev["values"], dict) else {}
        step = vals.get("step")
        suds = vals.get("suds") if ev["kind"] == "checkin" else None
        cells = [
            repr(float(ev["t"]) - s.start_t),
            "0.0",
            _clean(ev["kind"]),
            na,
            str(step) if isinstance(step, int) else na,
            _clean(ev["actor"]),
            _clean(ev["from_state"]),
            _clean(ev["to_state"]),
            _clean(ev["reason"]),
            str(suds) if isinstance(suds, int) else na,
            _clean(dump_json(vals)),
        ]
        rows.append((float(ev["t"]), 1, cells))
    rows.sort(key=lambda r: (r[0], r[1]))
    lines = ["\t".join(_EVENT_COLUMNS)] + ["\t".join(c) for _, _, c in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_json(
        path.with_suffix(".json"),
        {
            name: {"Description": d, **({"Units": u} if u else {})}
            for name, (u, d) in _EVENT_COLUMNS.items()
        }
        | {
            "trial_type": {
                "Description": _EVENT_COLUMNS["trial_type"][1],
                "Levels": {
                    "state": "an interval the session spent in one state (see state)",
                    "transition": "a change of session state",
                    "checkin": "the client's SUDS answer",
                    "checkin_due": "a SUDS check-in was requested",
                    "guidance": "grounding guidance started",
                    "thresholds": "the therapist changed the arousal thresholds",
                },
            }
        },
    )


def _clean(v: Any) -> str:
    text = "n/a" if v is None else str(v)
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ") or "n/a"


_PHYSIO_COLUMNS = {
    "hr_bpm": ("bpm", "instantaneous heart rate of the latest beat"),
    "rr_ms": ("ms", "latest RR interval used for metrics (after artifact correction)"),
    "rmssd_ms": ("ms", "RMSSD over the short window, as computed live"),
    "arousal": ("", "arousal estimate 0-100 as computed live (n/a: unknown)"),
    "cardiac_beat": ("", "1 in the sample in which an R peak (beat) fell, else 0"),
}


def _physio(info: RecordingInfo, start_t: float, path: Path) -> None:
    beats, metrics, arousal = info.beats(), info.metrics(), info.arousal()
    bt = beats["t"]
    columns = list(_PHYSIO_COLUMNS)
    if bt.size:
        t0 = float(bt[0])
        n = int(np.floor((float(bt[-1]) - t0) * SAMPLING_HZ)) + 1
        grid = t0 + np.arange(n) / SAMPLING_HZ
    else:
        t0, grid = start_t, np.zeros(0)
    data = [
        _hold(bt, beats["hr_bpm"], grid),
        _hold(bt, beats["rr_ms"], grid),
        _hold(metrics["t"], metrics["short_rmssd_ms"], grid),
        _hold(arousal["t"], arousal["value"], grid, keep_unknown=True),
    ]
    marks = np.zeros(grid.shape)
    if bt.size:
        k = np.floor((bt[np.isfinite(beats["rr_ms"])] - t0) * SAMPLING_HZ).astype(int)
        marks[np.clip(k, 0, len(grid) - 1)] = 1
    data.append(marks)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        for i in range(len(grid)):
            f.write("\t".join(_num_cell(col[i]) for col in data) + "\n")
    _write_json(
        Path(str(path).removesuffix(".tsv.gz") + ".json"),
        {
            "SamplingFrequency": SAMPLING_HZ,
            "StartTime": t0 - start_t,
            "Columns": columns,
            "Manufacturer": (info.meta.get("device") or {}).get("manufacturer")
            if isinstance(info.meta.get("device"), dict)
            else None,
            "Description": (
                "Beat-derived series resampled at 4 Hz by sample-and-hold; n/a inside signal gaps "
                f"longer than {GAP_S:g} s. Beat-exact data in sourcedata/."
            ),
        }
        | {
            name: {"Units": u, "Description": d} if u else {"Description": d}
            for name, (u, d) in _PHYSIO_COLUMNS.items()
        },
    )


def _uniform_grid(
    info: RecordingInfo, table: str, t: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], float]:
    """Samples (rows of `values`) on a uniform grid at their median period; missing ones NaN.

    BIDS physio files must be uniformly sampled: samples the strap took that never arrived
    (pmd.tsv gaps) become NaN rows, so the grid stays uniform across gaps.
    """
    period = float(np.median(np.diff(t)))
    if not period > 0:
        raise RecordingError(f"{info.path}: {table} sample times do not increase")
    k = np.rint((t - t[0]) / period).astype(int)
    series = np.full((int(k[-1]) + 1, values.shape[1]), np.nan)
    series[k] = values
    return series, period


def _write_physio(
    path: Path, series: npt.NDArray[np.float64], fmt: str, sidecar: dict[str, Any]
) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        for row in series:
            f.write("\t".join("n/a" if np.isnan(v) else format(v, fmt) for v in row) + "\n")
    _write_json(Path(str(path).removesuffix(".tsv.gz") + ".json"), sidecar)


def _ecg_physio(info: RecordingInfo, start_t: float, path: Path) -> None:
    """The strap's raw ECG (ecg.tsv) as a BIDS physio file at its own measured rate.

    Lost samples are `n/a` (`_uniform_grid`). Nothing is written for a recording without raw ECG.
    """
    rows = info.rows("ecg")
    if len(rows) < 2:
        return
    t = np.array([r["t"] for r in rows], dtype=float)
    mv = np.array([[r["uv"]] for r in rows], dtype=float) / 1000.0
    series, period = _uniform_grid(info, "ecg.tsv", t, mv)
    _write_physio(
        path,
        series,
        ".3f",
        {
            "SamplingFrequency": round(1.0 / period, 4),
            "StartTime": float(t[0]) - start_t,
            "Columns": ["cardiac"],
            "cardiac": {
                "Units": "mV",
                "Description": "ECG of the chest strap (its own electrodes), as it sent it",
            },
            "Description": (
                "The strap's raw ECG (Polar PMD), on a uniform grid at its measured rate; n/a "
                "for samples the strap took that never arrived. The notifications' bytes and "
                "per-sample times are in sourcedata/ (pmd.tsv, ecg.tsv)."
            ),
        },
    )


def _acc_physio(info: RecordingInfo, start_t: float, path: Path) -> None:
    """The strap's chest acceleration as a BIDS physio file (x, y, z in g) at its measured rate.

    The recording keeps acceleration only as the notifications' bytes (pmd.tsv), so they are
    decoded again here by the live decoder and timing (`pmd_readings_of`), exactly as replay
    does. Lost samples are `n/a`. Nothing is written for a recording without acceleration.
    """
    # Imported here: the decoder lives in devices, needed only for recordings with raw data.
    from biofeedback.devices.pmd_readings import AccSamples
    from biofeedback.recording.pmd_replay import pmd_readings_of

    times: list[float] = []
    mg: list[tuple[int, int, int]] = []
    for r in pmd_readings_of(info):
        if isinstance(r, AccSamples):
            times += r.t
            mg += r.mg
    if len(times) < 2:
        return
    t = np.array(times, dtype=float)
    g = np.array(mg, dtype=float) / 1000.0
    series, period = _uniform_grid(info, "pmd.tsv acceleration", t, g)
    axis = {"Units": "g", "Description": ""}
    _write_physio(
        path,
        series,
        ".4f",
        {
            "SamplingFrequency": round(1.0 / period, 4),
            "StartTime": float(t[0]) - start_t,
            "Columns": ["accel_x", "accel_y", "accel_z"],
            **{
                f"accel_{a}": {**axis, "Description": f"chest strap acceleration, sensor {a} axis"}
                for a in "xyz"
            },
            "Description": (
                "The strap's raw chest acceleration (Polar PMD ACC), decoded from the recorded "
                "notification bytes, on a uniform grid at its measured rate; n/a for samples "
                "the strap took that never arrived. The bytes are in sourcedata/ (pmd.tsv)."
            ),
        },
    )
