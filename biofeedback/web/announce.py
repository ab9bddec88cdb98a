"""What the dashboard tells the person who started it, without putting secrets into any log.

The therapist's sign-in link carries the therapist secret and the client's link its signature.
On an interactive terminal they are shown as they are. Anywhere else (a service manager, a pipe,
a file) standard output ends up in a journal or a log that gets attached to bug reports, so the
links go into a file only the user can read (mode 0600) and the output says where that file is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from biofeedback.errors import ConfigError
from biofeedback.web.lan import lan_addresses, url_host

log = logging.getLogger(__name__)

URLS_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class DashboardUrls:
    """Where the dashboard answers; `therapist` and `client` carry secrets."""

    bases: tuple[str, ...]  # http://host:port, first the one for the links, then the others
    therapist: str  # signs the therapist in (carries the therapist secret)
    client: str  # the client's own screen (carries the link signature)

    def secret_lines(self) -> list[str]:
        return [f"therapist dashboard: {self.therapist}", f"client screen:       {self.client}"]


def dashboard_urls(host: str, port: int, therapist_secret: str, client_path: str) -> DashboardUrls:
    """URLs for a dashboard bound to `host`:`port`.

    Bound to every interface (0.0.0.0 or ::), it is reached through this machine's LAN
    addresses: those come first, so the client link works from the tablet in the room.
    """
    lan = [f"http://{url_host(str(a))}:{port}" for a in lan_addresses(host)]
    local = f"http://{url_host(host)}:{port}"
    bases = (*lan, local) if lan else (local,)
    first = bases[0]
    return DashboardUrls(
        bases=bases,
        therapist=f"{first}/?token={quote(therapist_secret, safe='')}",
        client=first + client_path,
    )


def private_urls_path(client_id: str, port: int, env: Mapping[str, str] | None = None) -> Path:
    """Where the links go when they may not be printed: the user's runtime or state folder.

    One file per client and port: two dashboards running at once never share one.
    """
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        base = Path(runtime)
    else:
        base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "biofeedback" / f"dashboard-{client_id}-{port}.txt"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by this user only (0600), replacing it atomically."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dashboard-", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the dashboard's links to {path}: {exc} "
            "(set XDG_RUNTIME_DIR to a writable private folder, or start from a terminal)"
        ) from exc
    try:
        os.fchmod(fd, URLS_FILE_MODE)  # mkstemp makes 0600 already; say so explicitly
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def announce_dashboard(
    urls: DashboardUrls,
    say: Callable[[str], None],
    *,
    to_terminal: bool,
    private_path: Path,
) -> Iterator[None]:
    """Tell the person who started the service where the dashboard is, for its lifetime.

    `to_terminal`: `say` writes to an interactive terminal, so the links are shown. Otherwise
    they are written to `private_path` (0600, removed again when the dashboard stops) and only
    its location is said.
    """
    others = [b + "/" for b in urls.bases[1:]]
    written = False
    if to_terminal:
        for line in urls.secret_lines():
            say(line)
    else:
        write_private(private_path, "\n".join(urls.secret_lines()) + "\n")
        written = True
        say(
            f"therapist dashboard: {urls.bases[0]}/  (sign-in and client links: {private_path}, "
            "mode 0600; not printed since the output is not a terminal)"
        )
    if others:
        say("also reachable at:   " + "  ".join(others))
    try:
        yield
    finally:
        if written:
            with contextlib.suppress(FileNotFoundError):
                private_path.unlink()
