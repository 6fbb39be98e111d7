"""The files the price webhook lands (``service/webhooks.py``): one per retailer, market day
and delivery, written under a partial name and renamed into place, so the file-drop
connector can take them whole the moment they appear."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

WEBHOOK_FILE = re.compile(r"^webhook-\d{4}-\d{2}-\d{2}-[0-9a-f]{24}\.jsonl$")


def webhook_file_name(day: str, delivery: str) -> str:
    """The name of a webhook delivery's file for one market day (``delivery``: its storage
    id, a sha256 hex digest)."""
    return f"webhook-{day}-{delivery[:24]}.jsonl"


def landed_by_webhook(relpath: str) -> bool:
    """Whether the file at ``relpath`` is one the price webhook landed (whole at once)."""
    return bool(WEBHOOK_FILE.match(PurePosixPath(relpath).name))
