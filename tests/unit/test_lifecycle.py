"""Opportunity lifecycle: new -> active -> expired -> active, one row per id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from arbx_dagster.domain.lifecycle import (
    OPPORTUNITY_STATE_SCHEMA,
    apply_lifecycle,
    carry_over,
    summarize_transitions,
)
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform

T1 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
T2, T3, T4 = (T1 + timedelta(minutes=30 * i) for i in (1, 2, 3))

NO_STATE = pl.DataFrame(schema=OPPORTUNITY_STATE_SCHEMA)
NOTHING = pl.DataFrame(schema=OPPORTUNITY_SCHEMA)


def detected(*rows: tuple[str, int]) -> pl.DataFrame:
    """Detections as (opportunity_id, buy_price)."""
    frame = pl.DataFrame(
        {
            "opportunity_id": [oid for oid, _ in rows],
            "kind": ["spread"] * len(rows),
            "buy_price": [price for _, price in rows],
            "ref_price": [150_000] * len(rows),
            "margin_clp": [150_000 - price for _, price in rows],
        }
    )
    return conform(frame, OPPORTUNITY_SCHEMA)


def state_of(state: pl.DataFrame, oid: str) -> dict:
    rows = state.filter(pl.col("opportunity_id") == oid)
    assert rows.height == 1
    return rows.row(0, named=True)


def test_new_then_active_then_expired_then_active_again():
    s1 = apply_lifecycle(NO_STATE, detected(("a", 100_000)), T1)
    assert s1.schema == pl.Schema(OPPORTUNITY_STATE_SCHEMA)
    a = state_of(s1, "a")
    assert (a["status"], a["first_seen"], a["last_seen"], a["times_seen"]) == ("new", T1, T1, 1)

    s2 = apply_lifecycle(s1, detected(("a", 95_000)), T2)
    a = state_of(s2, "a")
    assert (a["status"], a["first_seen"], a["last_seen"], a["times_seen"]) == ("active", T1, T2, 2)
    assert (a["buy_price"], a["margin_clp"]) == (95_000, 55_000)  # latest prices kept

    s3 = apply_lifecycle(s2, NOTHING, T3)
    a = state_of(s3, "a")
    assert (a["status"], a["expired_at"], a["last_seen"]) == ("expired", T3, T2)
    assert a["buy_price"] == 95_000  # last known prices stay for the record

    s4 = apply_lifecycle(s3, detected(("a", 90_000)), T4)
    a = state_of(s4, "a")
    assert (a["status"], a["expired_at"], a["times_seen"]) == ("active", None, 3)
    assert (a["first_seen"], a["last_seen"]) == (T1, T4)


def test_the_state_keeps_every_id_of_both_inputs_once():
    s1 = apply_lifecycle(NO_STATE, detected(("a", 100_000), ("b", 110_000)), T1)
    s2 = apply_lifecycle(s1, detected(("b", 110_000), ("c", 120_000), ("c", 120_000)), T2)

    assert s2["opportunity_id"].to_list() == ["a", "b", "c"]
    assert dict(s2.select("opportunity_id", "status").iter_rows()) == {
        "a": "expired",
        "b": "active",
        "c": "new",
    }


def test_applying_the_same_run_twice_changes_nothing():
    s1 = apply_lifecycle(NO_STATE, detected(("a", 100_000), ("b", 110_000)), T1)
    s2 = apply_lifecycle(s1, detected(("a", 100_000)), T2)

    assert_frame_equal(apply_lifecycle(s1, detected(("a", 100_000), ("b", 110_000)), T1), s1)
    assert_frame_equal(apply_lifecycle(s2, detected(("a", 100_000)), T2), s2)
    s3 = apply_lifecycle(s2, NOTHING, T3)
    assert_frame_equal(apply_lifecycle(s3, NOTHING, T3), s3)


def test_an_expired_opportunity_stays_expired_until_detected_again():
    s1 = apply_lifecycle(NO_STATE, detected(("a", 100_000)), T1)
    s2 = apply_lifecycle(s1, NOTHING, T2)
    s3 = apply_lifecycle(s2, NOTHING, T3)
    assert state_of(s3, "a")["status"] == "expired"
    assert state_of(s3, "a")["expired_at"] == T2


def test_summarize_transitions_counts_what_happened_in_the_run():
    s1 = apply_lifecycle(NO_STATE, detected(("a", 1), ("b", 1), ("c", 1)), T1)
    s2 = apply_lifecycle(s1, detected(("a", 1)), T2)  # b, c expire
    s3 = apply_lifecycle(s2, detected(("a", 1), ("b", 1), ("d", 1)), T3)

    assert summarize_transitions(s2, s3) == {
        "new": 1,  # d
        "still_open": 1,  # a
        "reactivated": 1,  # b
        "expired": 0,
        "total_new": 1,
        "total_active": 2,
        "total_expired": 1,  # c
    }
    assert summarize_transitions(s1, s2)["expired"] == 2


def test_a_first_run_accepts_frames_without_columns():
    state = apply_lifecycle(pl.DataFrame(), pl.DataFrame(), T1)
    assert state.is_empty()
    assert state.schema == pl.Schema(OPPORTUNITY_STATE_SCHEMA)


def test_a_late_older_run_does_not_overwrite_a_newer_state():
    s2 = apply_lifecycle(
        apply_lifecycle(NO_STATE, detected(("a", 100_000)), T1), detected(("a", 90_000)), T2
    )
    late = apply_lifecycle(s2, detected(("a", 120_000), ("b", 1)), T1)
    assert_frame_equal(late.filter(pl.col("opportunity_id") == "a"), s2)


def test_carried_over_opportunities_are_the_open_ones_of_products_not_evaluated():
    found = detected(("a", 100_000), ("b", 90_000), ("c", 80_000)).with_columns(
        canonical_id=pl.Series(["p1", "p2", "p3"]), confidence=pl.lit(0.8)
    )
    state = apply_lifecycle(NO_STATE, found, T1)
    state = apply_lifecycle(state, found.filter(pl.col("opportunity_id") != "c"), T2)

    carried = carry_over(state, pl.DataFrame({"canonical_id": ["p2"]}), T4)

    assert carried["opportunity_id"].to_list() == ["a"]  # b evaluated again, c expired
    assert carried.schema == pl.Schema(OPPORTUNITY_SCHEMA)
    # A full pass would find the same prices, its confidence aged for an hour more.
    assert carried["confidence"][0] == pytest.approx(0.8 * 0.5 ** (1 / 24), rel=1e-12)
    again = apply_lifecycle(state, carried, T4)
    assert state_of(again, "a")["status"] == "active" and state_of(again, "a")["times_seen"] == 3
