"""Devices: chest straps (BLE), the simulated strap and replay, all yielding parsed readings."""

from __future__ import annotations

from biofeedback.devices.hrm import encode_heart_rate_measurement, parse_heart_rate_measurement
from biofeedback.devices.readings import (
    Beat,
    Device,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    DeviceReading,
    HeartRateMeasurement,
    Notification,
)

__all__ = [
    "Beat",
    "Device",
    "DeviceEvent",
    "DeviceEventKind",
    "DeviceInfo",
    "DeviceReading",
    "HeartRateMeasurement",
    "Notification",
    "encode_heart_rate_measurement",
    "parse_heart_rate_measurement",
]
