"""The therapist secret and client-link signatures never reach a log (docs/dashboard.md).

Logs are captured at DEBUG while therapists sign in every way there is and clients use their
links; every field of every record is searched, not only the message, because structured log
handlers (journald, JSON) write the `extra` fields aiohttp's access logger attaches. The real
`biofeedback demo`, started with its output going to a pipe, must not print the links either:
they go to a private file (mode 0600) that is removed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import stat
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from biofeedback.web.auth import COOKIE_NAME, link_signature
from tests.support import REPO_ROOT, free_port
from tests.web.conftest import LINK_SECRET, SECRET, Dash

CLIENT = "c01"
SIG = link_signature(LINK_SECRET, CLIENT)


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """Everything a handler could write for each record: message, extras, exception text."""
    texts = []
    formatter = logging.Formatter("%(message)s")
    for record in records:
        texts.append(formatter.format(record))
        # exc_info holds the exception object itself; handlers write it through the formatter
        # (exc_text, above), never as a repr
        skip = {"msg", "args", "exc_info"}
        texts.extend(repr(v) for k, v in vars(record).items() if k not in skip)
    return texts


def assert_no_secret(texts: Iterable[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret reached the log: {text!r}"
            assert quote(secret, safe="") not in text, f"a secret reached the log: {text!r}"


# the access log lines use_every_login_and_link leaves: one per HTTP request (its WebSocket
# upgrade writes none)
REQUESTS = 10


async def use_every_login_and_link(dash: Dash) -> None:
    c = dash.client
    path = f"/c/{CLIENT}/{SIG}"
    resp = await c.get(f"/t/c01?token={quote(SECRET)}&x=1", allow_redirects=False)
    assert resp.status == 303
    c.session.cookie_jar.clear()
    assert (await c.get(f"/?token={SECRET}", allow_redirects=False)).status == 303
    resp = await c.get("/login", params={"token": SECRET, "next": "/t/c01"}, allow_redirects=False)
    assert resp.status == 303
    resp = await c.post(
        "/login",
        data={"secret": SECRET, "next": "/"},
        headers={"Origin": dash.origin, "Referer": f"{dash.origin}/login?token={SECRET}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await c.get("/api/overview", headers={"Authorization": f"Bearer {SECRET}"})
    assert resp.status == 200
    assert (await c.get("/login", params={"token": "wrong-token"})).status == 403
    # a client uses the link: page, WebSocket, a path below it, a link for another client
    assert (await c.get(path, headers={"Referer": f"{dash.origin}{path}"})).status == 200
    async with c.ws_connect(path + "/ws", headers={"Origin": dash.origin}) as ws:
        hello = await ws.receive_json(timeout=30)
        assert hello["type"] == "hello"
    assert (await c.get(path + "/nothing-here")).status == 404
    assert (await c.get(f"/c/c02/{SIG}")).status == 403
    # a percent-encoded signature still routes to the page, and must not be logged either
    encoded = URL(f"{dash.origin}/c/{CLIENT}/%{ord(SIG[0]):02X}{SIG[1:]}", encoded=True)
    assert (await c.session.get(encoded)).status == 200


async def test_no_secret_or_signature_in_logs_at_debug(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # An in-process `biofeedback` main() earlier in the run quiets the access log (cli._CHATTY);
    # a log level of its own must not hide what this test reads.
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    await use_every_login_and_link(dash)

    def access_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]

    # a request's access log line is written after its answer: wait until every request's is
    # there (30 s deadline), so the check below also reads the last one
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(access_lines()) < REQUESTS and loop.time() < deadline:  # noqa: ASYNC110 - log records, no event
        await asyncio.sleep(0.05)
    assert_no_secret(record_texts(caplog.records), SECRET, SIG, SIG[1:])
    # and the access log did record these requests: the check above did not pass on an empty log
    lines = access_lines()
    assert any("GET /?[redacted]" in line for line in lines), lines
    assert any(f"GET /c/{CLIENT}/[sig] " in line for line in lines), lines
    assert len(lines) >= REQUESTS, lines


async def test_redaction_also_covers_errors_about_a_request(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp's server logger writes exceptions about a request; their text can hold its URL
    caplog.set_level(logging.DEBUG)
    try:
        raise ValueError(f"bad request line GET /?token={SECRET} and /c/{CLIENT}/{SIG}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "x")
    logging.getLogger("aiohttp.web").debug("request %s", f"/login?next=/&token={SECRET}")
    assert_no_secret(record_texts(caplog.records), SECRET, SIG)
    assert "?[redacted]" in caplog.text


async def read_lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    async for raw in stream:
        into.append(raw.decode(errors="replace").rstrip())


@contextlib.asynccontextmanager
async def demo_with_piped_output(
    tmp_path: Path, http_port: int, mqtt_port: int
) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str], list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "biofeedback", "demo", "--no-actor", "--log-level", "DEBUG",
        "--client-id", CLIENT, "--http-port", str(http_port), "--mqtt-port", str(mqtt_port),
        "--data-dir", str(tmp_path / "data"),
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "BIOFEEDBACK_THERAPIST_SECRET": SECRET,
            "XDG_RUNTIME_DIR": str(tmp_path / "run"),
            "PYTHONUNBUFFERED": "1",
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    assert proc.stdout is not None
    assert proc.stderr is not None
    readers = [
        asyncio.ensure_future(read_lines(proc.stdout, out)),
        asyncio.ensure_future(read_lines(proc.stderr, err)),
    ]
    try:
        yield proc, out, err
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(60):  # a clean stop, however slow the machine
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.gather(*readers)


async def wait_for_line(lines: list[str], err: list[str], pattern: str, within: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        for line in lines:
            if re.search(pattern, line):
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in {lines}; stderr: {err[-30:]}")


def read_private(path: Path) -> str:
    """The links file, after checking only its owner can read it (and list its folder)."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    return path.read_text()


@pytest.mark.slow
async def test_piped_start_prints_no_secret_and_keeps_the_links_private(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o700)
    http_port, mqtt_port = free_port(), free_port()
    async with demo_with_piped_output(tmp_path, http_port, mqtt_port) as (proc, out, err):
        line = await wait_for_line(out, err, r"therapist dashboard:", 60)
        assert_no_secret([line], SECRET)
        m = re.search(r"links: (\S+),", line)
        assert m is not None, f"the start-up line must say where the links are: {line!r}"
        private = Path(m[1])
        assert private.parent.parent == tmp_path / "run"
        links = read_private(private)
        therapist = re.search(r"therapist dashboard: (\S+)", links)
        client = re.search(r"client screen: +(\S+)", links)
        assert therapist is not None, links
        assert client is not None, links
        sig = client[1].rsplit("/", 1)[1]
        # the links in the file work: sign in, open the client's screen
        async with aiohttp.ClientSession() as session:
            async with session.get(therapist[1], allow_redirects=False) as resp:
                assert resp.status == 303
                assert COOKIE_NAME in resp.cookies
            async with session.get(client[1]) as resp:
                assert resp.status == 200
        await asyncio.sleep(0.5)
    assert proc.returncode == 0, err[-20:]
    assert private.name not in os.listdir(private.parent), "the links file outlived the dashboard"
    everything = out + err
    assert any("aiohttp.access" in e and "[redacted]" in e for e in err), err[-40:]
    assert_no_secret(everything, SECRET, sig)


# ---- the announcement itself ---------------------------------------------------------------------


def test_links_are_shown_on_a_terminal_and_kept_private_elsewhere(tmp_path: Path) -> None:
    from biofeedback.web.announce import announce_dashboard, dashboard_urls

    urls = dashboard_urls("127.0.0.1", 8080, "s3cret&x#y", f"/c/{CLIENT}/{SIG}")
    assert urls.therapist == "http://127.0.0.1:8080/?token=s3cret%26x%23y"
    said: list[str] = []
    with announce_dashboard(urls, said.append, to_terminal=True, private_path=tmp_path / "x"):
        assert said == urls.secret_lines()
    assert not (tmp_path / "x").exists()

    private = tmp_path / "run" / "biofeedback" / "links.txt"
    private.parent.mkdir(parents=True)
    private.write_text("stale links from a killed run\n")
    private.chmod(0o644)
    said.clear()
    with announce_dashboard(urls, said.append, to_terminal=False, private_path=private):
        assert private.read_text().splitlines() == urls.secret_lines()
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert_no_secret(said, "s3cret", SIG)
        assert str(private) in said[0]
    assert not private.exists()


@pytest.mark.slow
async def test_a_terminal_start_shows_the_links(tmp_path: Path) -> None:
    # the person who started the service by hand sees the sign-in link (stdout is a terminal)
    import pty

    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "biofeedback", "demo", "--no-actor",
        "--client-id", CLIENT, "--http-port", str(free_port()), "--mqtt-port", str(free_port()),
        "--data-dir", str(tmp_path / "data"),
        cwd=REPO_ROOT,
        env={**os.environ, "BIOFEEDBACK_THERAPIST_SECRET": SECRET, "PYTHONUNBUFFERED": "1"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # one read at a time, each given the rest of the deadline: a start-up slower than a
        # fixed per-read wait on a loaded machine is not an empty terminal (and a read left
        # running in its thread after a timeout would swallow what came next)
        while b"client screen:" not in seen and loop.time() < deadline:
            try:
                seen += await asyncio.wait_for(
                    asyncio.to_thread(os.read, master, 4096), deadline - loop.time()
                )
            except (TimeoutError, OSError):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(60):  # a clean stop, however slow the machine
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert f"/?token={SECRET}" in text, text
    assert f"/c/{CLIENT}/" in text, text
