"""The crawl loop shared by the HTTP connectors: paginated listing pages and, in full mode,
product pages; archived as fetched, and replayable from the archive with the same code.

Subclasses only parse listing pages (:meth:`CrawlConnector.parse_listing`); product pages
are read the same way for every store (``product.embedded``). Their parts: ``pagination.py``
(the next listing page), ``product_pages.py`` (reading a product page) and ``crawl_run.py``
(a run's state and its archive manifest).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import polars as pl

from arbx_dagster.ingestion.archive import Archive, ArchivedRun, ArchiveRun, PayloadRef
from arbx_dagster.ingestion.circuit import CircuitOpenError
from arbx_dagster.ingestion.connectors.base import (
    FetchBatch,
    FetchMode,
    FetchRequest,
    IngestionError,
    KnownListing,
)
from arbx_dagster.ingestion.connectors.crawl_run import (
    RunState,
    note,
    payload_ref,
    start_archive_run,
    store_payload,
)
from arbx_dagster.ingestion.connectors.pagination import Pager, ParsedPage
from arbx_dagster.ingestion.connectors.product_pages import (
    ParsedProduct,
    ProductPayload,
    ProductSource,
    absolute_links,
    parse_product_page,
    present,
    product_url,
    resolve_link,
)
from arbx_dagster.ingestion.http import FetchFailed, HttpResponse, RetailerHttp
from arbx_dagster.ingestion.records import (
    RecordContext,
    count_items,
    empty_batch_frame,
    items_frame,
    missing_frame,
    normalize,
    to_text,
)
from arbx_dagster.ingestion.sources import HttpSource
from arbx_dagster.ingestion.stats import FetchStats

log = logging.getLogger(__name__)


class CrawlConnector:
    """Listing pages (paginated) and, in full mode, product pages, for one HTTP retailer.

    Subclasses only parse: :meth:`parse_listing` and :meth:`parse_product`. Live fetch and
    archive replay share every other step, so a replay yields what the live run yielded.
    """

    def __init__(
        self, source: HttpSource, http: RetailerHttp | None, archive: Archive | None = None
    ) -> None:
        self.source = source
        self.name = source.name
        self.http = http
        self.archive = archive

    # --- to implement ---

    def parse_listing(self, content: bytes, url: str) -> ParsedPage:
        raise NotImplementedError

    def parse_product(self, content: bytes, url: str, sku: str | None) -> ParsedProduct:
        """A product page or API response, per ``product.embedded`` (same for every kind)."""
        return parse_product_page(self.source.product, content, sku)

    # --- live ---

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def fetch(self, request: FetchRequest) -> Iterator[FetchBatch]:
        if self.http is None:
            raise IngestionError(f"{self.name}: connector built without HTTP (replay only)")
        if request.retailer not in (None, self.name):
            raise IngestionError(f"source {self.name!r} does not yield {request.retailer!r}")
        run = start_archive_run(self.archive, self.source, request)
        state = RunState(request, run, request.at())
        try:
            for index, target in enumerate(self.source.listing.targets):
                yield from self._crawl_target(index, target, state)
            if request.listings is not None:
                yield from self._finish_subset(state)
        except CircuitOpenError as exc:
            stats = FetchStats(circuit_open=True)
            stats.error(str(exc))
            note(state.run, {"type": "failed", "reason": str(exc), "circuit_open": True})
            log.error("%s: %s", self.name, exc)
            yield self._batch(empty_batch_frame(), stats, [], None, run)
            raise
        finally:
            if run is not None:
                run.close()

    def _crawl_target(
        self, index: int, target: dict[str, str], state: RunState
    ) -> Iterator[FetchBatch]:
        listing = self.source.listing
        pager = Pager(listing.pagination)
        rank = 0
        for _ in range(listing.pagination.max_pages):
            url, params = pager.request(self.source.base_url, listing.url, target, listing.params)
            stats = FetchStats()
            started = time.monotonic()
            try:
                response = self._get(url, params, stats)
            except FetchFailed as exc:
                stats.pages_failed += 1
                stats.error(str(exc))
                state.incomplete.append(f"listing page failed: {exc.url}")
                note(state.run, {"type": "failed", "url": exc.url, "reason": exc.reason})
                stats.duration_seconds = time.monotonic() - started
                yield self._batch(empty_batch_frame(), stats, [], exc.url, state.run)
                return
            if response.gone:
                stats.pages += 1
                if rank == 0:
                    stats.layout_errors += 1
                    stats.error(f"listing page {response.url} answered {response.status}")
                    state.incomplete.append(f"listing page gone: {response.url}")
                yield self._batch(empty_batch_frame(), stats, [], response.url, state.run)
                return
            category = target.get("category_path")
            ref, seq = store_payload(
                state.run,
                response,
                "listing",
                target=index,
                rank_offset=rank,
                category_path=category,
            )
            parsed = self.parse_listing(response.content, response.url)
            batch = self._listing_batch(
                parsed, ref, seq, rank, stats, state, self._live_products(state), category
            )
            stats.duration_seconds = time.monotonic() - started
            yield batch
            if state.circuit is not None:
                raise state.circuit
            if parsed.structure_error:
                state.incomplete.append(f"layout changed on {response.url}")
                return
            rank += len(parsed.items)
            if not pager.advance(parsed, response.url):
                return
        truncated = FetchStats(truncated=True)
        truncated.error(f"{self.name}: stopped after max_pages={listing.pagination.max_pages}")
        state.incomplete.append("pagination truncated")
        yield self._batch(empty_batch_frame(), truncated, [], None, state.run)

    def _live_products(self, state: RunState) -> ProductSource:
        def fetch_product(
            item: dict[str, Any], stats: FetchStats, parent: int | None
        ) -> ProductPayload:
            if state.circuit is not None:
                return ProductPayload("failed")  # no more requests to this store
            url = product_url(self.source.product, self.source.base_url, item)
            if url is None:
                stats.error(f"no product URL for sku {item.get('sku')!r}")
                return ProductPayload("failed")
            try:
                response = self._get(url, None, stats)
            except FetchFailed as exc:
                stats.pages_failed += 1
                stats.error(str(exc))
                note(state.run, {"type": "failed", "url": exc.url, "reason": exc.reason})
                return ProductPayload("failed")
            except CircuitOpenError as exc:
                # keep the listing page's rows: yield this batch, then stop the run
                state.circuit = exc
                state.incomplete.append("circuit opened")
                return ProductPayload("failed")
            if response.gone:
                stats.pages += 1
                return ProductPayload("gone")
            sku = to_text("sku", item.get("sku"))
            ref, _ = store_payload(state.run, response, "product", parent=parent, for_sku=sku)
            return ProductPayload("ok", ref, response.content)

        return fetch_product

    def _finish_subset(self, state: RunState) -> Iterator[FetchBatch]:
        """Tracked listings not met on listing pages: open their product pages (full mode) or
        report them missing (only when every page was read)."""
        unseen = [k for k in state.request.listings or () if k.sku not in state.seen]
        if not unseen:
            return
        stats = FetchStats()
        started = time.monotonic()
        rows: list[pl.DataFrame] = []
        refs: list[PayloadRef] = []
        gone: list[KnownListing] = []  # the store said so (404/410): missing for certain
        if state.request.mode == FetchMode.FULL and self.source.product is not None:
            fetch = self._live_products(state)
            for known in unseen:
                got = fetch(vars(known), stats, None)
                if got.outcome == "gone":
                    gone.append(known)
                elif got.outcome == "ok" and got.ref is not None:
                    refs.append(got.ref)
                    rows.append(self._product_row(known, got.ref, got.content, stats, state))
        elif state.incomplete:
            stats.error(
                f"{len(unseen)} tracked listing(s) not seen, not marked missing because the "
                f"crawl was incomplete ({state.incomplete[0]})"
            )
        else:
            gone = unseen  # every listing page was read and they were not on any
        if gone:
            location = f"{self.name}:tracked-listings"
            listed = [vars(k) for k in gone]
            note(state.run, {"type": "missing", "listings": listed, "location": location})
            rows.append(missing_frame(listed, self._context(state, None), location))
            stats.missing += len(gone)
        frame = pl.concat(rows) if rows else empty_batch_frame()
        stats.duration_seconds = time.monotonic() - started
        yield self._batch(frame, stats, refs, None, state.run)
        if state.circuit is not None:
            raise state.circuit

    def _product_row(
        self,
        known: KnownListing,
        ref: PayloadRef,
        content: bytes,
        stats: FetchStats,
        state: RunState,
    ) -> pl.DataFrame:
        parsed = self.parse_product(content, ref.url or "", known.sku)
        stats.pages += 1
        if parsed.error:
            stats.layout_errors += 1
            stats.error(f"product page {ref.url}: {parsed.error}")
        item = {**vars(known), **present(parsed.fields), "sku": known.sku}
        item["source_location"] = ref.url
        item["url"] = resolve_link(ref.url, item.get("url")) or ref.url
        frame = normalize(items_frame([item]), self._context(state, ref.sha256))
        stats.items_seen += 1
        count_items(frame, stats)
        state.seen.add(known.sku)
        return frame

    # --- shared by live and replay ---

    def _listing_batch(
        self,
        parsed: ParsedPage,
        ref: PayloadRef,
        seq: int | None,
        rank_offset: int,
        stats: FetchStats,
        state: RunState,
        products: ProductSource,
        category_path: str | None = None,
    ) -> FetchBatch:
        page_url = ref.url or ""
        stats.pages += 1
        if parsed.structure_error:
            stats.layout_errors += 1
            stats.error(f"layout changed? {page_url}: {parsed.structure_error}")
        items = [
            {
                **absolute_links(item, page_url),
                "category": item.get("category") or category_path,
                "listing_rank": rank_offset + i + 1,
                "source_location": f"{page_url}#item-{i}",
            }
            for i, item in enumerate(parsed.items)
        ]
        context = self._context(state, ref.sha256)
        everything = normalize(items_frame(items), context)
        stats.items_seen += everything.height
        count_items(everything, stats)
        kept = self._keep(everything.get_column("sku").to_list(), stats, state)
        refs = [ref]
        if state.request.mode == FetchMode.FULL and self.source.product is not None and kept:
            merged = [self._with_product(items[i], products, seq, stats, refs) for i in kept]
            frame = normalize(items_frame(merged), context)
        else:
            frame = everything[kept] if kept else empty_batch_frame()
        return self._batch(frame, stats, refs, page_url, state.run)

    def _keep(self, skus: list[str | None], stats: FetchStats, state: RunState) -> list[int]:
        """Positions of the tier's listings (all when no subset), each once per run. Items
        without a SKU are kept: they are malformed and must reach quarantine."""
        wanted = state.request.skus
        keep = []
        for position, sku in enumerate(skus):
            if sku is not None and wanted is not None and sku not in wanted:
                continue
            if sku is not None and sku in state.seen:
                stats.duplicates += 1
                continue
            if sku is not None:
                state.seen.add(sku)
            keep.append(position)
        return keep

    def _with_product(
        self,
        item: dict[str, Any],
        products: ProductSource,
        seq: int | None,
        stats: FetchStats,
        refs: list[PayloadRef],
    ) -> dict[str, Any]:
        """The listing item completed by its product page; the listing data alone when the
        page failed (the listing page's prices were real a moment ago)."""
        if to_text("sku", item.get("sku")) is None:
            return item
        got = products(item, stats, seq)
        if got.outcome != "ok" or got.ref is None:
            return item
        refs.append(got.ref)
        parsed = self.parse_product(got.content, got.ref.url or "", to_text("sku", item.get("sku")))
        stats.pages += 1
        if parsed.error:
            stats.layout_errors += 1
            stats.error(f"product page {got.ref.url}: {parsed.error}")
        fields = present(parsed.fields)
        fields.pop("sku", None)  # the listing's SKU names the variant we asked for
        return {
            **item,
            **absolute_links(fields, got.ref.url or ""),
            "source_location": got.ref.url,
            "payload_sha256": got.ref.sha256,
        }

    def _context(self, state: RunState, sha: str | None) -> RecordContext:
        return RecordContext(
            source=f"{self.source.connector}:{self.name}",
            observed_at=state.observed_at,
            retailer=self.name,
            currency=self.source.currency,
            card_program=self.source.card_program,
            first_party=self.source.first_party,
            payload_sha256=sha,
            constants=self.source.fill_values,
        )

    def _batch(
        self,
        frame: pl.DataFrame,
        stats: FetchStats,
        refs: list[PayloadRef],
        location: str | None,
        run: ArchiveRun | None,
    ) -> FetchBatch:
        stats.rows = frame.height
        return FetchBatch(
            source=self.name,
            frame=frame,
            stats=stats,
            payloads=refs,
            location=location,
            run_id=run.run_id if run is not None else None,
            retailer=self.name,
        )

    # --- replay ---

    def replay(
        self, run: ArchivedRun, archive: Archive, retailer: str | None = None
    ) -> Iterator[FetchBatch]:
        """Re-parse an archived run: same batches as the live run, from stored bytes."""
        header = run.header
        listings = header.get("listings")
        request = FetchRequest(
            retailer=self.name,
            mode=FetchMode(header.get("mode", "full")),
            listings=None if listings is None else tuple(KnownListing(**k) for k in listings),
            observed_at=datetime.fromisoformat(header["observed_at"]),
            run_id=run.run_id,
        )
        state = RunState(request, None, request.at())
        children = {
            (e.get("parent"), e.get("for_sku")): e
            for e in run.entries
            if e.get("type") == "payload" and e.get("kind") == "product"
        }

        def archived_product(
            item: dict[str, Any], stats: FetchStats, parent: int | None
        ) -> ProductPayload:
            entry = children.get((parent, to_text("sku", item.get("sku"))))
            if entry is None:
                return ProductPayload("failed")
            return ProductPayload("ok", payload_ref(entry), archive.get(entry["sha256"]))

        tail: list[pl.DataFrame] = []
        tail_refs: list[PayloadRef] = []
        tail_stats = FetchStats()
        for entry in run.entries:
            kind, payload_kind = entry.get("type"), entry.get("kind")
            if kind == "payload" and payload_kind == "listing":
                ref = payload_ref(entry)
                parsed = self.parse_listing(archive.get(ref.sha256), ref.url or "")
                rank = int(entry.get("rank_offset") or 0)
                yield self._listing_batch(
                    parsed,
                    ref,
                    entry["seq"],
                    rank,
                    FetchStats(),
                    state,
                    archived_product,
                    entry.get("category_path"),
                )
            elif kind == "payload" and payload_kind == "product" and entry.get("parent") is None:
                ref = payload_ref(entry)
                sku = str(entry.get("for_sku"))
                known = next(
                    (k for k in request.listings or () if k.sku == sku), KnownListing(sku=sku)
                )
                content = archive.get(ref.sha256)
                tail.append(self._product_row(known, ref, content, tail_stats, state))
                tail_refs.append(ref)
            elif kind == "missing":
                tail.append(
                    missing_frame(entry["listings"], self._context(state, None), entry["location"])
                )
                tail_stats.missing += len(entry["listings"])
            elif kind == "failed":
                failed = FetchStats(pages_failed=1, circuit_open=bool(entry.get("circuit_open")))
                failed.error(f"{entry.get('url') or self.name}: {entry.get('reason')}")
                yield self._batch(empty_batch_frame(), failed, [], entry.get("url"), None)
        if tail:
            yield self._batch(pl.concat(tail), tail_stats, tail_refs, None, None)

    # --- helpers ---

    def _get(
        self, url: str, params: Mapping[str, str | int] | None, stats: FetchStats
    ) -> HttpResponse:
        if self.http is None:  # pragma: no cover - fetch() checks first
            raise IngestionError(f"{self.name}: no HTTP client")
        return self.http.get(url, params=params, stats=stats)


__all__ = ["CrawlConnector"]
