"""Subprocess for the Ctrl-C test: an event loop that records ticks, as the service does.

    python -m tests.recording.sigint_proc ROOT

Prints `recording <path>` once the first rows are on disk, then records until SIGINT. At exit it
prints `recorded <input rows>` and `threads <recorder threads still alive>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from pathlib import Path

from biofeedback.exposure.messages import Tick
from biofeedback.recording import SessionRecorder

START_T = 1_764_000_000.0


async def session(rec: SessionRecorder) -> None:
    with rec:
        n = 0
        while True:
            n += 1
            rec.input(Tick(START_T + n), n)
            rec.flush_if_due(time.monotonic())
            if n == 5:
                await asyncio.to_thread(rec.flush)
                sys.stdout.write(f"recording {rec.path}\n")
                sys.stdout.flush()
            await asyncio.sleep(0.005)


def main() -> None:
    rec = SessionRecorder(Path(sys.argv[1]), client_id="sigint", meta={"start_t": START_T})
    with contextlib.suppress(KeyboardInterrupt):  # asyncio.run re-raises Ctrl-C after cleanup
        asyncio.run(session(rec))
    alive = [t.name for t in threading.enumerate() if t.name.startswith("recorder ")]
    sys.stdout.write(f"recorded {rec.rows['inputs']}\nthreads {alive}\n")


if __name__ == "__main__":
    main()
