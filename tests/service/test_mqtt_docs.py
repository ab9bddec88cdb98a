"""docs/mqtt.md stays true: every example validates, the QoS table is topics.DELIVERY."""

from __future__ import annotations

import json
import re

from biofeedback.service import payloads
from biofeedback.service.commands import parse_command
from biofeedback.service.topics import DELIVERY, Topic
from tests.support import REPO_ROOT

DOC = REPO_ROOT / "docs" / "mqtt.md"


def test_every_payload_kind_has_a_valid_example() -> None:
    text = DOC.read_text()
    found = re.findall(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", text, re.S)
    kinds = {k for k, _ in found}
    assert kinds == set(payloads.KINDS) - {"command"}
    for kind, body in found:
        payloads.validate(kind, json.loads(body))


def test_command_example_parses() -> None:
    text = DOC.read_text()
    m = re.search(r"```json\n(\{\"v\": 1, \"id\": .*?\})\n```", text)
    assert m is not None
    body = json.loads(m.group(1))
    payloads.validate("command", body)
    assert parse_command(m.group(1).encode(), t=0.0, client_id="c-7f3a").command_id == body["id"]


def test_delivery_table_matches_the_code() -> None:
    text = DOC.read_text()
    rows = dict(
        (m.group(1), (int(m.group(2)), m.group(3), m.group(4)))
        for m in re.finditer(
            r"^\| `(\w+)`[^|]*\| [^|]+\| [^|]+\| (\d) \| \**(\w+)\** \| ([^|]+) \|$", text, re.M
        )
    )
    for kind, d in DELIVERY.items():
        qos, retained, expiry = rows[kind.value]
        assert qos == d.qos, kind
        assert (retained == "yes") == d.retain, kind
        want = "-" if d.expiry_s is None else f"{d.expiry_s} s"
        assert expiry.strip() == want, kind
    assert set(rows) >= {k.value for k in Topic}
