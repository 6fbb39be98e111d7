"""Access logs without secrets: query strings are redacted before any handler sees them.

Keys belong in the ``Authorization`` header, but a client may put one in the URL
(``?api_key=…``, ``?token=…``), and uvicorn's access log records the whole request target.
The policy, applied to every request target a uvicorn log record carries:

- the path is kept as it is;
- a query parameter named in :data:`LOGGED_PARAMETERS` (the API's own filters and
  paging: harmless, and what one needs to read a log) keeps its value, cut to
  :data:`MAX_VALUE` characters;
- a parameter named like a credential (:data:`CREDENTIAL_NAMES`) keeps its name, so the
  log shows which client misplaced a key, and loses its value: ``api_key=[redacted]``;
- any other parameter is replaced by ``[redacted]`` whole: its name may itself be the
  secret (``/health?<key>``).

So ``/api/opportunities?kind=glitch&api_key=arbx_x&arbx_y`` is logged as
``/api/opportunities?kind=glitch&api_key=[redacted]&[redacted]``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
MAX_VALUE = 100
LOGGED_PARAMETERS = frozenset(
    {
        "kind",
        "retailer",
        "category",
        "min_margin",
        "min_roi",
        "severity",
        "review",
        "status",
        "sort",
        "order",
        "limit",
        "cursor",
        "days",
        "force",
        "since",
    }
)
CREDENTIAL_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "bearer",
        "password",
        "secret",
        "signature",
    }
)
# uvicorn logs requests on "uvicorn.access", WebSocket handshakes on "uvicorn.error".
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_target(target: str) -> str:
    """A request target (``/path?query``) as it may be logged (see the module's policy)."""
    path, separator, query = target.partition("?")
    if not separator:
        return target
    kept: list[str] = []
    for item in query.split("&"):
        if not item:
            continue
        raw_name, equals, value = item.partition("=")
        name = unquote_plus(raw_name).strip().lower()
        if name in LOGGED_PARAMETERS:
            value = value if len(value) <= MAX_VALUE else value[:MAX_VALUE] + "..."
            kept.append(f"{name}={value}" if equals else name)
        elif name in CREDENTIAL_NAMES:
            kept.append(f"{name}={REDACTED}")
        else:
            kept.append(REDACTED)
    return f"{path}?{'&'.join(kept)}"


class RedactQueryStrings(logging.Filter):
    """Rewrites the request targets in a record's arguments (uvicorn formats its access
    line from them: ``'%s - "%s %s HTTP/%s" %d'``); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: Any) -> Any:
    if isinstance(arg, str) and arg.startswith("/") and "?" in arg:
        return redact_target(arg)
    return arg


def redact_uvicorn_logs() -> None:
    """Put :class:`RedactQueryStrings` on uvicorn's loggers (once per process).

    Called by ``create_app``, so it holds wherever the app runs — each ``arbx serve``
    worker, plain ``uvicorn``, gunicorn — and before any handler, ours or a deployment's,
    formats the record.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
