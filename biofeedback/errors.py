"""The project's exception hierarchy: every error a user can see is one of these."""

from __future__ import annotations


class BiofeedbackError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(BiofeedbackError):
    """A config or protocol file is missing, malformed or inconsistent (names file and field)."""


class ParseError(BiofeedbackError):
    """A BLE payload, recording line or message could not be decoded (message says why)."""


class DeviceError(BiofeedbackError):
    """A strap could not be found, connected to or read.

    `problem` says what is wrong and `hint` what a person can do about it (empty when the message
    says it all); the message is both.
    """

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(f"{problem}. Fix: {hint}" if hint else problem)
        self.problem = problem
        self.hint = hint


class CalibrationError(BiofeedbackError):
    """A resting baseline could not be produced (too few clean beats, too many corrections...)."""


class CommandError(BiofeedbackError):
    """A command was malformed, not allowed for its role, or not valid in the current state."""


class BrokerError(BiofeedbackError):
    """The MQTT broker could not be started, reached or authenticated against."""


class RecordingError(BiofeedbackError):
    """A recording could not be written or read back (message names the file and line)."""
