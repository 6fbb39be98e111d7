"""The market simulator behind the connector interface: one batch per retailer per day.

The simulated window is anchored on ``end`` (fixed in ``sources.yaml`` or today when the
connector is built), so a partition re-run yields the same rows. Each batch is archived as
Parquet, so simulated days replay like any other source.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import polars as pl

from arbx_dagster.domain.history import market_day
from arbx_dagster.domain.schema import conform
from arbx_dagster.domain.simulator import SimulatedMarket, SimulatorConfig, simulate_market
from arbx_dagster.ingestion.archive import Archive, ArchivedRun, ArchiveRun, PayloadRef
from arbx_dagster.ingestion.archive import market_day as day_of
from arbx_dagster.ingestion.connectors.base import FetchBatch, FetchRequest, IngestionError
from arbx_dagster.ingestion.records import BATCH_SCHEMA, count_items
from arbx_dagster.ingestion.sources import SimulatorSource
from arbx_dagster.ingestion.stats import FetchStats


class SimulatorConnector:
    def __init__(
        self,
        source: SimulatorSource,
        archive: Archive | None = None,
        *,
        now: datetime | None = None,
    ) -> None:
        self.source = source
        self.name = source.name
        self.archive = archive
        self.now = now or datetime.now(UTC)
        self.end = source.end or day_of(self.now)
        self._market: SimulatedMarket | None = None
        self._days: pl.DataFrame | None = None

    def close(self) -> None:
        self._market = None
        self._days = None

    @property
    def first_day(self) -> date:
        return self.end - timedelta(days=self.source.days - 1)

    def market(self) -> SimulatedMarket:
        """The simulated market (computed once per connector)."""
        if self._market is None:
            self._market = simulate_market(
                SimulatorConfig(
                    seed=self.source.seed,
                    n_products=self.source.n_products,
                    days=self.source.days,
                    end=self.end,
                    now=self.now if self.end == day_of(self.now) else None,
                    retailers=self.source.retailers,
                )
            )
        return self._market

    def fetch(self, request: FetchRequest) -> Iterator[FetchBatch]:
        """``request.day`` (default: every simulated day) x ``request.retailer`` (default: all)."""
        retailers = (request.retailer,) if request.retailer else self.source.retailers
        unknown = set(retailers) - set(self.source.retailers)
        if unknown:
            raise IngestionError(f"simulator {self.name!r} does not simulate {sorted(unknown)}")
        days = [request.day] if request.day else self._window()
        for day in days:
            if not self.first_day <= day <= self.end:
                stats = FetchStats()
                stats.error(f"{day} is outside the simulated window {self.first_day}..{self.end}")
                yield FetchBatch(self.name, pl.DataFrame(schema=BATCH_SCHEMA), stats)
                continue
            run = self._start_run(day, request)
            try:
                for retailer in retailers:
                    yield self._day_batch(retailer, day, request, run)
            finally:
                if run is not None:
                    run.close()

    def _start_run(self, day: date, request: FetchRequest) -> ArchiveRun | None:
        if self.archive is None:
            return None
        header = {
            "connector": "simulator",
            "observed_at": request.at().isoformat(),
            "config": self.source.model_dump(mode="json", by_alias=True),
        }
        return self.archive.start_run(self.name, day, header, request.run_id)

    def _window(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.source.days)]

    def _observations(self) -> pl.DataFrame:
        if self._days is None:
            observations = self.market().observations
            self._days = observations.with_row_index("_row").with_columns(
                _day=market_day(pl.col("observed_at")),
                source_location=pl.format(
                    f"simulator(seed={self.source.seed})#row-{{}}", pl.col("_row")
                ),
            )
        return self._days

    def _day_batch(
        self, retailer: str, day: date, request: FetchRequest, run: ArchiveRun | None
    ) -> FetchBatch:
        frame = self._observations().filter(
            (pl.col("retailer") == retailer) & (pl.col("_day") == day)
        )
        frame = conform(frame, BATCH_SCHEMA)
        skus = request.skus
        if skus is not None:
            frame = frame.filter(pl.col("sku").is_in(list(skus)))
        refs: list[PayloadRef] = []
        if run is not None:
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            url = f"simulator:{retailer}/{day}"
            refs.append(run.store(buffer.getvalue(), "frame", url=url, retailer=retailer))
        return _batch(self.name, retailer, frame, refs, run.run_id if run is not None else None)

    def replay(
        self, run: ArchivedRun, archive: Archive, retailer: str | None = None
    ) -> Iterator[FetchBatch]:
        for entry in run.entries:
            if entry.get("kind") != "frame":
                continue
            if retailer is not None and entry.get("retailer") != retailer:
                continue
            frame = conform(pl.read_parquet(io.BytesIO(archive.get(entry["sha256"]))), BATCH_SCHEMA)
            ref = PayloadRef(
                **{k: v for k, v in entry.items() if k in PayloadRef.__dataclass_fields__}
            )
            yield _batch(self.name, entry.get("retailer"), frame, [ref], run.run_id)


def _batch(
    name: str, retailer: str | None, frame: pl.DataFrame, refs: list[PayloadRef], run_id: str | None
) -> FetchBatch:
    stats = FetchStats(
        pages=1,
        items_seen=frame.height,
        rows=frame.height,
        bytes=refs[0].size if refs else 0,
    )
    count_items(frame, stats)
    return FetchBatch(
        name, frame, stats, refs, location=f"simulator:{retailer}", run_id=run_id, retailer=retailer
    )
