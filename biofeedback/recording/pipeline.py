"""Which pipeline produced a recording's numbers, so a replay can say why its numbers differ.

A replay that does not reproduce a recording is either a reproducibility bug (same pipeline) or the
expected result of a change to the pipeline since the recording was made. Version numbers do not
tell them apart (the version is not bumped for every change), so the recorder writes a fingerprint
of the source code that turns recorded inputs into outputs, and the versions of the libraries that
code calls, into the sidecar's `Pipeline` object.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path
from typing import Any

from biofeedback import __version__

_PACKAGE = Path(__file__).resolve().parent.parent

# Everything between a recorded input and a recorded output: the parse path (replay re-parses the
# raw bytes), the signal pipeline, the session rules, the core that ties them together, and the
# recording's own encoding of inputs and cells.
PIPELINE_SOURCES: tuple[str, ...] = (
    "devices/hrm.py",
    "devices/readings.py",
    "devices/timing.py",
    "signal",
    "exposure",
    "service/core.py",
    "recording/inputs.py",
    "recording/schema.py",
)
# The libraries the pipeline computes with, by distribution name: numpy and scipy do the
# arithmetic. neurokit2 is no longer one of them (the artifact detector is native, see
# docs/arousal.md; neurokit2 stays the tests' reference), so its upgrade changes no number.
PIPELINE_LIBRARIES: tuple[str, ...] = ("numpy", "scipy")


def _source_files() -> list[Path]:
    files: list[Path] = []
    for rel in PIPELINE_SOURCES:
        path = _PACKAGE / rel
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def _library_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def pipeline_identity() -> dict[str, Any]:
    """`{"fingerprint": "sha256:...", "software": version, "libraries": {name: version}}`.

    The fingerprint hashes the pipeline's source files (path and bytes); any edit changes it,
    including an edit that changes no number, so it only explains differences, never predicts
    them. Computed once per process (reads about 30 small files).
    """
    h = hashlib.sha256()
    for path in _source_files():
        h.update(path.relative_to(_PACKAGE).as_posix().encode("utf-8") + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:  # an installation without one of the files still records
            h.update(b"<unreadable>")
        h.update(b"\0")
    return {
        "fingerprint": "sha256:" + h.hexdigest()[:16],
        "software": __version__,
        "libraries": {name: _library_version(name) for name in PIPELINE_LIBRARIES},
    }
