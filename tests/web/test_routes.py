"""Routes, access rules, Origin checks and the WebSocket protocol, over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest

from biofeedback.web.auth import COOKIE_NAME, link_signature
from biofeedback.web.routes import STATIC_DIR
from tests.web.conftest import LINK_SECRET, SECRET, Dash

T0 = 1_700_000_000.0


def pub(dash: Dash, client: str, kind: str, **payload: Any) -> None:
    payload.setdefault("v", 1)
    assert dash.hub.ingest(f"biofeedback/v1/{client}/{kind}", json.dumps(payload).encode())


async def login(dash: Dash) -> None:
    resp = await dash.client.post(
        "/login",
        data={"secret": SECRET, "next": "/"},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/"
    cookie = resp.cookies[COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"


async def recv(
    ws: aiohttp.ClientWebSocketResponse, kind: str, within: float = 2.0
) -> dict[str, Any]:
    """Next message of type `kind` (others are skipped)."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive_json()
            if msg["type"] == kind:
                return msg  # type: ignore[no-any-return]


def client_path(client: str) -> str:
    return f"/c/{client}/{link_signature(LINK_SECRET, client)}"


# ---- therapist access ------------------------------------------------------------------------


async def test_therapist_pages_refused_without_secret(dash: Dash) -> None:
    resp = await dash.client.get("/", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/login")
    resp = await dash.client.get("/t/c01", allow_redirects=False)
    assert resp.status == 303
    assert (await dash.client.get("/api/overview")).status == 401
    assert (await dash.client.get("/api/link/c01")).status == 401
    assert (await dash.client.get("/ws", headers={"Origin": dash.origin})).status == 401


async def test_login_form_sets_cookie_and_opens_pages(dash: Dash) -> None:
    await login(dash)
    resp = await dash.client.get("/")
    assert resp.status == 200
    assert "Active clients" in await resp.text()
    resp = await dash.client.get("/t/c01")
    assert resp.status == 200
    resp = await dash.client.get("/api/link/c01")
    assert (await resp.json())["path"] == client_path("c01")


async def test_wrong_secret_is_refused_and_guessing_is_slowed(dash: Dash) -> None:
    resp = await dash.client.post(
        "/login",
        data={"secret": "nope-nope"},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/login?failed=1&next=/"
    assert COOKIE_NAME not in resp.cookies
    for _ in range(10):
        await dash.client.post("/login", data={"secret": "x" * 9}, headers={"Origin": dash.origin})
    resp = await dash.client.post(
        "/login", data={"secret": SECRET}, headers={"Origin": dash.origin}, allow_redirects=False
    )
    assert resp.status == 429


async def test_login_post_from_another_origin_is_refused(dash: Dash) -> None:
    resp = await dash.client.post(
        "/login", data={"secret": SECRET}, headers={"Origin": "http://evil.example"}
    )
    assert resp.status == 403
    resp = await dash.client.post("/login", data={"secret": SECRET})  # no Origin at all
    assert resp.status == 403


async def test_token_in_url_logs_in_and_is_dropped_from_address(dash: Dash) -> None:
    resp = await dash.client.get(f"/?token={SECRET}", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    assert COOKIE_NAME in resp.cookies
    assert (await dash.client.get("/api/overview")).status == 200
    resp = await dash.client.get("/login?token=wrong-token")
    assert resp.status == 403


async def test_bearer_secret_works_for_api(dash: Dash) -> None:
    pub(dash, "c01", "arousal", t=T0, value=42.0)
    resp = await dash.client.get("/api/overview", headers={"Authorization": f"Bearer {SECRET}"})
    rows = (await resp.json())["clients"]
    assert [r["client"] for r in rows] == ["c01"]
    assert rows[0]["arousal"] == 42.0


async def test_forged_cookie_is_refused(dash: Dash) -> None:
    dash.client.session.cookie_jar.update_cookies({COOKIE_NAME: "9999999999.abcd.deadbeef"})
    assert (await dash.client.get("/api/overview")).status == 401


async def test_login_redirect_stays_on_this_site(dash: Dash) -> None:
    resp = await dash.client.post(
        "/login",
        data={"secret": SECRET, "next": "//evil.example/x"},
        headers={"Origin": dash.origin},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/"


async def test_unknown_host_name_is_refused(dash: Dash) -> None:
    # DNS rebinding: a page on rebind.example resolving to 127.0.0.1 sends that Host
    resp = await dash.client.get("/healthz", headers={"Host": f"rebind.example:{dash.client.port}"})
    assert resp.status == 421
    resp = await dash.client.get("/healthz", headers={"Host": f"localhost:{dash.client.port}"})
    assert resp.status == 200


async def test_security_headers(dash: Dash) -> None:
    resp = await dash.client.get(client_path("c01"))
    assert resp.status == 200
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    resp = await dash.client.get("/login", allow_redirects=False)
    assert resp.headers["X-Frame-Options"] == "DENY"


# ---- client links ----------------------------------------------------------------------------


async def test_client_link_only_opens_its_own_client(dash: Dash) -> None:
    assert (await dash.client.get(client_path("c01"))).status == 200
    sig_a = link_signature(LINK_SECRET, "c01")
    assert (await dash.client.get(f"/c/c02/{sig_a}")).status == 403
    assert (await dash.client.get("/c/c01/" + "0" * 32)).status == 403
    assert (
        await dash.client.get(f"/c/c01/{link_signature('another-secret-0123456', 'c01')}")
    ).status == 403
    # a link is not a therapist login
    assert (await dash.client.get("/api/overview")).status == 401


def test_link_signature_depends_on_client_and_secret() -> None:
    a = link_signature(LINK_SECRET, "c01")
    assert a == link_signature(LINK_SECRET, "c01")
    assert a != link_signature(LINK_SECRET, "c02")
    assert a != link_signature(LINK_SECRET + "x", "c01")
    assert re.fullmatch(r"[0-9a-f]{32}", a)


# ---- WebSocket: Origin ------------------------------------------------------------------------


async def test_websocket_from_other_origin_is_refused(dash: Dash) -> None:
    await login(dash)
    for headers in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await dash.client.ws_connect("/ws", headers=headers)
        assert info.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await dash.client.ws_connect(
            client_path("c01") + "/ws", headers={"Origin": "http://evil.example"}
        )
    assert info.value.status == 403
    assert dash.hub.subscriber_count == 0


async def test_client_websocket_needs_a_valid_link(dash: Dash) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await dash.client.ws_connect("/c/c01/" + "f" * 32 + "/ws", headers={"Origin": dash.origin})
    assert info.value.status == 403


# ---- WebSocket: protocol ----------------------------------------------------------------------


async def test_overview_gets_live_summaries(dash: Dash) -> None:
    await login(dash)
    pub(dash, "c01", "status", t=T0, state="online", battery=80)
    async with dash.client.ws_connect("/ws", headers={"Origin": dash.origin}) as ws:
        hello = await recv(ws, "hello")
        assert hello["role"] == "therapist"
        assert "consent" not in hello["commands"]  # consent is the client's alone
        overview = await recv(ws, "overview")
        assert overview["clients"][0]["battery"] == 80
        pub(dash, "c02", "arousal", t=T0 + 1, value=71.5, confidence=0.9)
        batch = await recv(ws, "summaries")
        assert [(r["client"], r["arousal"]) for r in batch["summaries"]] == [("c02", 71.5)]


async def test_client_page_gets_snapshot_then_updates(dash: Dash) -> None:
    pub(
        dash,
        "c01",
        "session",
        t=T0,
        state="step_offered",
        step_index=0,
        steps=[{"title": "Look at photo"}],
    )
    pub(dash, "c01", "metrics", t=T0, hr_bpm=72.0, rmssd_ms=40.0)
    pub(dash, "c02", "metrics", t=T0, hr_bpm=99.0, rmssd_ms=10.0)
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        hello = await recv(ws, "hello")
        assert hello["role"] == "client"
        assert set(hello["commands"]) == {
            "pause",
            "consent",
            "decline",
            "suds",
            "choose_grounding",
            "ready",
            "assessment_consent",
            "assessment_decline",
            "assessment_stop",
            "choose_rate",
        }
        snap = await recv(ws, "snapshot")
        assert snap["session"]["consent_needed"] is True
        assert snap["session"]["step_title"] == "Look at photo"
        assert snap["points"][0]["hr"] == 72.0
        pub(dash, "c02", "metrics", t=T0 + 1, hr_bpm=98.0)  # another client: must not arrive
        pub(dash, "c01", "metrics", t=T0 + 1, hr_bpm=73.0, rmssd_ms=41.0)
        update = await recv(ws, "update")
        assert update["point"]["hr"] == 73.0
        assert update["clock"]["t"] == T0 + 1


async def test_client_commands_carry_client_role_and_only_client_commands(dash: Dash) -> None:
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        await ws.send_json({"type": "cmd", "ref": "r1", "cmd": "consent", "args": {}})
        sent = await recv(ws, "sent")
        assert sent["ref"] == "r1"
        client_id, payload = dash.sink.sent[-1]
        body = json.loads(payload)
        assert client_id == "c01"
        assert body["role"] == "client"
        assert body["cmd"] == "consent"
        assert body["id"] == sent["id"]
        assert body["v"] == 1
        # the browser cannot claim to be a therapist, nor act for someone else
        await ws.send_json(
            {
                "type": "cmd",
                "ref": "r2",
                "cmd": "adjust_thresholds",
                "args": {"upper": 90},
                "role": "therapist",
            }
        )
        refused = await recv(ws, "refused")
        assert refused["ref"] == "r2"
        assert "not allowed for role 'client'" in refused["error"]
        await ws.send_json({"type": "cmd", "ref": "r3", "cmd": "pause", "client": "c02"})
        refused = await recv(ws, "refused")
        assert "own client" in refused["error"]
        await ws.send_json({"type": "cmd", "ref": "r4", "cmd": "suds", "args": {"value": 140}})
        refused = await recv(ws, "refused")
        assert "0 to 100" in refused["error"]
    assert len(dash.sink.sent) == 1


async def test_therapist_command_gets_its_reply(dash: Dash) -> None:
    await login(dash)
    async with dash.client.ws_connect("/ws?client=c01", headers={"Origin": dash.origin}) as ws:
        await recv(ws, "snapshot")
        await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause", "args": {}})
        sent = await recv(ws, "sent")
        body = json.loads(dash.sink.sent[-1][1])
        assert (body["role"], body["cmd"]) == ("therapist", "pause")
        pub(dash, "c01", "reply", t=T0, id=sent["id"], ok=True, status="applied")
        reply = await recv(ws, "reply")
        assert reply["reply"] == {
            "t": T0,
            "id": sent["id"],
            "ok": True,
            "status": "applied",
            "error": None,
        }
        await ws.send_json({"type": "cmd", "ref": "c", "cmd": "consent"})
        refused = await recv(ws, "refused")
        assert "not allowed for role 'therapist'" in refused["error"]


async def test_missing_reply_is_reported_not_hidden(dash: Dash) -> None:
    await login(dash)
    async with dash.client.ws_connect("/ws?client=c01", headers={"Origin": dash.origin}) as ws:
        await ws.send_json({"type": "cmd", "ref": "e", "cmd": "end"})
        sent = await recv(ws, "sent")
        reply = await recv(ws, "reply", within=3)
        assert reply["reply"]["id"] == sent["id"]
        assert reply["reply"]["ok"] is None
        assert "no reply" in reply["reply"]["error"]


async def test_no_broker_means_commands_are_refused_clearly(dash: Dash) -> None:
    dash.hub.set_sink(None)
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        await ws.send_json({"type": "cmd", "ref": "x", "cmd": "pause"})
        refused = await recv(ws, "refused")
        assert "not connected to the MQTT broker" in refused["error"]


async def test_junk_websocket_messages_get_errors_not_crashes(dash: Dash) -> None:
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        await ws.send_str("{not json")
        assert "not JSON" in (await recv(ws, "error"))["error"]
        await ws.send_str("[1,2]")
        assert "object" in (await recv(ws, "error"))["error"]
        await ws.send_json({"type": "teleport"})
        assert "unknown message type" in (await recv(ws, "error"))["error"]
        await ws.send_bytes(b"\x00\x01")
        assert "binary" in (await recv(ws, "error"))["error"]
        await ws.send_json({"type": "ping", "c": 12.5})
        pong = await recv(ws, "pong")
        assert pong["c"] == 12.5
        assert pong["srv"] > T0
        await ws.send_str("x" * 20_000)  # larger than the protocol allows: the socket closes
        msg = await ws.receive()
        assert msg.type in {
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        }


async def test_websockets_are_closed_and_unsubscribed_on_shutdown(dash: Dash) -> None:
    ws = await dash.client.ws_connect(client_path("c01") + "/ws", headers={"Origin": dash.origin})
    await recv(ws, "snapshot")
    assert dash.hub.subscriber_count == 1
    await ws.close()
    for _ in range(50):
        if dash.hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.02)
    assert dash.hub.subscriber_count == 0


# ---- assets ------------------------------------------------------------------------------------


async def test_static_assets_are_served_and_need_no_internet(dash: Dash) -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"client.html", "therapist.html", "detail.html", "common.js", "pacer.js"} <= set(names)
    for name in names:
        body = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", body), (
            f"{name} loads something from the network"
        )
        assert "@import url(http" not in body
        if name.endswith((".js", ".css")):
            resp = await dash.client.get(f"/static/{name}")
            assert resp.status == 200
    assert (await dash.client.get("/static/../app.py")).status in {403, 404}


async def test_healthz(dash: Dash) -> None:
    resp = await dash.client.get("/healthz")
    body = await resp.json()
    assert body["ok"] is True
    assert body["broker"] is None  # this app has no broker configured
    assert (body["clients"], body["sockets"], body["rejected"]) == (0, 0, 0)


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("sheet", ["client.css", "dashboard.css"])
def test_text_colours_meet_wcag_aa(sheet: str) -> None:
    css = (STATIC_DIR / sheet).read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", css))
    for fg in ("ink", "muted"):
        assert _contrast(colours[fg], colours["bg"]) >= 4.5, (sheet, fg)


def test_bad_web_config_gets_a_clear_error() -> None:
    from biofeedback.errors import ConfigError
    from biofeedback.web import WebConfig, create_app

    with pytest.raises(ConfigError, match="port must be 0-65535"):
        WebConfig(port=70000)
    with pytest.raises(ConfigError, match="at least 8 characters"):
        create_app(WebConfig(therapist_secret="short", link_secret=LINK_SECRET))
    with pytest.raises(ConfigError, match="link secret"):
        create_app(WebConfig(therapist_secret=SECRET, link_secret="short"))


async def test_only_a_pause_is_sent_while_the_broker_is_away(dash: Dash) -> None:
    dash.sink.connected = False
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        await ws.send_json({"type": "cmd", "ref": "c", "cmd": "consent"})
        refused = await recv(ws, "refused")
        assert "lost its connection to the MQTT broker" in refused["error"]
        await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause"})
        assert (await recv(ws, "sent"))["ref"] == "p"
    assert [json.loads(p)["cmd"] for _, p in dash.sink.sent] == ["pause"]


async def test_a_page_cannot_flood_the_session_with_commands(dash: Dash) -> None:
    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        for i in range(25):
            await ws.send_json({"type": "cmd", "ref": f"r{i}", "cmd": "suds", "args": {"value": 5}})
        refused = await recv(ws, "refused")
        assert refused["ref"] == "r20"
        assert "more than 20 commands in 10 s" in refused["error"]
        # but a pause still goes through
        await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause"})
        assert (await recv(ws, "sent"))["ref"] == "p"
    assert [json.loads(p)["cmd"] for _, p in dash.sink.sent] == ["suds"] * 20 + ["pause"]


async def test_logout_clears_the_cookie(dash: Dash) -> None:
    await login(dash)
    assert (await dash.client.get("/api/overview")).status == 200
    resp = await dash.client.post("/logout", headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    resp = await dash.client.post("/logout", headers={"Origin": dash.origin}, allow_redirects=False)
    assert resp.status == 303
    assert (await dash.client.get("/api/overview")).status == 401


async def test_random_frames_never_break_the_socket(dash: Dash) -> None:
    """Fuzz: 300 random JSON frames get an answer each and the socket stays usable."""
    import random

    rng = random.Random(7)
    atoms: list[Any] = [None, True, 0, -1, 1e308, "pause", "consent", "x" * 70, [], {}, "c01"]

    def junk(depth: int = 0) -> Any:
        if depth > 2 or rng.random() < 0.4:
            return rng.choice(atoms)
        if rng.random() < 0.5:
            return [junk(depth + 1) for _ in range(rng.randint(0, 3))]
        keys = ["type", "cmd", "args", "ref", "client", "value", "upper", "c"]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 4))}

    async with dash.client.ws_connect(
        client_path("c01") + "/ws", headers={"Origin": dash.origin}
    ) as ws:
        await recv(ws, "snapshot")
        for i in range(300):
            frame = junk()
            if isinstance(frame, dict) and rng.random() < 0.5:
                frame["type"] = rng.choice(["cmd", "ping"])
            await ws.send_str(json.dumps(frame))
            # every frame is answered (error / refused / sent / pong) and nothing else happens
            async with asyncio.timeout(2):
                answer = await ws.receive_json()
                while answer["type"] == "reply":  # a reply timeout of an earlier command
                    answer = await ws.receive_json()
            assert answer["type"] in {"error", "refused", "sent", "pong"}, (i, frame, answer)
        await ws.send_json({"type": "ping", "c": 1.0})
        assert (await recv(ws, "pong"))["c"] == 1.0
    for _, payload in dash.sink.sent:
        body = json.loads(payload)
        assert body["role"] == "client"
        assert body["cmd"] in {"pause", "consent", "decline", "suds", "choose_grounding"}
