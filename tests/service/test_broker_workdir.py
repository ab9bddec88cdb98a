"""The managed broker's temporary folder: a run killed with -9 leaves its `bf-mosquitto-*`
folder behind, and the next start removes it; a live run's folder is never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from biofeedback.service.broker import EmbeddedBroker
from biofeedback.service.broker_access import BrokerRole
from biofeedback.service.broker_workdir import (
    LOCK_NAME,
    PREFIX,
    Workdir,
    remove_stale_workdirs,
)
from biofeedback.service.mqtt import MqttLink
from tests.service.embedded_support import login_settings
from tests.support import REPO_ROOT, require_binary

pytestmark = pytest.mark.mosquitto

# A service that starts the managed broker, says where its folder is, and waits to be killed.
_RUN = textwrap.dedent(
    """
    import asyncio, sys
    from biofeedback.service.broker import EmbeddedBroker

    async def main():
        async with EmbeddedBroker(backend="mosquitto") as b:
            print(b.process.workdir, b.process.pid, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory, for the test and the runs it starts (other runs
    on the machine keep their folders where they are)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _start_run(tmp: Path) -> tuple[subprocess.Popen[str], Path, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN],
        cwd=REPO_ROOT,
        env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert len(line) == 2, f"the run did not start its broker (exit {proc.poll()})"
    return proc, Path(line[0]), int(line[1])


async def _listing(folder: Path) -> list[str]:
    return sorted(await asyncio.to_thread(os.listdir, folder))


def _wait_gone(pid: int, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        if stat[2] == "Z":  # a zombie: dead, waiting for a parent that is gone too
            return
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.05)


async def test_the_next_start_removes_the_folder_a_killed_run_left(private_tmp: Path) -> None:
    require_binary("mosquitto", "mosquitto")
    run, folder, broker_pid = await asyncio.to_thread(_start_run, private_tmp)
    try:
        assert folder.parent == private_tmp
        run.send_signal(signal.SIGKILL)  # the service dies; its broker follows (PDEATHSIG)
        run.wait(10)
        await asyncio.to_thread(_wait_gone, broker_pid)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
        if run.stdout is not None:
            run.stdout.close()
    assert folder.is_dir(), "kill -9 gives no chance to clean up: the folder must still be there"
    async with EmbeddedBroker(backend="mosquitto") as b:
        assert b.process is not None
        assert not folder.exists(), "the dead run's folder was not removed"
        assert await _listing(private_tmp) == [Path(b.process.workdir).name]
    assert await _listing(private_tmp) == []  # and a clean exit leaves nothing


async def test_a_live_run_s_folder_is_never_removed(private_tmp: Path) -> None:
    """Another live run (another process) and this process's own first broker keep theirs."""
    require_binary("mosquitto", "mosquitto")
    other, other_folder, other_broker = await asyncio.to_thread(_start_run, private_tmp)
    try:
        async with EmbeddedBroker(backend="mosquitto") as first:
            assert first.process is not None
            first_folder = Path(first.process.workdir)
            # a folder is always fresh: its lock file exists from the first moment
            assert (first_folder / LOCK_NAME).is_file()
            async with EmbeddedBroker(backend="mosquitto") as second:
                assert second.process is not None
                assert await _listing(private_tmp) == sorted(
                    p.name for p in (other_folder, first_folder, Path(second.process.workdir))
                )
                assert remove_stale_workdirs() == []
                async with MqttLink(login_settings(first, BrokerRole.SERVICE), "still-there"):
                    pass
                assert first.process.running
        assert other_folder.name in await _listing(private_tmp)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)
        if other.stdout is not None:
            other.stdout.close()
    # once that run and its broker are gone, its folder is stale: the next start removes it
    await asyncio.to_thread(_wait_gone, other_broker)
    assert remove_stale_workdirs() == [other_folder]


def test_folders_of_older_versions_go_only_when_old_and_unused(private_tmp: Path) -> None:
    """Folders without a lock file: removed when older than a minute and named by no running
    process; a young one, one a process still uses, another user's and a symlink stay."""
    old = time.time() - 600

    def legacy(name: str, *, age: float = old) -> Path:
        p = private_tmp / f"{PREFIX}{name}"
        p.mkdir()
        (p / "mosquitto.conf").write_text("listener 1\n")
        os.utime(p, (age, age))
        return p

    dead = legacy("dead")
    young = legacy("young", age=time.time())
    used = legacy("used")
    foreign = legacy("foreign")
    os.chown(foreign, 65534, 65534)  # nobody's; the tests run as root in CI
    target = private_tmp / "elsewhere"
    target.mkdir()
    link = private_tmp / f"{PREFIX}link"
    link.symlink_to(target)
    live_dir = Workdir(private_tmp)  # a live run of this version
    user = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(used / "mosquitto.conf")]
    )
    try:
        # until the child has exec'd, its command line is still pytest's (a loaded machine once
        # took long enough for `used` to look unused): wait until it names the folder
        deadline = time.monotonic() + 30
        cmdline = Path(f"/proc/{user.pid}/cmdline")
        while str(used).encode() not in cmdline.read_bytes():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.01)
        removed = remove_stale_workdirs()
    finally:
        user.kill()
        user.wait(10)
    try:
        assert removed == [dead]
        assert not dead.exists()
        for kept in (young, used, foreign, link, target, live_dir.path):
            assert kept.exists(), kept
    finally:
        live_dir.release()
    assert not live_dir.path.exists()


def test_a_released_folder_s_lock_is_free_and_a_crashed_one_is_removed(private_tmp: Path) -> None:
    """The lock is what marks a run alive: once its holder is gone the folder is stale."""
    crashed = Workdir(private_tmp)
    assert remove_stale_workdirs() == []  # held by this process
    fd = crashed.lock_fd
    assert fd is not None
    os.close(fd)  # what the kernel does when the process dies
    crashed._lock_fd = None  # (the object no longer owns it)
    assert remove_stale_workdirs() == [crashed.path]
