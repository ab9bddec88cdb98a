"""The login lockout counts wrong secrets per source address, answers 429, and stays bounded.

A second source is a real one: the test client connects from 127.0.0.2 (Linux routes all of
127.0.0.0/8 to the loopback interface), so `request.remote` differs as it would on a LAN.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from biofeedback.web.auth import COOKIE_NAME, Auth
from tests.web.conftest import LINK_SECRET, SECRET, Dash

OTHER_SOURCE = "127.0.0.2"
MAX_FAILURES = 10  # docs/dashboard.md: ten wrong secrets within a minute


@pytest.fixture
async def other(dash: Dash) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser on another machine: same dashboard, another source address."""
    connector = aiohttp.TCPConnector(local_addr=(OTHER_SOURCE, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            async with session.get(f"{dash.origin}/healthz") as resp:
                assert resp.status == 200
        except OSError as exc:  # pragma: no cover - kernels without 127/8 on loopback
            pytest.skip(f"this kernel cannot connect from {OTHER_SOURCE} to loopback: {exc}")
        yield session


async def guess_wrong(dash: Dash, times: int) -> None:
    """`times` wrong secrets from the test client's address."""
    for i in range(1, times + 1):
        resp = await dash.client.post(
            "/login",
            data={"secret": "wrong-guess"},
            headers={"Origin": dash.origin},
            allow_redirects=False,
        )
        # the guess that reaches the limit may already be told so
        assert resp.status == 303 or (i >= MAX_FAILURES and resp.status == 429), (i, resp.status)


async def test_a_guessing_address_does_not_lock_out_the_therapist(
    dash: Dash, other: aiohttp.ClientSession
) -> None:
    await guess_wrong(dash, MAX_FAILURES)
    # the guesser is locked out, even with the right secret
    resp = await dash.client.post(
        "/login", data={"secret": SECRET}, headers={"Origin": dash.origin}, allow_redirects=False
    )
    assert resp.status == 429
    # the therapist at another machine signs in with the form and with the link
    async with other.post(
        f"{dash.origin}/login",
        data={"secret": SECRET, "next": "/"},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
        assert COOKIE_NAME in resp.cookies
    async with other.get(
        f"{dash.origin}/login", params={"token": SECRET}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
        assert COOKIE_NAME in resp.cookies


async def test_a_locked_out_address_gets_429_on_every_login_path(dash: Dash) -> None:
    await guess_wrong(dash, MAX_FAILURES)
    for path in ("/login", "/", "/t/c01"):
        resp = await dash.client.get(path, params={"token": SECRET}, allow_redirects=False)
        assert resp.status == 429, (path, resp.status, await resp.text())
        assert resp.headers["Retry-After"] == "60"
        assert COOKIE_NAME not in resp.cookies
    resp = await dash.client.get("/api/overview", headers={"Authorization": f"Bearer {SECRET}"})
    assert resp.status == 429
    # the sign-in page itself still opens (it says what happened when the form is sent)
    assert (await dash.client.get("/login")).status == 200


async def test_wrong_tokens_in_the_link_lock_out_too(dash: Dash) -> None:
    for _ in range(MAX_FAILURES - 1):
        resp = await dash.client.get("/login", params={"token": "wrong-token"})
        assert resp.status == 403
    resp = await dash.client.get("/login", params={"token": "wrong-token"})
    assert resp.status == 429  # the tenth wrong secret locks this address at once
    resp = await dash.client.get("/login", params={"token": SECRET}, allow_redirects=False)
    assert resp.status == 429


def test_lockout_expires_after_a_minute_per_source() -> None:
    now = [1000.0]
    auth = Auth(SECRET, LINK_SECRET, wall=lambda: now[0])
    for _ in range(MAX_FAILURES):
        assert not auth.check_secret("wrong-guess", "192.0.2.7")
    assert auth.locked_out("192.0.2.7")
    assert not auth.check_secret(SECRET, "192.0.2.7")
    assert not auth.locked_out("192.0.2.8")
    assert auth.check_secret(SECRET, "192.0.2.8")
    now[0] += 61.0
    assert not auth.locked_out("192.0.2.7")
    assert auth.check_secret(SECRET, "192.0.2.7")
    assert auth.lockout_sources == 0  # expired entries are dropped, not kept


def test_lockout_table_is_bounded() -> None:
    auth = Auth(SECRET, LINK_SECRET, wall=lambda: 1000.0, max_sources=50)
    for i in range(5000):
        auth.check_secret("wrong-guess", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        assert auth.lockout_sources <= 50
    # the most recent guessers are the ones remembered
    for _ in range(MAX_FAILURES):
        auth.check_secret("wrong-guess", "10.0.19.135")
    assert auth.locked_out("10.0.19.135")


def test_ipv6_sources_are_counted_per_64_prefix() -> None:
    # one IPv6 host usually holds a whole /64: hopping within it must not reset the count
    auth = Auth(SECRET, LINK_SECRET, wall=lambda: 1000.0)
    for i in range(MAX_FAILURES):
        auth.check_secret("wrong-guess", f"2001:db8:1:2::{i + 1:x}")
    assert auth.locked_out("2001:db8:1:2::ffff")
    assert not auth.locked_out("2001:db8:1:3::1")
    assert auth.check_secret(SECRET, "2001:db8:1:3::1")
    # an IPv4 peer seen through an IPv4-mapped IPv6 socket is the same IPv4 source
    for _ in range(MAX_FAILURES):
        auth.check_secret("wrong-guess", "::ffff:192.0.2.9")
    assert auth.locked_out("192.0.2.9")
