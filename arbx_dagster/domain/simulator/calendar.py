"""Market calendar: Chilean shopping events and when the simulated scrapers visit each store.

Event dates follow the organisers' usual pattern (Cámara de Comercio de Santiago for the two
Cyber events), computed by rule for any year:

* **CyberDay** — first Monday of June, three days (Mon-Wed); 2026: 1-3 June.
* **CyberMonday** — first Monday of October, three days (Mon-Wed); 2026: 5-7 October.
  (CyberDay's October edition; it is the event inside the default 60-day window.)
* **Black Friday** — the Friday after US Thanksgiving through Sunday; 2026: 27-29 November,
  just after the default window's last day (23 November).

Days are calendar days in Chile (``America/Santiago``): an event starts at local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

MARKET_TZ = "America/Santiago"

# Local hour at which each store's daily crawl starts; a crawl takes up to three hours.
CRAWL_START_HOUR: dict[str, int] = {"falabella": 7, "ripley": 10, "paris": 13}
CRAWL_MINUTES = 180

_MONDAY, _THURSDAY = 0, 3


@dataclass(frozen=True)
class MarketEvent:
    name: str
    start: date
    end: date  # inclusive


def market_events(first: date, last: date) -> list[MarketEvent]:
    """Events that overlap ``[first, last]``, in date order."""
    found = [
        event
        for year in range(first.year, last.year + 1)
        for event in _events_of(year)
        if event.start <= last and event.end >= first
    ]
    return sorted(found, key=lambda event: event.start)


def _events_of(year: int) -> list[MarketEvent]:
    cyberday = _nth_weekday(year, 6, _MONDAY, 1)
    cybermonday = _nth_weekday(year, 10, _MONDAY, 1)
    black_friday = _nth_weekday(year, 11, _THURSDAY, 4) + timedelta(days=1)
    return [
        MarketEvent("CyberDay", cyberday, cyberday + timedelta(days=2)),
        MarketEvent("CyberMonday", cybermonday, cybermonday + timedelta(days=2)),
        MarketEvent("Black Friday", black_friday, black_friday + timedelta(days=2)),
    ]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))
