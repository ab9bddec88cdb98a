"""Subprocess for the crash tests: records a synthetic session as fast as it can.

    python -m tests.recording.writer_proc ROOT SEED [fsize_limit]

Whenever the writer thread has synced more input rows it prints `flushed <input rows on disk>` so
the parent knows what must survive a SIGKILL. With `fsize_limit` it lowers RLIMIT_FSIZE
mid-session to make writes fail like a full disk, reports the RecordingError, lifts the limit
again and checks that nothing was lost.
"""

from __future__ import annotations

import resource
import signal
import sys
import time
from pathlib import Path

from biofeedback.errors import RecordingError
from biofeedback.recording import SessionRecorder
from biofeedback.recording.synthetic import synthetic_session

START_T = 1_764_000_000.0


def main() -> None:
    root, seed = Path(sys.argv[1]), int(sys.argv[2])
    fsize_limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rec = SessionRecorder(
        root, client_id="crash", meta={"start_t": START_T}, flush_interval_s=0.002
    )
    sys.stdout.write(f"path {rec.path}\n")
    sys.stdout.flush()
    failed = False
    reported = 0
    # Ten hours, paced a little, so the writer is always still running when it is killed.
    for n, s in enumerate(synthetic_session(36_000, start_t=START_T, seed=seed)):
        time.sleep(0.0002)
        rec.input(s.item, s.seq)
        for u in s.updates:
            rec.update(u)
        rec.events(s.events)
        if fsize_limit is not None and n == 500:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, hard))
        try:
            rec.flush_if_due(time.monotonic())
        except RecordingError as exc:
            if fsize_limit is None or failed:
                raise
            failed = True
            sys.stdout.write(f"error {exc}\n")
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            rec.flush()  # the data kept in memory goes to disk now
            sys.stdout.write(f"recovered {rec.pending_rows}\n")
        durable = rec.durable_rows["inputs"]
        if durable > reported:
            reported = durable
            sys.stdout.write(f"flushed {durable}\n")
            sys.stdout.flush()
        if fsize_limit is not None and n == 1500:
            break
    rec.close()
    sys.stdout.write("done\n")


if __name__ == "__main__":
    main()
