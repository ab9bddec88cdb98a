"""Replay of a strap's raw data: the recorded PMD bytes through the live decoder again.

`replay_pmd(session_dir)` feeds every data notification kept in pmd.tsv (its bytes and receive
time, in recorded order) to a fresh `PmdFrameReader`, the same code the live strap used, and
compares what comes out with the recording: every ECG sample and its time against ecg.tsv, every
frame's sample count and time span, every gap and malformed frame against pmd.tsv. The comparison
is exact (floats round-trip through the TSV text), so `identical` means the recording can be
rebuilt from the bytes alone, and a changed decoder or timing shows up as differences.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from biofeedback.devices.pmd_readings import (
    AccSamples,
    EcgSamples,
    PmdGap,
    PmdMalformed,
    PmdReading,
    PmdStatus,
    PmdStream,
)
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.recording.reader import RecordingInfo, open_session

__all__ = ["PmdReplay", "pmd_readings_of", "replay_pmd"]

_MAX_DIFFERENCES = 20


@dataclass(frozen=True, slots=True)
class PmdReplay:
    """What replaying a recording's raw data gave."""

    frames: int  # data notifications replayed (ecg, acc, malformed rows)
    ecg_samples: int  # ECG samples the replay produced
    differences: tuple[str, ...]  # the first few, in words

    @property
    def identical(self) -> bool:
        return not self.differences


def pmd_readings_of(info: RecordingInfo) -> Iterator[PmdReading]:
    """The raw readings a recording's pmd.tsv describes, rebuilt from its bytes in recorded order.

    Status rows come back as they were; every data notification goes through a fresh
    `PmdFrameReader` (the live decoder and timing), so samples, gaps and malformed frames are
    derived again rather than copied: recording them gives the same pmd.tsv and ecg.tsv exactly
    when nothing about decoding or timing changed (`replay_session` compares them).
    """
    readers: dict[str, PmdFrameReader] = {}
    for row in info.rows("pmd"):
        kind = row["kind"]
        if kind == "gap":
            continue  # derived again, before the frame that showed it
        if kind == "status":
            detail = str(row["detail"] or "")
            ok = not detail.startswith("failed: ")
            stream = PmdStream(row["stream"]) if row["stream"] else None
            yield PmdStatus(
                row["device"], float(row["t"]), stream, detail if ok else detail[8:], ok
            )
            continue
        reader = readers.setdefault(row["device"], PmdFrameReader(row["device"]))
        if row["acc_factor"] is not None:
            reader.acc_factor = float(row["acc_factor"])
        yield from reader.read(float(row["t"]), bytes(row["payload_hex"]))


def replay_pmd(session_dir: Path) -> PmdReplay:
    """Decode a recording's PMD bytes again and compare with its pmd.tsv and ecg.tsv."""
    info = open_session(session_dir)
    rows = info.rows("pmd")
    readers: dict[str, PmdFrameReader] = {}
    diffs: list[str] = []
    replayed_ecg: list[tuple[float, int]] = []
    frames = 0
    expected = [r for r in rows if r["kind"] != "status"]
    produced: list[tuple[str, object]] = []

    for row in rows:
        if row["kind"] == "status" or row["kind"] == "gap":
            continue
        reader = readers.setdefault(row["device"], PmdFrameReader(row["device"]))
        if row["acc_factor"] is not None:
            reader.acc_factor = float(row["acc_factor"])
        frames += 1
        for r in reader.read(float(row["t"]), bytes(row["payload_hex"])):
            if isinstance(r, EcgSamples):
                replayed_ecg += list(zip(r.t, r.uv, strict=True))
                produced.append(("ecg", (r.t[0], r.t[-1], len(r.t), r.payload)))
            elif isinstance(r, AccSamples):
                produced.append(("acc", (r.t[0], r.t[-1], len(r.t), r.payload)))
            elif isinstance(r, PmdGap):
                produced.append(("gap", (r.stream.value, r.lost_samples, r.gap_s)))
            elif isinstance(r, PmdMalformed):
                produced.append(("malformed", (r.payload, r.error)))

    want: list[tuple[str, object]] = []
    for row in expected:
        kind = row["kind"]
        if kind in ("ecg", "acc"):
            payload = bytes(row["payload_hex"])
            want.append((kind, (row["first_t"], row["last_t"], row["samples"], payload)))
        elif kind == "gap":
            stream = PmdStream(row["stream"]).value
            want.append(("gap", (stream, row["samples"], row["gap_s"])))
        elif kind == "malformed":
            want.append(("malformed", (bytes(row["payload_hex"]), row["detail"])))
    if len(want) != len(produced):
        diffs.append(f"pmd.tsv: {len(want)} frame/gap rows recorded, replay gave {len(produced)}")
    for i, (a, b) in enumerate(zip(want, produced, strict=False)):
        if a != b and len(diffs) < _MAX_DIFFERENCES:
            diffs.append(f"pmd.tsv row {i + 1} ({a[0]}): recorded {a[1]!r}, replay {b[1]!r}")

    recorded_ecg = [(r["t"], r["uv"]) for r in info.rows("ecg")]
    if len(recorded_ecg) != len(replayed_ecg):
        diffs.append(
            f"ecg.tsv: {len(recorded_ecg)} samples recorded, replay gave {len(replayed_ecg)}"
        )
    for i, (a2, b2) in enumerate(zip(recorded_ecg, replayed_ecg, strict=False)):
        if a2 != b2:
            if len(diffs) < _MAX_DIFFERENCES:
                diffs.append(f"ecg.tsv row {i + 1}: recorded {a2!r}, replay {b2!r}")
            else:
                break
    return PmdReplay(frames, len(replayed_ecg), tuple(diffs))
