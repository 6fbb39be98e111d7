"""The pipeline's notion of "now" (pinnable so that runs and tests are reproducible) and
of the market's calendar (its sale events)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from arbx_dagster.domain.market_events import EventCalendar


class ClockResource(dg.ConfigurableResource):
    """Wall-clock time unless ``as_of`` pins it (ISO 8601, e.g. 2026-11-23T18:00:00Z)."""

    as_of: str | None = Field(default=None, description="Pinned UTC time (ARBX_AS_OF)")
    market_events: str | None = Field(
        default=None,
        description="The market's sale events, JSON text or file (ARBX_MARKET_EVENTS); "
        "default: the Chilean calendar's rules",
    )

    def calendar(self) -> EventCalendar:
        return EventCalendar.from_setting(self.market_events)

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
