"""Every route of the dashboard, in one place.

    GET  /                      therapist: overview of active clients          (cookie)
    GET  /t/<client>            therapist: one client's live page              (cookie)
    GET  /ws[?client=<id>]      therapist: WebSocket, overview or one client   (cookie + Origin)
    GET  /api/overview          therapist: overview rows as JSON               (cookie)
    GET  /api/link/<client>     therapist: the client's own link               (cookie)
    GET  /login, POST /login    therapist secret -> HttpOnly cookie            (POST: Origin)
    POST /logout
    GET  /c/<client>/<sig>      client: their calm page                        (link)
    GET  /c/<client>/<sig>/ws   client: WebSocket for that client only         (link + Origin)
    GET  /healthz               liveness
    GET  /static/...            CSS, JS (no CDN; nothing secret)

WebSocket protocol (JSON text frames) is documented in docs/dashboard.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from yarl import URL

from biofeedback.errors import BiofeedbackError, CommandError
from biofeedback.service.topics import valid_client_id
from biofeedback.web.app import AUTH_KEY, CONFIG_KEY, HOSTS_KEY, HUB_KEY, SOCKETS_KEY
from biofeedback.web.auth import COOKIE_NAME, host_allowed, origin_allowed
from biofeedback.web.hub import ROLE_COMMANDS, Hub, Subscriber

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
WS_MAX_MESSAGE = 8 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse unknown Host names (DNS rebinding) and add protective headers to every answer."""
    if not host_allowed(request, request.app[HOSTS_KEY]):
        host = request.headers.get("Host", "")
        log.warning(
            "dashboard refused a request for host %r: not a name of this dashboard (a name it is "
            "reached by on the network belongs in [web] allowed_hosts)",
            host[:100],
        )
        return web.Response(
            status=421,
            text="unknown host name for this dashboard (the service's [web] allowed_hosts lists "
            "the names it answers to)\n",
        )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # client links carry their secret in the path: never leak it in a Referer
    headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


def setup_routes(app: web.Application) -> None:
    """Attach every route to `app`."""
    r = app.router
    r.add_get("/", overview_page)
    r.add_get("/t/{client}", therapist_client_page)
    r.add_get("/ws", therapist_ws)
    r.add_get("/api/overview", api_overview)
    r.add_get("/api/link/{client}", api_link)
    r.add_get("/login", login_page)
    r.add_post("/login", login_submit)
    r.add_post("/logout", logout)
    r.add_get("/c/{client}/{sig}", client_page)
    r.add_get("/c/{client}/{sig}/ws", client_ws)
    r.add_get("/healthz", healthz)
    r.add_static("/static", STATIC_DIR, follow_symlinks=False, append_version=False)


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": "text/html; charset=utf-8"})


def _too_many_attempts() -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text="too many wrong secrets from this address; wait a minute\n",
        headers={"Retry-After": "60"},
    )


def _require_therapist(request: web.Request, *, page: bool) -> None:
    auth = request.app[AUTH_KEY]
    if auth.is_therapist(request):
        return
    token = request.query.get("token") if page else None
    offered = token is not None or "Authorization" in request.headers
    if offered and auth.locked_out(request.remote):
        # a secret was offered by a source that guessed too often: say so, as documented
        raise _too_many_attempts()
    if token is not None and auth.check_secret(token, request.remote):
        # the URL printed at start-up: set the cookie, then drop the secret from the address bar
        raise _login_response(request, safe_next(request.path))
    if token is not None and auth.locked_out(request.remote):
        raise _too_many_attempts()
    if page:
        raise web.HTTPSeeOther(location=str(URL("/login").with_query(next=safe_next(request.path))))
    raise web.HTTPUnauthorized(text="therapist login required\n")


def _client_id(request: web.Request) -> str:
    client_id = request.match_info["client"]
    if not valid_client_id(client_id):
        raise web.HTTPNotFound(text="no such client\n")
    return client_id


def _require_client_link(request: web.Request) -> str:
    client_id = _client_id(request)
    if not request.app[AUTH_KEY].client_link_valid(client_id, request.match_info["sig"]):
        log.warning("dashboard refused a client link with a wrong signature for %s", client_id)
        raise web.HTTPForbidden(text="this link is not valid (ask your therapist for a new one)\n")
    return client_id


# ---- pages ---------------------------------------------------------------------------------


async def overview_page(request: web.Request) -> web.StreamResponse:
    _require_therapist(request, page=True)
    return _page("therapist.html")


async def therapist_client_page(request: web.Request) -> web.StreamResponse:
    _require_therapist(request, page=True)
    _client_id(request)
    return _page("detail.html")


async def client_page(request: web.Request) -> web.StreamResponse:
    _require_client_link(request)
    return _page("client.html")


async def healthz(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    # counts only: nothing here names a client
    return web.json_response(
        {
            "ok": hub.broker_connected is not False,
            "broker": hub.broker_connected,
            "clients": len(hub.clients()),
            "sockets": hub.subscriber_count,
            **hub.stats,
        }
    )


# ---- login ---------------------------------------------------------------------------------


# Where a login may send the therapist next: the therapist's own pages, nothing else. The
# pattern admits only characters that every URL parser (aiohttp/yarl, urllib, a browser) reads
# the same way: no control characters, spaces, backslashes, percent escapes, "//" or dots.
_NEXT_PAGE = re.compile(r"/(?:t/[A-Za-z0-9_-]{1,64})?")


def safe_next(value: object) -> str:
    """The path to go to after login: `value` if it is one of the therapist pages, else "/".

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    "/\t/evil.example" or "/\\evil.example" would leave this site; such values, and anything
    else that is not exactly a page of ours, give "/".
    """
    if isinstance(value, str) and _NEXT_PAGE.fullmatch(value):
        return value
    return "/"


def _login_response(request: web.Request, location: str) -> web.HTTPSeeOther:
    response = web.HTTPSeeOther(location=location)
    response.set_cookie(
        COOKIE_NAME,
        request.app[AUTH_KEY].issue_cookie(),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int(request.app[CONFIG_KEY].session_ttl_s),
    )
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    token = request.query.get("token")
    if token is not None:
        if auth.locked_out(request.remote):
            raise _too_many_attempts()
        if auth.check_secret(token, request.remote):
            return _login_response(request, safe_next(request.query.get("next")))
        if auth.locked_out(request.remote):
            raise _too_many_attempts()
        raise web.HTTPForbidden(text="wrong or expired login token\n")
    return _page("login.html")


async def login_submit(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request, request.app[HOSTS_KEY]):
        raise web.HTTPForbidden(text="login form posted from another site\n")
    auth = request.app[AUTH_KEY]
    form = await request.post()
    secret = form.get("secret")
    nxt = safe_next(form.get("next"))
    if auth.locked_out(request.remote):
        raise _too_many_attempts()
    if not isinstance(secret, str) or not auth.check_secret(secret, request.remote):
        if auth.locked_out(request.remote):
            raise _too_many_attempts()
        # keep where the therapist was going, so a typo does not lose it
        raise web.HTTPSeeOther(location=str(URL("/login").with_query(failed=1, next=nxt)))
    return _login_response(request, nxt)


async def logout(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request, request.app[HOSTS_KEY]):
        raise web.HTTPForbidden(text="logout posted from another site\n")
    response = web.HTTPSeeOther(location="/login")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


# ---- JSON API --------------------------------------------------------------------------------


async def api_overview(request: web.Request) -> web.StreamResponse:
    _require_therapist(request, page=False)
    return web.json_response({"clients": request.app[HUB_KEY].overview()})


async def api_link(request: web.Request) -> web.StreamResponse:
    _require_therapist(request, page=False)
    client_id = _client_id(request)
    path = request.app[AUTH_KEY].client_path(client_id)
    return web.json_response({"client": client_id, "path": path})


# ---- WebSockets ----------------------------------------------------------------------------


async def therapist_ws(request: web.Request) -> web.StreamResponse:
    _require_therapist(request, page=False)
    client_id = request.query.get("client")
    if client_id is not None and not valid_client_id(client_id):
        raise web.HTTPBadRequest(text="client must be 1-64 of A-Z a-z 0-9 _ -\n")
    return await _serve_ws(request, "therapist", client_id)


async def client_ws(request: web.Request) -> web.StreamResponse:
    client_id = _require_client_link(request)
    return await _serve_ws(request, "client", client_id)


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


async def _serve_ws(request: web.Request, role: str, client_id: str | None) -> web.StreamResponse:
    if not origin_allowed(request, request.app[HOSTS_KEY]):
        log.warning("dashboard refused a WebSocket from origin %r", request.headers.get("Origin"))
        raise web.HTTPForbidden(text="WebSocket from another origin refused\n")
    hub = request.app[HUB_KEY]
    ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=WS_MAX_MESSAGE)
    await ws.prepare(request)
    request.app[SOCKETS_KEY].add(ws)
    with hub.subscribe(role, client_id) as sub:
        hello: dict[str, Any] = {
            "type": "hello",
            "role": role,
            "client": client_id,
            "commands": sorted(ROLE_COMMANDS[role]),
            "broker": hub.broker_connected,
            "srv": hub.now(),
        }
        await ws.send_str(_dumps(hello))
        if client_id is None:
            await ws.send_str(
                _dumps({"type": "overview", "clients": hub.overview(), "srv": hub.now()})
            )
        else:
            state = hub.client(client_id)
            snap = state.snapshot() if state is not None else {"client": client_id, "empty": True}
            await ws.send_str(_dumps({"type": "snapshot", **snap, "srv": hub.now()}))
        async with asyncio.TaskGroup() as tg:
            tasks: set[asyncio.Task[None]] = set()
            writer = tg.create_task(_write_loop(ws, sub))
            try:
                await _read_loop(ws, sub, hub, tg, tasks)
            finally:
                # the socket is gone: nobody is left to tell about late replies
                writer.cancel()
                for task in tasks:
                    task.cancel()
    return ws


async def _write_loop(ws: web.WebSocketResponse, sub: Subscriber) -> None:
    while True:
        message = await sub.queue.get()
        if message is None:
            await ws.close(code=1013, message=b"dashboard fell behind; reconnect")
            return
        if ws.closed:
            return
        try:
            await ws.send_str(message)
        except ConnectionResetError:
            return


async def _read_loop(
    ws: web.WebSocketResponse,
    sub: Subscriber,
    hub: Hub,
    tg: asyncio.TaskGroup,
    tasks: set[asyncio.Task[None]],
) -> None:
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            if msg.type is WSMsgType.BINARY:
                sub.push(_dumps({"type": "error", "error": "binary frames are not understood"}))
            continue
        try:
            data = json.loads(msg.data)
        except ValueError:
            sub.push(_dumps({"type": "error", "error": "message is not JSON"}))
            continue
        if not isinstance(data, dict):
            sub.push(_dumps({"type": "error", "error": "message must be a JSON object"}))
            continue
        kind = data.get("type")
        if kind == "ping":
            sub.push(_dumps({"type": "pong", "c": data.get("c"), "srv": hub.now()}))
        elif kind == "cmd":
            await _handle_command(sub, hub, data, tg, tasks)
        else:
            sub.push(_dumps({"type": "error", "error": f"unknown message type {str(kind)[:40]!r}"}))


async def _handle_command(
    sub: Subscriber,
    hub: Hub,
    data: dict[str, Any],
    tg: asyncio.TaskGroup,
    tasks: set[asyncio.Task[None]],
) -> None:
    ref = data.get("ref")
    ref = ref[:64] if isinstance(ref, str) else None
    target = data.get("client", sub.client_id)
    if not isinstance(target, str) or not valid_client_id(target):
        sub.push(_dumps({"type": "refused", "ref": ref, "error": "command names no valid client"}))
        return
    try:
        command_id = await hub.send_command(sub, target, data.get("cmd"), data.get("args"))
    except CommandError as exc:
        log.warning("dashboard refused a %s command: %s", sub.role, exc)
        sub.push(_dumps({"type": "refused", "ref": ref, "error": str(exc)}))
        return
    except BiofeedbackError as exc:
        log.warning("dashboard could not send a command: %s", exc)
        sub.push(_dumps({"type": "refused", "ref": ref, "error": f"not sent: {exc}"}))
        return
    sub.push(_dumps({"type": "sent", "ref": ref, "id": command_id, "client": target}))
    task = tg.create_task(_reply_timeout(sub, hub, command_id, target, ref))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _reply_timeout(
    sub: Subscriber, hub: Hub, command_id: str, client_id: str, ref: str | None
) -> None:
    await asyncio.sleep(hub.limits.reply_timeout_s)
    if hub.forget_command(command_id):
        error = f"no reply from the session service within {hub.limits.reply_timeout_s:g} s"
        reply = {"id": command_id, "ok": None, "status": "timeout", "error": error}
        sub.push(_dumps({"type": "reply", "client": client_id, "ref": ref, "reply": reply}))
