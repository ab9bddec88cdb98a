"""The MQTT topic tree, version 1 (documented in docs/mqtt.md).

    biofeedback/v1/<client-id>/<kind>

Client ids are pseudonyms (letters, digits, '-' and '_'), never names.
"""

from __future__ import annotations

import enum
import re

ROOT = "biofeedback"
VERSION = "v1"
SCHEMA_VERSION = 1
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Topic(enum.StrEnum):
    STATUS = "status"  # retained; last will says offline
    BEAT = "beat"  # live sample, QoS 0 with expiry
    METRICS = "metrics"  # live sample, QoS 0 with expiry
    AROUSAL = "arousal"  # live sample, QoS 0 with expiry
    SESSION = "session"  # retained full session state, QoS 1
    GUIDANCE = "guidance"  # retained breathing schedule, QoS 1
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
