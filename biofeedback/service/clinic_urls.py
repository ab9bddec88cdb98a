"""The dashboard's links for a group: the therapist's, and one client screen per client."""

from __future__ import annotations

from dataclasses import dataclass

from biofeedback.web.announce import DashboardUrls


@dataclass(frozen=True, slots=True)
class GroupUrls(DashboardUrls):
    """`DashboardUrls` with a screen link per client; `client` stays the first one's."""

    clients: tuple[tuple[str, str], ...] = ()  # (client id, its screen's link)

    def secret_lines(self) -> list[str]:
        """The lines that carry secrets: shown on a terminal, else written to a 0600 file."""
        width = max((len(c) for c, _ in self.clients), default=0)
        return [f"therapist dashboard: {self.therapist}"] + [
            f"client screen {c:<{width}}: {url}" for c, url in self.clients
        ]
