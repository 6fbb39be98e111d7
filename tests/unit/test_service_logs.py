"""Access logs never carry a query string's secrets: the API's own filters are kept, a
credential-like parameter keeps only its name, anything else is redacted whole."""

from __future__ import annotations

import logging

import pytest

from arbx_dagster.service.logs import RedactQueryStrings, redact_target


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/api/opportunities", "/api/opportunities"),
        ("/api/opportunities?kind=glitch&limit=5", "/api/opportunities?kind=glitch&limit=5"),
        ("/health?api_key=secret123", "/health?api_key=[redacted]"),
        ("/health?token=secret123&Api_Key=s3", "/health?token=[redacted]&api_key=[redacted]"),
        ("/health?secret123", "/health?[redacted]"),  # a bare key: its name is the secret
        ("/health?x-api-key=secret123", "/health?[redacted]"),
        ("/health?secret123=1&kind=spread", "/health?[redacted]&kind=spread"),
        ("/api/opportunities?%6Bind=tv&&limit", "/api/opportunities?kind=tv&limit"),
        ("/api/x?cursor=" + "A" * 150, "/api/x?cursor=" + "A" * 100 + "..."),  # cut short
    ],
)
def test_a_request_target_is_logged_without_secrets(target: str, logged: str) -> None:
    assert redact_target(target) == logged


def test_the_filter_rewrites_uvicorn_s_access_record_and_keeps_it() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/config?api_key=secret123&days=7", "1.1", 401),
        None,
    )
    assert RedactQueryStrings().filter(record) is True
    assert record.getMessage() == (
        '127.0.0.1:5000 - "GET /api/config?api_key=[redacted]&days=7 HTTP/1.1" 401'
    )
