"""The dashboard: an aiohttp app fed from MQTT, pushing live state to browsers over WebSocket."""

from __future__ import annotations

from biofeedback.web.app import WebConfig, client_url, create_app, therapist_login_url

__all__ = ["WebConfig", "client_url", "create_app", "therapist_login_url"]
