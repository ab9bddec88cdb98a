"""Session recording: every session on disk as it happens, read back, replayed, reported, exported.

The on-disk format is described in docs/recording.md (and in `biofeedback.recording.schema`).
"""

from __future__ import annotations

from biofeedback.recording.export import export_bids
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
from biofeedback.recording.replay import (
    ReplayCore,
    ReplayResult,
    compare_sessions,
    record_output,
    replay_session,
)
from biofeedback.recording.report import write_client_report, write_report
from biofeedback.recording.summary import SessionSummary, summarize

__all__ = [
    "STATUS_COMPLETE",
    "STATUS_INTERRUPTED",
    "STATUS_RECORDING",
    "RecordedInput",
    "RecordingInfo",
    "ReplayCore",
    "ReplayResult",
    "SessionRecorder",
    "SessionSummary",
    "compare_sessions",
    "export_bids",
    "iter_input_rows",
    "iter_inputs",
    "iter_rows",
    "list_sessions",
    "open_session",
    "read_sidecar",
    "record_output",
    "replay_session",
    "summarize",
    "write_client_report",
    "write_report",
]
