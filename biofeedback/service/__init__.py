"""The asyncio service: wires a device to the signal pipeline and the session, over MQTT."""

from __future__ import annotations
