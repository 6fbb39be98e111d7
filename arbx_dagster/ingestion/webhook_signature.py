"""The signature of a price webhook delivery, as its sender computes it (the contract is
in ``service/webhooks.py``, which verifies it)."""

from __future__ import annotations

import hashlib
import hmac
import time


def signed_string(timestamp: int, idempotency_key: str | None, body: bytes) -> bytes:
    """What a ``v2`` signature covers: ``v2``, the timestamp and the Idempotency-Key (empty
    without one) on a line each, then the raw body. Neither a timestamp nor a key can hold a
    newline, so each part is unambiguous and none can be moved into another."""
    return f"v2\n{timestamp}\n{idempotency_key or ''}\n".encode() + body


def mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    secret: str,
    body: bytes,
    timestamp: int | None = None,
    idempotency_key: str | None = None,
    *,
    scheme: str = "v2",
) -> str:
    """The ``X-Arbx-Signature`` value for a delivery (what a sender computes).

    ``scheme="v1"`` gives the legacy signature (timestamp and body only), kept for senders
    that send no Idempotency-Key.
    """
    t = int(time.time()) if timestamp is None else timestamp
    if scheme == "v1":
        if idempotency_key is not None:
            raise ValueError("a v1 signature cannot cover an Idempotency-Key: use v2")
        return f"t={t},v1={mac(secret, f'{t}.'.encode() + body)}"
    if scheme != "v2":
        raise ValueError(f"unknown signature scheme {scheme!r}")
    return f"t={t},v2={mac(secret, signed_string(t, idempotency_key, body))}"


__all__ = ["mac", "sign", "signed_string"]
