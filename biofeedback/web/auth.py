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
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict, deque
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


MAX_LOCKOUT_SOURCES = 4096  # addresses remembered for the lockout; the oldest are forgotten first


def source_key(remote: str | None) -> str:
    """Whom a failed login is counted against: the peer address, IPv6 by its /64 prefix.

    One IPv6 host usually holds a whole /64, so counting single addresses would let it guess on.
    """
    if not remote:
        return "?"
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr.ipv4_mapped or addr) if isinstance(addr, ipaddress.IPv6Address) else str(addr)


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
        max_sources: int = MAX_LOCKOUT_SOURCES,
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
        # source -> times of its wrong secrets in the last minute, least recently failed first;
        # at most max_sources entries of at most max_failures times each
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._max_failures = max_failures_per_minute
        self._max_sources = max_sources

    # ---- therapist --------------------------------------------------------------------------

    def _recent_failures(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        cutoff = self._wall() - 60.0
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def locked_out(self, source: str | None) -> bool:
        """True after too many wrong secrets from this source in the last minute.

        Only the guessing address is slowed down: a therapist elsewhere still gets in.
        """
        times = self._recent_failures(source_key(source))
        return times is not None and len(times) >= self._max_failures

    @property
    def lockout_sources(self) -> int:
        """How many sources the lockout table holds (bounded by `max_sources`)."""
        return len(self._failures)

    def check_secret(self, given: str | None, source: str | None) -> bool:
        """Constant-time comparison with the therapist secret; failures are counted per source.

        Always False while `source` is locked out (callers answer 429 by asking `locked_out`).
        """
        if given is None or self.locked_out(source):
            return False
        ok = hmac.compare_digest(given.encode(), self._secret.encode())
        if not ok:
            key = source_key(source)
            times = self._recent_failures(key) or deque(maxlen=self._max_failures)
            times.append(self._wall())
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self._max_sources:
                self._failures.popitem(last=False)
            log.warning(
                "dashboard: wrong therapist secret from %s (%d in the last minute)", key, len(times)
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
            return self.check_secret(header[len("Bearer ") :], request.remote)
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


def normal_host(name: str) -> str:
    """A host name for comparison: lower case, no trailing dot, IP addresses in canonical form."""
    name = name.strip().lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return name


def _host_header(request: web.Request) -> str:
    # the header itself: aiohttp's request.host falls back to a DNS lookup (getfqdn) without one
    return request.headers.get("Host", "")


def host_allowed(request: web.Request, allowed_hosts: frozenset[str]) -> bool:
    """The Host header names this machine as configured (defeats DNS rebinding).

    `allowed_hosts` holds names already passed through `normal_host`.
    """
    return normal_host(host_name(_host_header(request))) in allowed_hosts


def request_origin(request: web.Request) -> str:
    """The origin this request was addressed to (scheme://host[:port])."""
    return f"{request.scheme}://{_host_header(request)}"


def origin_allowed(request: web.Request, allowed_hosts: frozenset[str]) -> bool:
    """Origin is this very server, addressed by an allowed host name.

    Browsers always send Origin on WebSocket handshakes and on posts; a missing Origin is refused
    too, so only a same-origin page can open a socket that carries the cookie or a client link.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == request_origin(request) and host_allowed(request, allowed_hosts)
