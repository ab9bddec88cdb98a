"""Who may do what on the embedded broker: per-run logins and the topic ACL (docs/mqtt.md,
"Security").

The embedded broker (managed Mosquitto, or the amqtt fallback) admits only the service's own
parts, each with its own user and a random password made for this run (topics are
`biofeedback/v1/<any client>/<kind>`):

- `service` reads `cmd` and `cmd/#`; writes the state and output topics (`status`, `beat`,
  `metrics`, `arousal`, `session`, `guidance`, `event`, `checkin`), `reply` and `reply/#`;
- `dashboard` reads the state and output topics, `reply` and `reply/#`; writes `cmd`;
- `demo-actor` reads `session`, `reply` and `reply/#`; writes `cmd`;
- `observer` reads everything under `biofeedback/v1/` and `$SYS/#`; writes nothing.

Anonymous clients are refused. The same table renders the Mosquitto ACL file and drives the
amqtt topic plugin, so the two cannot drift.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from biofeedback.service.topics import ROOT, VERSION, Topic

Access = Literal["read", "write"]


class BrokerRole(enum.StrEnum):
    """The parts of one run that talk to the embedded broker; each is one broker user."""

    SERVICE = "service"
    DASHBOARD = "dashboard"
    DEMO_ACTOR = "demo-actor"
    OBSERVER = "observer"  # read-only tap for local tools (opt-in, see EmbeddedBroker)


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    """One broker user's name and password (never printed: repr hides the password)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BrokerLogins:
    """Every role's login for one run of the embedded broker (random, made at start)."""

    service: BrokerLogin
    dashboard: BrokerLogin
    demo_actor: BrokerLogin
    observer: BrokerLogin

    @classmethod
    def generate(cls) -> BrokerLogins:
        """Fresh random passwords (192 bits each) for every role."""

        def new(role: BrokerRole) -> BrokerLogin:
            return BrokerLogin(str(role), secrets.token_urlsafe(24))

        return cls(
            service=new(BrokerRole.SERVICE),
            dashboard=new(BrokerRole.DASHBOARD),
            demo_actor=new(BrokerRole.DEMO_ACTOR),
            observer=new(BrokerRole.OBSERVER),
        )

    def for_role(self, role: BrokerRole) -> BrokerLogin:
        """The login of one role."""
        return {
            BrokerRole.SERVICE: self.service,
            BrokerRole.DASHBOARD: self.dashboard,
            BrokerRole.DEMO_ACTOR: self.demo_actor,
            BrokerRole.OBSERVER: self.observer,
        }[role]

    def all(self) -> tuple[BrokerLogin, ...]:
        """Every login, in role order."""
        return (self.service, self.dashboard, self.demo_actor, self.observer)


@dataclass(frozen=True, slots=True)
class Grants:
    """Topic filters one user may read (subscribe to, receive) and write (publish, last will)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


def _each(*kinds: str) -> tuple[str, ...]:
    return tuple(f"{ROOT}/{VERSION}/+/{kind}" for kind in kinds)


# What the service publishes: every topic but commands and replies (docs/mqtt.md topic table).
STATE_KINDS: tuple[Topic, ...] = tuple(k for k in Topic if k not in (Topic.CMD, Topic.REPLY))
_REPLIES = _each(Topic.REPLY, f"{Topic.REPLY}/#")

EMBEDDED_ACL: Mapping[BrokerRole, Grants] = {
    BrokerRole.SERVICE: Grants(
        read=_each(Topic.CMD, f"{Topic.CMD}/#"),
        write=(*_each(*STATE_KINDS), *_REPLIES),
    ),
    # Commands only on plain `cmd`: the dashboard sets each command's role from the browser user
    # it authenticated. Nobody on the embedded broker may write the role-bound `cmd/<role>`.
    BrokerRole.DASHBOARD: Grants(read=(*_each(*STATE_KINDS), *_REPLIES), write=_each(Topic.CMD)),
    BrokerRole.DEMO_ACTOR: Grants(
        read=(*_each(Topic.SESSION, Topic.ASSESSMENT), *_REPLIES), write=_each(Topic.CMD)
    ),
    BrokerRole.OBSERVER: Grants(read=(f"{ROOT}/{VERSION}/#", "$SYS/#")),
}


def filter_covers(grant: str, topic_filter: str) -> bool:
    """True when every topic that `topic_filter` matches is also matched by `grant`.

    With a plain topic as `topic_filter` this is MQTT topic matching; with a wildcard filter it
    says whether a subscription stays inside what the grant allows. `a/#` covers `a` itself, as
    in MQTT; a wildcard in the first level never covers a `$` topic.
    """
    g = grant.split("/")
    f = topic_filter.split("/")
    if topic_filter.startswith("$") and g[0] in ("+", "#"):
        return False
    for i, level in enumerate(g):
        if level == "#":
            return True
        if i >= len(f):
            return False
        want = f[i]
        if want == "#":
            return False  # the filter reaches deeper levels than this grant allows
        if level == "+":
            continue  # one level: any literal or a '+' in the filter
        if level != want:
            return False
    return len(f) == len(g)


def allowed(grants: Grants, access: Access, topic_filter: str) -> bool:
    """True when `grants` let a user `access` every topic of `topic_filter`."""
    filters = grants.read if access == "read" else grants.write
    return any(filter_covers(g, topic_filter) for g in filters)


def mosquitto_acl(acl: Mapping[BrokerRole, Grants] = EMBEDDED_ACL) -> str:
    """The text of a Mosquitto ACL file for these grants (anything not listed is denied)."""
    lines = ["# generated by biofeedback.service.broker_access; anything not granted is denied"]
    for role, grants in acl.items():
        lines += ["", f"user {role}"]
        lines += [f"topic read {t}" for t in grants.read]
        lines += [f"topic write {t}" for t in grants.write]
    return "\n".join(lines) + "\n"
