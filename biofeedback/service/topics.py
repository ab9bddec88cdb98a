"""The MQTT topic tree, version 1 (documented in docs/mqtt.md).

    biofeedback/v1/<client-id>/<kind>

Client ids are pseudonyms (letters, digits, '-' and '_'), never names.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

ROOT = "biofeedback"
VERSION = "v1"
SCHEMA_VERSION = 1
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Topic(enum.StrEnum):
    STATUS = "status"  # retained; last will says offline
    BEAT = "beat"  # live sample, QoS 0 with expiry
    METRICS = "metrics"  # live sample, QoS 0 with expiry
    AROUSAL = "arousal"  # live sample, QoS 0 with expiry
    ECG = "ecg"  # raw ECG of a strap that streams it, batched at most 1/s, QoS 0 with expiry
    BREATHING = "breathing"  # chest breathing (strap ACC) at most 1/s, QoS 0; therapist only
    MOVEMENT = "movement"  # chest movement index (strap ACC) at most 1/s, QoS 0
    SESSION = "session"  # retained full session state, QoS 1
    GUIDANCE = "guidance"  # retained breathing schedule, QoS 1
    ASSESSMENT = "assessment"  # retained resonance-assessment state (docs/resonance.md), QoS 1
    EVENT = "event"  # session and device events, QoS 1
    CHECKIN = "checkin"  # SUDS prompts and answers, QoS 1
    CMD = "cmd"  # commands in, QoS 1
    REPLY = "reply"  # command replies (MQTT 3.1.1; v5 uses the response topic), QoS 1


def valid_client_id(client_id: str) -> bool:
    """True when `client_id` is a usable pseudonym for topics and folder names."""
    return bool(_CLIENT_ID.fullmatch(client_id))


def topic(client_id: str, kind: Topic) -> str:
    """Full topic for one client and kind."""
    if not valid_client_id(client_id):
        raise ValueError(f"client id {client_id!r} must be 1-64 of A-Z a-z 0-9 _ -")
    return f"{ROOT}/{VERSION}/{client_id}/{kind}"


def all_clients(kind: Topic | str = "#") -> str:
    """Subscription filter for one kind (or everything) of every client."""
    return f"{ROOT}/{VERSION}/+/{kind}" if kind != "#" else f"{ROOT}/{VERSION}/#"


def parse_topic(name: str) -> tuple[str, Topic] | None:
    """(client id, kind) of a topic in this tree, or None for anything else."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT or parts[1] != VERSION:
        return None
    if not valid_client_id(parts[2]):
        return None
    try:
        return parts[2], Topic(parts[3])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one kind of message travels: QoS, retained or not, and MQTT 5 message expiry."""

    qos: int
    retain: bool
    expiry_s: int | None  # None: never expires (MQTT 5 only; ignored on 3.1.1)

    @property
    def is_sample(self) -> bool:
        """Live samples are the first thing dropped when the offline queue is full."""
        return self.qos == 0


# The per-kind policy documented in docs/mqtt.md ("QoS, retain and expiry").
DELIVERY: Mapping[Topic, Delivery] = {
    Topic.STATUS: Delivery(qos=1, retain=True, expiry_s=None),
    Topic.BEAT: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.METRICS: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.AROUSAL: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.ECG: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.BREATHING: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.MOVEMENT: Delivery(qos=0, retain=False, expiry_s=10),
    Topic.SESSION: Delivery(qos=1, retain=True, expiry_s=None),
    Topic.GUIDANCE: Delivery(qos=1, retain=True, expiry_s=None),
    Topic.ASSESSMENT: Delivery(qos=1, retain=True, expiry_s=None),
    Topic.EVENT: Delivery(qos=1, retain=False, expiry_s=None),
    Topic.CHECKIN: Delivery(qos=1, retain=False, expiry_s=None),
    # Commands expire so that a consent typed minutes ago is never applied late.
    Topic.CMD: Delivery(qos=1, retain=False, expiry_s=30),
    Topic.REPLY: Delivery(qos=1, retain=False, expiry_s=60),
}


def delivery(kind: Topic) -> Delivery:
    """QoS, retain flag and expiry for one kind of message."""
    return DELIVERY[kind]


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: consumers in one `group` split the messages between them."""
    if not group or any(c in group for c in "/+#"):
        raise ValueError(f"shared subscription group {group!r} must be non-empty without / + #")
    return f"$share/{group}/{topic_filter}"


def reply_topic_ok(client_id: str, response_topic: str) -> bool:
    """True when an MQTT 5 response topic lies at or under this client's `reply` topic.

    Replies go only there, so a command cannot make the service publish onto another topic.
    """
    base = topic(client_id, Topic.REPLY)
    if response_topic == base:
        return True
    if not response_topic.startswith(base + "/"):
        return False
    rest = response_topic[len(base) + 1 :]
    return bool(rest) and not any(c in rest for c in "+#\x00")


# Role-bound command topics: biofeedback/v1/<client-id>/cmd/<role>. The broker's ACL decides who
# may write each one, so the role a command names can be checked against who could send it.
# Plain `cmd` stays for trusted senders (the dashboard hub, which authenticates its own users).
COMMAND_ROLES = ("client", "therapist")


def command_topic(client_id: str, role: str | None = None) -> str:
    """`.../cmd`, or `.../cmd/<role>` for a role-bound command topic."""
    base = topic(client_id, Topic.CMD)
    if role is None:
        return base
    if role not in COMMAND_ROLES:
        raise ValueError(f"command role must be one of {', '.join(COMMAND_ROLES)}, got {role!r}")
    return f"{base}/{role}"


def command_topic_role(client_id: str, name: str) -> tuple[bool, str | None]:
    """(is a command topic of this client, the role it is bound to or None for plain `cmd`)."""
    base = topic(client_id, Topic.CMD)
    if name == base:
        return True, None
    for role in COMMAND_ROLES:
        if name == f"{base}/{role}":
            return True, role
    return False, None
