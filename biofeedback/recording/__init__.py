"""Session recording: every session on disk as it happens, read back, replayed, reported, exported.

The on-disk format is described in docs/recording.md (and in `biofeedback.recording.schema`).
"""

from __future__ import annotations

from biofeedback.recording.inputs import RecordedInput
from biofeedback.recording.reader import (
    RecordingInfo,
    iter_input_rows,
    iter_inputs,
    iter_rows,
    list_sessions,
    open_session,
    read_sidecar,
)
from biofeedback.recording.recorder import (
    STATUS_COMPLETE,
    STATUS_INTERRUPTED,
    STATUS_RECORDING,
    SessionRecorder,
)

__all__ = [
    "STATUS_COMPLETE",
    "STATUS_INTERRUPTED",
    "STATUS_RECORDING",
    "RecordedInput",
    "RecordingInfo",
    "SessionRecorder",
    "iter_input_rows",
    "iter_inputs",
    "iter_rows",
    "list_sessions",
    "open_session",
    "read_sidecar",
]
