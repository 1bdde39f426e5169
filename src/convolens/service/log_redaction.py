"""Credentials never reach a log line: a logging filter that masks API keys, bearer tokens,
passwords in URLs and secret-looking query parameters in every record the server writes.

Why a filter on the handlers rather than care at each call site: the lines that leak are
written by code we do not own -- uvicorn's access log prints the full request line, so
`WS /v1/stream?api_key=clk_...` landed in the log whole -- and by exception messages that
quote a URL. `log_config()` is uvicorn's logging configuration with this filter on every
handler, and a root handler so that every other logger (convolens', libraries') goes
through it too.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "RedactCredentials", "log_config", "redact"]

REDACTED = "[REDACTED]"

# A convolens key anywhere (clk_<id>_<secret>): the id stays, it names the key and is no secret.
_API_KEY = re.compile(r"\b(clk_[A-Za-z0-9-]{1,32}_)[A-Za-z0-9_.~%-]+")
# ?api_key=... &token=... in a query string (names also percent-encoded: api%5Fkey).
_QUERY_SECRET = re.compile(
    r"(?i)((?:^|[?&;\s])(?:api(?:[_-]|%5f|%2d)?key|key|token|access(?:[_-]|%5f)?token|"
    r"refresh(?:[_-]|%5f)?token|secret|client(?:[_-]|%5f)?secret|password|passwd|pwd|"
    r"sig|signature|auth|session)=)[^&\s\"'#;]*"
)
# Authorization: Bearer ... / Basic ..., and header dumps such as 'x-api-key': '...'.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer(?=\s+\S{6})|basic(?=\s+[A-Za-z0-9+/=]{12}))(\s+)\S+")
_SECRET_HEADER = re.compile(
    r"(?i)((?:authorization|x-api-key|cookie|set-cookie|x-convolens-signature)['\"]?\s*[:=,]\s*"
    r"['\"]?)[^'\"\r\n]+"
)
# scheme://user:password@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")


def redact(text: str) -> str:
    """`text` with every credential this module knows the shape of masked."""
    text = _SECRET_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _API_KEY.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _AUTH_SCHEME.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value  # numbers keep their type: '%d' and uvicorn's status code need it
    text = str(value)
    masked = redact(text)
    return value if masked == text else masked


class RedactCredentials(logging.Filter):
    """Masks credentials in a record's message, arguments and traceback; never drops it.

    Arguments are redacted one by one rather than flattened into the message, because
    uvicorn's access formatter reads them as a tuple (client, method, path, version, status).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: format the traceback here, masked.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's logging configuration, every handler filtered by `RedactCredentials`,
    plus a root handler for the other loggers (convolens' own at `level`)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_credentials": {"()": RedactCredentials}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_credentials"]
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    config["loggers"]["convolens"] = {"level": level}
    return config
