"""The pipeline's notion of "now", pinnable so that runs and tests are reproducible."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field


class ClockResource(dg.ConfigurableResource):
    """Wall-clock time unless ``as_of`` pins it (ISO 8601, e.g. 2026-11-23T18:00:00Z)."""

    as_of: str | None = Field(default=None, description="Pinned UTC time (ARBX_AS_OF)")

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
