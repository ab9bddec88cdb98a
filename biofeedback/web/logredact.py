"""Keep the therapist secret and client-link signatures out of aiohttp's log lines.

aiohttp's access log writes each request line, query string included (`GET /?token=<secret>`),
and client links carry their signature in the path (`/c/<client>/<sig>`). Bug reports come with
DEBUG logs attached, so these lines are rewritten before any handler sees them: every query string
becomes `?[redacted]` and every client-link signature `[sig]`. The filter sits on aiohttp's own
loggers, so it holds at every level and whatever handlers the application configures.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED_QUERY = "?[redacted]"
REDACTED_SIG = "[sig]"
# every aiohttp logger that may write a request line or an exception about one
AIOHTTP_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "aiohttp.internal",
)

# a query string: from "?" after a path-like run up to whitespace or a quote (access log format
# quotes the request line, Referer and User-Agent)
_QUERY = re.compile(r"(?<=[^\s\"'?])\?[^\s\"']+")
# a client link's signature segment, also percent-encoded or in a WebSocket path
_CLIENT_LINK = re.compile(r"(/c/[^/\s\"'?]+/)[^/\s\"'?]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with query strings and client-link signatures replaced."""
    return _CLIENT_LINK.sub(r"\g<1>" + REDACTED_SIG, _QUERY.sub(REDACTED_QUERY, text))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, request-line extras and exception text; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            # the access logger copies each field into `extra` (first_request_line, headers)
            if key in {"msg", "message", "args", "exc_info", "exc_text", "stack_info"}:
                continue
            if isinstance(value, str) and ("?" in value or "/c/" in value):
                setattr(record, key, redact(value))
            elif isinstance(value, dict):
                setattr(record, key, _redact_dict(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the filter to aiohttp's loggers (once per process; repeated calls do nothing)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
