"""Fetch stats count what the store answered: errors are what a retry had to absorb."""

from collections import Counter

from arbx_dagster.ingestion.stats import FetchStats


def test_http_errors_count_error_statuses_timeouts_and_connection_errors() -> None:
    stats = FetchStats(
        status_counts=Counter({"200": 7, "304": 1, "404": 1, "429": 2, "503": 1, "timeout": 1})
    )
    stats.merge(FetchStats(status_counts=Counter({"error": 1, "200": 1})))
    assert stats.http_errors == 1 + 2 + 1 + 1 + 1
    assert stats.as_metadata()["http_errors"] == 6


def test_a_clean_fetch_has_no_http_errors() -> None:
    assert FetchStats(status_counts=Counter({"200": 3})).http_errors == 0
    assert FetchStats().as_metadata()["http_errors"] == 0
