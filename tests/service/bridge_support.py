"""Two real Mosquitto processes joined by the shipped bridge configuration, and a link to cut.

- `render_room_config(...)`: `config/mosquitto/room-bridge.conf.example` with only its paths,
  ports, CA file and password rewritten (every topic line, QoS and session option as shipped).
- `RoomBroker`: a `mosquitto -c` child running that config; `kill()` / `start()`.
- `LinkProxy`: a TCP relay between the room broker's bridge and the clinic broker. `cut()` drops
  every connection through it and refuses new ones (a cable pulled, a VPN down); `restore()`
  lets the bridge in again. Both brokers keep running, so this is the link that fails, not them.

Used by tests/service/test_bridge.py and bench/bench_bridge.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from biofeedback.service.broker import mosquitto_password_line, pick_free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
ROOM_EXAMPLE = REPO / "config" / "mosquitto" / "room-bridge.conf.example"


def render_room_config(
    *,
    port: int,
    password_file: Path,
    acl_file: Path,
    persistence_dir: Path,
    log_file: Path,
    clinic: tuple[str, int],
    ca_file: Path,
    remote_username: str,
    remote_password: str,
    room: str = "room-a",
    example: Path = ROOM_EXAMPLE,
    protocol: str | None = None,
) -> str:
    """The shipped room config with this machine's paths, ports and secrets put in.

    Fails when a line it must rewrite is missing (the example changed shape).
    """
    text = example.read_text()
    swaps = {
        r"^listener 1883 127\.0\.0\.1$": f"listener {port} 127.0.0.1",
        r"^password_file .*$": f"password_file {password_file}",
        r"^acl_file .*$": f"acl_file {acl_file}",
        r"^persistence_location .*$": f"persistence_location {persistence_dir}/",
        r"^address .*$": f"address {clinic[0]}:{clinic[1]}",
        r"^remote_clientid .*$": f"remote_clientid bf-bridge-{room}",
        r"^local_clientid .*$": f"local_clientid bf-bridge-{room}.local",
        r"^bridge_cafile .*$": f"bridge_cafile {ca_file}",
        r"^remote_username .*$": f"remote_username {remote_username}",
        r"^remote_password .*$": f"remote_password {remote_password}",
    }
    if protocol is not None:
        swaps[r"^bridge_protocol_version .*$"] = f"bridge_protocol_version {protocol}"
    for pattern, line in swaps.items():
        text, n = re.subn(pattern, line.replace("\\", "\\\\"), text, flags=re.M)
        if n != 1:
            raise AssertionError(f"{example}: expected one line matching {pattern!r}, found {n}")
    left = [ln for ln in text.splitlines() if "CHANGE-ME" in ln and not ln.startswith("#")]
    assert not left, f"CHANGE-ME left in the rendered room config: {left}"
    extra = f"\nlog_dest file {log_file}\nlog_type all\nconnection_messages true\n"
    if os.geteuid() == 0:
        extra += "user root\n"  # else mosquitto drops to 'mosquitto' and cannot read our files
    return text + extra


class RoomBroker:
    """The room's Mosquitto with the bridge, as a child process in `folder`."""

    def __init__(
        self,
        folder: Path,
        *,
        clinic: tuple[str, int],
        ca_file: Path,
        remote_username: str,
        remote_password: str,
        users: dict[str, str],
        acl: str,
        protocol: str | None = None,
        binary: str = "mosquitto",
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        self.port = pick_free_port("127.0.0.1")
        pw = folder / "passwords"
        pw.write_text("".join(mosquitto_password_line(u, p) + "\n" for u, p in users.items()))
        acl_file = folder / "acl"
        acl_file.write_text(acl)
        self.log_file = folder / "mosquitto.log"
        self.config = folder / "room.conf"
        self.config.write_text(
            render_room_config(
                port=self.port,
                password_file=pw,
                acl_file=acl_file,
                persistence_dir=folder,
                log_file=self.log_file,
                clinic=clinic,
                ca_file=ca_file,
                remote_username=remote_username,
                remote_password=remote_password,
                protocol=protocol,
            )
        )
        for f in (pw, acl_file, self.config):
            f.chmod(0o600)
        self.binary = binary
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await wait_port("127.0.0.1", self.port, 0.1):
            if self._proc.returncode is not None or loop.time() > deadline:
                err = b""
                if self._proc.stderr is not None:
                    with contextlib.suppress(Exception):
                        err = await asyncio.wait_for(self._proc.stderr.read(), 1)
                raise AssertionError(f"room broker did not start: {err.decode()} {self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def bridge_connections(self) -> int:
        """How many times the bridge has connected to the clinic (from the broker's log)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return 0
        return text.count("Received CONNACK on connection")

    async def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            await self.kill()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class LinkProxy:
    """A TCP relay standing for the network between a room and the clinic; it can be cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = pick_free_port("127.0.0.1")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.cuts = 0

    @property
    def up(self) -> bool:
        return self._server is not None

    async def restore(self) -> None:
        """Let connections through again (the link is back)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def cut(self) -> None:
        """Drop every connection at once and refuse new ones until `restore()`."""
        self.cuts += 1
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            _reset(w)
        self._writers.clear()
        for t in list(self._tasks):
            t.cancel()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, r_in: asyncio.StreamReader, w_in: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            r_out, w_out = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(w_in)
            return
        self._writers |= {w_in, w_out}
        a = asyncio.create_task(_pipe(r_in, w_out))
        b = asyncio.create_task(_pipe(r_out, w_in))
        self._tasks |= {a, b}
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (a, b):
                t.cancel()
                self._tasks.discard(t)
            for w in (w_in, w_out):
                self._writers.discard(w)
                _reset(w)

    async def __aenter__(self) -> Self:
        await self.restore()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cut()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a dropped link looks to both ends (no FIN handshake waits)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    with contextlib.suppress(Exception):
        writer.transport.abort()
