"""Score the artifact stage on real and synthetic series: false corrections and sensitivity.

Run: .venv/bin/python bench/score_artifacts.py [--old REV] [--beats N]
Prints the Markdown tables of docs/arousal.md ("Artifacts: measured"). Needs ../shared/data.

* False positives: the share of normal beats corrected (by the detector; "screened" also counts
  beats the intake screen held out, whatever the detector said later).
* Sensitivity: the share of annotated ectopic beats (V, S, F, A; the interval ending at the
  beat) corrected. The interval right after an ectopic beat (the compensatory pause) is neither
  normal nor ectopic in the scoring.
* `--old REV` also runs the pipeline of an earlier commit (neurokit2's detector on a rolling
  64-beat buffer) from `git archive`, in a subprocess, for the side-by-side columns.
* `--classes` also prints, for 14157 and 15814, the ectopic beats corrected by how premature they
  are against their centred 11-beat median, and the opening quadrigeminy of 15814 (its first 200
  beats); `--agreement` the label-by-label agreement with neurokit2 (`judge_segment` on whole µs,
  as `tests/hrv/test_native_artifacts.py` compares them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biofeedback.signal import SignalConfig, compute_offline  # noqa: E402
from biofeedback.signal.synthetic import paced_breathing_series  # noqa: E402
from tests.hrv.test_native_artifacts import nk_labels  # noqa: E402  (the tests' reference labels)

DATA = ROOT.parent / "shared" / "data"
LTDB = ("14046", "14134", "14149", "14157", "14172", "14184", "15814")


def annotated(beats: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RR ms, label of the beat closing each interval) of the annotated records."""
    import wfdb

    out = []
    a = wfdb.rdann(str(DATA / "mitdb-100" / "100"), "atr")
    sym = np.array(a.symbol)
    keep = np.isin(sym, ["N", "A", "V"])
    s, sym = a.sample[keep], sym[keep]
    out.append(("MIT-BIH 100", np.diff(s) / 360.0 * 1000.0, sym[1:]))
    for rec in LTDB:
        a = wfdb.rdann(str(DATA / "mit-ltdb-annotations" / rec), "atr")
        sym = np.array(a.symbol)
        keep = np.isin(sym, ["N", "V", "S", "F"])
        s, sym = a.sample[keep][: beats + 1], sym[keep][: beats + 1]
        out.append((f"MIT-LTDB {rec}", np.diff(s) / 128.0 * 1000.0, sym[1:]))
    return out


def unannotated() -> list[tuple[str, np.ndarray]]:
    """Real series without beat labels (all beats counted as normal: an upper bound)."""
    import pandas as pd

    out = [
        ("pyHRV NSRDB NN (4,684)", np.load(DATA / "pyhrv" / "SampleNNISeriesLong.npy") * 1.0),
        (
            "hrv-analysis NN (1,000)",
            np.loadtxt(DATA / "hrvanalysis-aura" / "test_nn_intervals.txt"),
        ),
    ]
    rr = pd.read_csv(DATA / "polar-h10-ecg-pvc" / "polar_h10.csv")["rr_ms"].dropna()
    out.append(("Polar H10 strap RR, PVCs (798)", rr.to_numpy(dtype=float)))
    out.extend(ecg_series())
    return out


def ecg_series() -> list[tuple[str, np.ndarray]]:
    """RR from the real ECG recordings (R peaks by neurokit2)."""
    import neurokit2 as nk
    import pandas as pd
    import wfdb

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("bio_resting_5min_100hz.csv", "bio_resting_8min_100hz.csv"):
            ecg = pd.read_csv(DATA / "neurokit" / name)["ECG"].to_numpy()
            _, info = nk.ecg_peaks(ecg, sampling_rate=100)
            out.append((f"NeuroKit {name[:-4]}", np.diff(info["ECG_R_Peaks"]) * 10.0))
        ecg = np.loadtxt(DATA / "spider-ecg" / "ECG3.txt")
        _, info = nk.ecg_peaks(ecg, sampling_rate=100)
        out.append(("spider-clip ECG subject 3", np.diff(info["ECG_R_Peaks"]) * 10.0))
        for rec in ("drive17a", "drive17b"):
            r = wfdb.rdrecord(
                str(DATA / "drivedb-17" / rec), channel_names=["ECG"], smooth_frames=False
            )
            fs = r.fs * r.samps_per_frame[0]
            _, info = nk.ecg_peaks(r.e_p_signal[0], sampling_rate=fs)
            out.append((f"drivedb {rec}", np.diff(info["ECG_R_Peaks"]) / fs * 1000.0))
    return out


def synthetic() -> list[tuple[str, np.ndarray]]:
    """Paced breathing at 4.5-7/min, heart-rate swing rising 6 -> 30 bpm, three resting rates."""
    out = []
    for bpm in (4.5, 5.0, 6.0, 7.0):
        rr = np.concatenate(
            [
                paced_breathing_series(bpm, 900, hr_bpm=hr, noise_ms=8, jitter=0.2, seed=s)[1]
                for s, hr in enumerate((55.0, 65.0, 80.0))
            ]
        )
        out.append((f"synthetic paced breathing {bpm:g}/min (3 x 15 min)", rr))
    return out


def new_flags(rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(corrected by the detector, held out by the intake screen) per interval."""
    t = 1000.0 + np.cumsum(rr) / 1000.0
    off = compute_offline(t, rr, SignalConfig())
    det = np.array([a not in (None, "provisional") for a in off.artifact])
    return det, off.provisional


def nk_flags(rr: np.ndarray) -> np.ndarray:
    """neurokit2's whole-series kubios detector (non-iterative), per interval."""
    import neurokit2 as nk

    x = np.rint(rr * 1000).astype(np.int64)
    peaks = np.concatenate(([0], np.cumsum(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info, _ = nk.signal_fixpeaks(
            peaks, sampling_rate=1_000_000, iterative=False, method="kubios"
        )
    out = np.zeros(len(x), dtype=np.bool_)
    for kind in ("ectopic", "missed", "extra", "longshort"):
        for p in info[kind]:
            if 0 <= p - 1 < len(x):
                out[p - 1] = True
    return out


_OLD = """
import json, sys
import numpy as np
from biofeedback.signal import compute_offline
res = {}
for name, rr in json.load(sys.stdin).items():
    rr = np.asarray(rr)
    off = compute_offline(1000.0 + np.cumsum(rr) / 1000.0, rr)
    det = [a not in (None, "provisional") for a in off.artifact]
    res[name] = [det, off.provisional.tolist()]
print(json.dumps(res))
"""


def old_flags(rev: str, series: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same via the pipeline of commit `rev` (git archive, own interpreter)."""
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.run(
            ["git", "archive", rev, "biofeedback"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
        out = subprocess.run(
            [sys.executable, "-c", _OLD],
            cwd=tmp,
            input=json.dumps({k: v.tolist() for k, v in series.items()}),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return {k: (np.asarray(v[0]), np.asarray(v[1])) for k, v in json.loads(out).items()}


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.2f} % ({a})" if b else "-"


def both(flags: np.ndarray, ect: np.ndarray, normal: np.ndarray) -> str:
    """Sensitivity / false-positive share of one detector's flags."""
    sens = 100.0 * (flags & ect).sum() / ect.sum()
    return f"{sens:.1f} % / {100.0 * (flags & normal).sum() / normal.sum():.2f} %"


def classes(ann: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """Ectopic beats corrected by earliness class (14157, 15814), and 15814's opening."""
    edges = ("not premature", "0-3 % early", "3-5 %", "5-10 %", "> 10 %")
    print("\n| record: ectopic beats corrected, native | " + " | ".join(edges) + " |")
    print("|---" * (len(edges) + 1) + "|")
    for name, rr, lab in ann:
        if not name.endswith(("14157", "15814")):
            continue
        det, _ = new_flags(rr)
        x = np.rint(rr * 1000).astype(np.int64)
        med = np.array([np.median(x[max(0, k - 5) : k + 6]) for k in range(len(x))])
        early = (med - x) / med
        ect = lab != "N"
        bins = [early <= 0, (early > 0) & (early <= 0.03), (early > 0.03) & (early <= 0.05)]
        bins += [(early > 0.05) & (early <= 0.10), early > 0.10]
        cells = [f"{int((b & ect & det).sum()):,} of {int((b & ect).sum()):,}" for b in bins]
        print(f"| {name} ({int(ect.sum()):,} ectopic) | " + " | ".join(cells) + " |")
        missed = ect & ~det
        print(f"  missed {int(missed.sum())}, of them F: {int((missed & (lab == 'F')).sum())}")
        if name.endswith("15814"):
            n = int(ect[:200].sum())
            print(
                f"  opening quadrigeminy (first 200 beats): {int((det & ect)[:200].sum())} of {n}"
            )


def agreement(
    ann: list[tuple[str, np.ndarray, np.ndarray]], plain: list[tuple[str, np.ndarray]]
) -> None:
    """Label-by-label agreement with neurokit2 over the beats both judge."""
    from biofeedback.signal.artifacts import LABELS, UNJUDGED, judge_segment

    print(
        "\n| series | beats judged | same label as neurokit2 | flagged: native / neurokit2 / both |"
    )
    print("|---|---|---|---|")
    series = [(n, rr) for n, rr, _ in ann] + [
        p for p in plain if not p[0].startswith(("syn", "Neu", "spi", "dri"))
    ]
    for name, rr in series:
        x = np.rint(rr * 1000).astype(np.int64)
        ours = judge_segment(x).labels
        ref = nk_labels(x)
        judged = np.flatnonzero(ours != UNJUDGED).tolist()
        same = sum(LABELS[int(ours[k])] == ref[k] for k in judged)
        mine = sum(int(ours[k]) > 0 for k in judged)
        theirs = sum(ref[k] is not None for k in judged)
        both_ = sum(int(ours[k]) > 0 and ref[k] is not None for k in judged)
        share = 100.0 * same / len(judged)
        print(f"| {name} | {len(judged)} | {share:.2f} % | {mine} / {theirs} / {both_} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", help="git revision of the previous stage (side by side)")
    ap.add_argument("--beats", type=int, default=12_000, help="first N beats of each LTDB record")
    ap.add_argument("--classes", action="store_true", help="missed beats by earliness class")
    ap.add_argument("--agreement", action="store_true", help="label agreement with neurokit2")
    args = ap.parse_args()

    ann = annotated(args.beats)
    plain = synthetic() + unannotated()
    old = (
        old_flags(args.old, {n: rr for n, rr, _ in ann} | {n: rr for n, rr in plain})
        if args.old
        else {}
    )

    print(
        "Annotated records: sensitivity (ectopic beats corrected) / false positives (normal beats"
    )
    print("corrected); first", args.beats, "beats of each MIT-LTDB record.\n")
    head = "| record | ectopic / normal beats | native: sensitivity | native: false pos. |"
    head += " neurokit2 whole series: sens. / false pos. |"
    if old:
        head += f" previous stage ({args.old}): sens. / false pos. |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for name, rr, lab in ann:
        ect = lab != "N"
        after = np.r_[False, ect[:-1]]
        normal = ~ect & ~after
        det, _ = new_flags(rr)
        nk = nk_flags(rr)
        cells = [
            name,
            f"{ect.sum()} / {normal.sum()}",
            pct(int((det & ect).sum()), int(ect.sum())),
            pct(int((det & normal).sum()), int(normal.sum())),
            both(nk, ect, normal),
        ]
        if old:
            cells.append(both(old[name][0], ect, normal))
        print("| " + " | ".join(cells) + " |")

    print("\nSeries without ectopy labels (every beat counted as normal):\n")
    head = "| series | beats | native: corrected | native: screened at intake |"
    head += " neurokit2 whole series |"
    if old:
        head += f" previous stage ({args.old}): corrected / screened |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for name, rr in plain:
        det, scr = new_flags(rr)
        nk = nk_flags(rr)
        n = len(rr)
        cells = [name, str(n), pct(int(det.sum()), n), pct(int(scr.sum()), n)]
        cells.append(pct(int(nk.sum()), n))
        if old:
            od, os_ = old[name]
            cells.append(f"{pct(int(od.sum()), n)} / {pct(int(os_.sum()), n)}")
        print("| " + " | ".join(cells) + " |")
    if args.classes:
        classes(ann)
    if args.agreement:
        agreement(ann, plain)


if __name__ == "__main__":
    main()
