"""What a fetch did, counted: enough to tell a quiet day from a broken parser or a ban."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FetchStats:
    pages: int = 0  # payloads fetched (or replayed) and parsed: listing + product pages, files
    pages_failed: int = 0  # payloads that failed after retries: no rows came from them
    requests: int = 0  # HTTP attempts, retries included
    retries: int = 0
    status_counts: Counter[str] = field(default_factory=Counter)  # "200", "429", "timeout"…
    bytes: int = 0
    duration_seconds: float = 0.0
    rate_limited_seconds: float = 0.0  # time spent waiting for the rate limit
    items_seen: int = 0  # items found on pages / rows in files
    items_unparsable: int = 0  # of those, rows the parser could not read
    items_unpriced: int = 0  # of those, readable rows showing no price
    rows: int = 0  # rows in the batch (items + missing)
    missing: int = 0  # expected listings not found: fetch_status = missing
    duplicates: int = 0  # a listing seen again later in the same run (kept once)
    layout_errors: int = 0  # pages whose structure (items path, container) was not found
    truncated: bool = False  # pagination stopped at max_pages
    circuit_open: bool = False
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def merge(self, other: FetchStats) -> FetchStats:
        """Add ``other`` into this one (run totals from batch stats); returns self."""
        for name in (
            "pages", "pages_failed", "requests", "retries", "bytes", "items_seen",
            "items_unparsable", "items_unpriced", "rows", "missing", "duplicates", "layout_errors",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.duration_seconds += other.duration_seconds
        self.rate_limited_seconds += other.rate_limited_seconds
        self.status_counts.update(other.status_counts)
        self.truncated |= other.truncated
        self.circuit_open |= other.circuit_open
        self.errors.extend(other.errors)
        return self

    @classmethod
    def total(cls, stats: list[FetchStats]) -> FetchStats:
        result = cls()
        for item in stats:
            result.merge(item)
        return result

    @property
    def http_errors(self) -> int:
        """HTTP attempts without a usable answer (4xx/5xx, timeouts, connection errors), the
        ones a retry then fixed included: how hard the store pushed back."""
        return sum(n for status, n in self.status_counts.items() if _is_error(status))

    @property
    def unparsable_share(self) -> float:
        return self.items_unparsable / self.items_seen if self.items_seen else 0.0

    def layout_problem(self, max_unparsable_share: float = 0.5) -> str | None:
        """Why these stats look like a changed page layout, or ``None``.

        Meant for a run's totals: a page that parsed to nothing, or most items unreadable,
        must fail the partition loudly instead of quietly ingesting nothing.
        """
        if self.layout_errors:
            return f"{self.layout_errors} page(s) lacked the expected structure"
        ok_pages = self.pages - self.pages_failed
        if ok_pages > 0 and self.items_seen == 0:
            return f"{ok_pages} page(s) fetched but no items found"
        if self.items_seen and self.unparsable_share > max_unparsable_share:
            return (
                f"{self.items_unparsable} of {self.items_seen} items unparsable "
                f"({self.unparsable_share:.0%} > {max_unparsable_share:.0%})"
            )
        if self.items_seen and self.items_unpriced == self.items_seen:
            return f"none of the {self.items_seen} items shows a price"
        return None

    def as_metadata(self) -> dict[str, Any]:
        """Plain values (for Dagster materialization metadata / logs)."""
        data = asdict(self)
        data["status_counts"] = dict(sorted(self.status_counts.items()))
        data["errors"] = self.errors[:20]
        data["error_count"] = len(self.errors)
        data["http_errors"] = self.http_errors
        data["duration_seconds"] = round(self.duration_seconds, 3)
        data["rate_limited_seconds"] = round(self.rate_limited_seconds, 3)
        return data


def _is_error(status: str) -> bool:
    """``"429"``, ``"503"``, ``"timeout"``, ``"error"``: yes; ``"200"``, ``"304"``: no."""
    return not status.isdigit() or int(status) >= 400
