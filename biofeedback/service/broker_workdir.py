"""The managed broker's private folder in the temporary directory, and the leftovers of dead runs.

Each run's Mosquitto keeps its config, password file, ACL, log and persistence database in a
`bf-mosquitto-*` folder (mode 0700, files 0600). A clean exit removes it; a `kill -9` cannot.
So the folder holds `owner.lock`, locked (`flock`) by the service for as long as the run lives,
and inherited by its Mosquitto child, so the lock stays taken while either process is alive and
is released by the kernel when both are gone, whatever killed them. On the next start,
`remove_stale_workdirs` deletes every such folder of this OS user whose lock it can take: only
dead runs' folders, never a live one's, and immune to process ids being reused.

Folders from versions without the lock file are removed only on Linux, when no running process
names the folder on its command line (a live Mosquitto is started with `-c <folder>/...`) and
the folder is older than a minute (so a run that is creating its folder right now is left alone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

PREFIX = "bf-mosquitto-"
LOCK_NAME = "owner.lock"
LEGACY_MIN_AGE_S = 60.0


class Workdir:
    """A private `bf-mosquitto-*` folder, locked by this process until `release()`."""

    def __init__(self, parent: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))  # mode 0700
        self._lock_fd: int | None = None
        lock = self.path / LOCK_NAME
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    @property
    def lock_fd(self) -> int | None:
        """The locked descriptor: pass it to the broker child so the lock lives while it does."""
        return self._lock_fd

    def release(self) -> None:
        """Delete the folder and drop the lock (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write a file only this OS user can read (0600 from the start, not chmod-ed after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an older file of the same name may have had other bits
        f.write(text)


def _lock_is_free(lock: Path) -> bool:
    """True when nobody holds the folder's lock (its run is over)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the probe's lock at once
    return True


def _command_lines() -> list[bytes] | None:
    """Every running process's command line (None where there is no /proc to read)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    lines = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue  # gone meanwhile, or another user's
    return lines


class _StaleCheck:
    """Decides whether a folder's run is over; reads /proc at most once."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._cmdlines: list[bytes] | None = None
        self._read = False

    def named_by_a_live_process(self, folder: Path) -> bool | None:
        """Whether a running process has `folder` on its command line (None: cannot tell)."""
        if not self._read:
            self._cmdlines, self._read = _command_lines(), True
        if self._cmdlines is None:
            return None
        needle = os.fsencode(folder)
        return any(needle in line for line in self._cmdlines)

    def is_stale(self, folder: Path) -> bool:
        lock = folder / LOCK_NAME
        if lock.exists():
            return _lock_is_free(lock)
        # a folder left by a version without the lock file
        try:
            age = self.now - folder.stat().st_mtime
        except OSError:
            return False
        if age < LEGACY_MIN_AGE_S:
            return False
        return self.named_by_a_live_process(folder) is False


def remove_stale_workdirs(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete the `bf-mosquitto-*` folders of dead runs of this OS user; the ones removed."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    removed: list[Path] = []
    check = _StaleCheck(time.time())
    try:
        candidates = sorted(base.glob(PREFIX + "*"))
    except OSError:
        return removed
    for folder in candidates:
        try:
            st = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            continue  # a symlink, a file, or another user's
        if not check.is_stale(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
            log.info("removed the broker folder of an earlier run that did not exit: %s", folder)
    return removed
