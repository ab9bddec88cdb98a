"""Where a login sends the therapist next: only to one of the dashboard's own pages.

Each `next` goes through the real server (form post and `?token=` link); the `Location` it
answers is resolved against the dashboard's origin the way a browser resolves a redirect, with
yarl (aiohttp's own URL type) and with urllib, and must stay on this origin and name one of the
therapist pages.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from biofeedback.web.auth import COOKIE_NAME
from tests.support import REPO_ROOT
from tests.web.conftest import SECRET, Dash

# the therapist pages a login may lead to (routes.py: "/" and "/t/<client>")
OUR_PAGE = re.compile(r"/(?:t/[A-Za-z0-9_-]{1,64})?")

# the reproductions of issue 16 and their relatives
HOSTILE_NEXT = [
    "/\t/evil.example/phish",
    "/\n/evil.example/phish",
    "/\r/evil.example/phish",
    "/\r\n/evil.example",
    "\t//evil.example",
    "//evil.example/x",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "https://evil.example/",
    "http:evil.example",
    "/t/\t/evil.example",
    "/t//evil.example",
    " /evil.example",
    "/\x00/evil.example",
    "/\x0b/evil.example",
    "/\x7f/evil.example",
    "/\u2028/evil.example",
    "/\uff0f/evil.example",
]

# building blocks that make parsers disagree: whitespace and controls, slashes, escapes, schemes
PIECES = st.sampled_from(
    [
        "/", "//", "\\", "\t", "\n", "\r", " ", "\x00", "\x0c", "\x7f", "\u2028", "\uff0f",
        "%09", "%0a", "%0d", "%2f", "%2F", "%5c", "%00", "%", ".", "..", "@", ":", "?", "#",
        "evil.example", "t", "t/", "c01", "http:", "https://", "javascript:", "//evil.example",
    ]
)  # fmt: skip
NEXT_VALUES = st.one_of(
    st.lists(PIECES, max_size=8).map("".join),
    st.text(max_size=30).map(lambda s: "/" + s),
    st.from_regex(r"/t/[A-Za-z0-9_-]{1,64}", fullmatch=True),  # pages that must be kept
)


def assert_stays_here(dash: Dash, location: str) -> str:
    """`location` resolved like a browser would: same origin, one of our pages; that page."""
    base = dash.origin + "/login"
    # every parser reads it the same way only if it holds nothing a parser may drop or rewrite
    assert re.fullmatch(r"[A-Za-z0-9/_-]+", location), location
    joined = URL(base).join(URL(location))
    assert joined.origin() == URL(dash.origin).origin(), (location, joined)
    assert OUR_PAGE.fullmatch(joined.path), (location, joined)
    plain = urlsplit(urljoin(base, location))
    assert f"{plain.scheme}://{plain.netloc}" == dash.origin, (location, plain)
    assert plain.path == joined.path
    return joined.path


async def post_login(dash: Dash, next_value: str) -> str:
    resp = await dash.client.post(
        "/login",
        data={"secret": SECRET, "next": next_value},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert COOKIE_NAME in resp.cookies
    return resp.headers["Location"]


async def token_login(dash: Dash, next_value: str) -> str:
    resp = await dash.client.get(
        "/login", params={"token": SECRET, "next": next_value}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert COOKIE_NAME in resp.cookies
    return resp.headers["Location"]


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
async def test_form_login_never_leaves_the_site(dash: Dash, next_value: str) -> None:
    assert assert_stays_here(dash, await post_login(dash, next_value)) == "/"


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
async def test_token_login_never_leaves_the_site(dash: Dash, next_value: str) -> None:
    assert assert_stays_here(dash, await token_login(dash, next_value)) == "/"


@pytest.mark.parametrize(
    "raw_query", ["next=/%09/evil.example", "next=/%0A/evil.example", "next=/%0D%0A/evil.example"]
)
async def test_token_link_with_encoded_controls_stays_here(dash: Dash, raw_query: str) -> None:
    # the issue's `GET /login?token=...&next=/%09/evil.example`, sent byte for byte
    url = URL(f"{dash.origin}/login?token={SECRET}&{raw_query}", encoded=True)
    resp = await dash.client.session.get(url, allow_redirects=False)
    assert resp.status == 303
    assert assert_stays_here(dash, resp.headers["Location"]) == "/"


async def test_our_pages_are_kept(dash: Dash) -> None:
    assert await post_login(dash, "/t/client-01") == "/t/client-01"
    assert await token_login(dash, "/t/c_02") == "/t/c_02"
    assert await post_login(dash, "/") == "/"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(next_value=NEXT_VALUES)
@example(next_value="/\t/evil.example/phish")
@example(next_value="/t/c01")
async def test_any_next_resolves_to_one_of_our_pages(dash: Dash, next_value: str) -> None:
    by_form = assert_stays_here(dash, await post_login(dash, next_value))
    by_link = assert_stays_here(dash, await token_login(dash, next_value))
    assert by_form == by_link
    # a page of ours is kept as it is; anything else is the overview
    assert by_form == (next_value if OUR_PAGE.fullmatch(next_value) else "/")


async def test_a_wrong_secret_keeps_only_a_safe_next(dash: Dash) -> None:
    resp = await dash.client.post(
        "/login",
        data={"secret": "wrong-secret", "next": "/\t/evil.example"},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    )
    assert resp.status == 303
    failed = URL(dash.origin).join(URL(resp.headers["Location"]))
    assert failed.origin() == URL(dash.origin).origin()
    assert failed.path == "/login"
    assert failed.query.get("next") == "/"


async def test_therapist_page_redirect_to_login_keeps_a_safe_next(dash: Dash) -> None:
    resp = await dash.client.get("/t/c01", allow_redirects=False)
    assert resp.status == 303
    target = URL(dash.origin).join(URL(resp.headers["Location"]))
    assert (target.path, target.query.get("next")) == ("/login", "/t/c01")


def test_login_page_script_admits_exactly_the_server_pages() -> None:
    # login.js copies ?next= into the form; its pattern must be the server's own
    script = (REPO_ROOT / "biofeedback" / "web" / "static" / "login.js").read_text()
    m = re.search(r"/\^(.+?)\$/\.test\(next\)", script)
    assert m is not None, "login.js must test ?next= against an anchored pattern"
    js_pattern = m.group(1).replace("\\/", "/")
    assert js_pattern == OUR_PAGE.pattern
