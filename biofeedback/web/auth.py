"""Who may see and do what on the dashboard.

- Therapists prove they know the therapist secret once (login form, or `?token=` on /login) and get
  an HttpOnly, SameSite=Strict cookie holding an expiring HMAC token signed with a per-process key
  (restarting the dashboard logs everyone out).
- Each client gets a link `/c/<client-id>/<sig>` where `sig` is an HMAC of the client id under the
  link secret. The link lets its holder watch and act as that one client only. A new link secret
  (one per session run) makes old links useless.
- WebSockets and form posts must come from the dashboard's own origin (no cross-site use of the
  cookie or a leaked link from a page on another origin).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from biofeedback.errors import ConfigError

log = logging.getLogger(__name__)

COOKIE_NAME = "bf_therapist"
LINK_SIG_CHARS = 32  # 128 bits of the HMAC-SHA256, hex
ENV_THERAPIST_SECRET = "BIOFEEDBACK_THERAPIST_SECRET"


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def link_signature(link_secret: str, client_id: str) -> str:
    """The per-client part of a client link."""
    return _mac(link_secret.encode(), f"client-link:v1:{client_id}")[:LINK_SIG_CHARS]


class Auth:
    """Checks therapist secrets, issues/validates cookies, signs and checks client links."""

    def __init__(
        self,
        therapist_secret: str,
        link_secret: str,
        *,
        session_ttl_s: float = 12 * 3600.0,
        wall: Callable[[], float] = time.time,
        max_failures_per_minute: int = 10,
    ) -> None:
        if len(therapist_secret) < 8:
            raise ConfigError(
                f"the therapist secret must be at least 8 characters ({ENV_THERAPIST_SECRET})"
            )
        if len(link_secret) < 16:
            raise ConfigError("the client link secret must be at least 16 characters")
        self._secret = therapist_secret
        self._link_secret = link_secret
        self._cookie_key = secrets.token_bytes(32)
        self._ttl = session_ttl_s
        self._wall = wall
        self._failures: deque[float] = deque()
        self._max_failures = max_failures_per_minute

    # ---- therapist --------------------------------------------------------------------------

    def locked_out(self) -> bool:
        """True after too many wrong secrets in the last minute (slows guessing)."""
        now = self._wall()
        while self._failures and self._failures[0] < now - 60.0:
            self._failures.popleft()
        return len(self._failures) >= self._max_failures

    def check_secret(self, given: str | None) -> bool:
        """Constant-time comparison with the therapist secret; failures are counted and logged."""
        if given is None or self.locked_out():
            return False
        ok = hmac.compare_digest(given.encode(), self._secret.encode())
        if not ok:
            self._failures.append(self._wall())
            log.warning(
                "dashboard: wrong therapist secret (%d in the last minute)", len(self._failures)
            )
        return ok

    def login_token(self) -> str:
        """The secret itself, for the login URL printed to the therapist who started the service."""
        return self._secret

    def issue_cookie(self) -> str:
        """A signed, expiring therapist token for the cookie."""
        expires = int(self._wall() + self._ttl)
        nonce = secrets.token_hex(8)
        return f"{expires}.{nonce}.{_mac(self._cookie_key, f'therapist:{expires}:{nonce}')}"

    def cookie_valid(self, value: str | None) -> bool:
        if not value:
            return False
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expires, nonce, mac = parts
        good = _mac(self._cookie_key, f"therapist:{expires}:{nonce}")
        return hmac.compare_digest(mac.encode(), good.encode()) and int(expires) > self._wall()

    def is_therapist(self, request: web.Request) -> bool:
        """A valid cookie, or `Authorization: Bearer <secret>` (scripts, tests)."""
        if self.cookie_valid(request.cookies.get(COOKIE_NAME)):
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self.check_secret(header[len("Bearer ") :])
        return False

    # ---- client links -----------------------------------------------------------------------

    def client_signature(self, client_id: str) -> str:
        return link_signature(self._link_secret, client_id)

    def client_link_valid(self, client_id: str, sig: str) -> bool:
        return hmac.compare_digest(sig.encode(), self.client_signature(client_id).encode())

    def client_path(self, client_id: str) -> str:
        """Path of the client's own page."""
        return f"/c/{client_id}/{self.client_signature(client_id)}"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def host_name(host_header: str) -> str:
    """Host header without the port ("[::1]:8080" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def host_allowed(request: web.Request, allowed_hosts: frozenset[str]) -> bool:
    """The Host header names this machine as configured (defeats DNS rebinding)."""
    return host_name(request.host or "").lower() in {h.lower() for h in allowed_hosts}


def request_origin(request: web.Request) -> str:
    """The origin this request was addressed to (scheme://host[:port])."""
    return f"{request.scheme}://{request.host}"


def origin_allowed(request: web.Request, allowed_hosts: frozenset[str]) -> bool:
    """Origin is this very server, addressed by an allowed host name.

    Browsers always send Origin on WebSocket handshakes and on posts; a missing Origin is refused
    too, so only a same-origin page can open a socket that carries the cookie or a client link.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == request_origin(request) and host_allowed(request, allowed_hosts)
