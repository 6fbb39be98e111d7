"""Labelled pairs: stored oriented, replaced on relabel, audited, readable by the trainer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from arbx_dagster.cli import app
from arbx_dagster.domain.matching.training_pairs import LABEL_SCHEMA
from arbx_dagster.storage.labels import (
    LABELLED_PAIR_SCHEMA,
    LabelError,
    ListingKey,
    label_pair,
    parse_listing_key,
    read_labels,
)
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _listings(warehouse: Warehouse, keys: list[tuple[str, str]]) -> None:
    warehouse.upsert(
        "listings",
        pl.DataFrame(
            {
                "retailer": [r for r, _ in keys],
                "sku": [s for _, s in keys],
                "name": ["Smart TV 55"] * len(keys),
                "name_norm": ["smart tv 55in"] * len(keys),
                "first_seen": [NOW] * len(keys),
                "last_seen": [NOW] * len(keys),
                "updated_at": [NOW] * len(keys),
            }
        ),
        ["retailer", "sku"],
    )


def test_a_label_is_stored_oriented_and_relabelling_replaces_it(warehouse: Warehouse) -> None:
    _listings(warehouse, [("paris", "p1"), ("falabella", "f1")])
    first = label_pair(
        warehouse,
        ListingKey("paris", "p1"),
        ListingKey("falabella", "f1"),
        is_match=True,
        actor="ana",
        now=NOW,
    )
    assert (first["left_retailer"], first["right_retailer"]) == ("falabella", "paris")
    assert first["previous"] is None
    again = label_pair(
        warehouse,
        ListingKey("falabella", "f1"),
        ListingKey("paris", "p1"),
        is_match=False,
        actor="bob",
        note="different colour",
        now=NOW,
    )
    assert again["previous"] is True
    labels = read_labels(warehouse)
    assert labels.schema == pl.Schema(LABELLED_PAIR_SCHEMA)
    assert labels.select("left_sku", "right_sku", "is_match", "labelled_by").rows() == [
        ("f1", "p1", False, "bob")
    ]
    # what the trainer reads
    assert set(LABEL_SCHEMA) <= set(labels.columns)


def test_every_decision_and_refusal_is_audited(warehouse: Warehouse) -> None:
    _listings(warehouse, [("falabella", "f1"), ("ripley", "r1")])
    label_pair(
        warehouse,
        ListingKey("falabella", "f1"),
        ListingKey("ripley", "r1"),
        is_match=True,
        actor="ana",
    )
    with pytest.raises(LabelError, match="same retailer"):
        label_pair(
            warehouse,
            ListingKey("ripley", "r1"),
            ListingKey("ripley", "r2"),
            is_match=True,
            actor="ana",
        )
    with pytest.raises(LabelError, match="unknown listing ripley:nope"):
        label_pair(
            warehouse,
            ListingKey("falabella", "f1"),
            ListingKey("ripley", "nope"),
            is_match=False,
            actor="ana",
        )
    log = warehouse.query(
        "SELECT actor, action, target, outcome FROM audit_log "
        "WHERE action = 'matches.label' ORDER BY id"
    )
    assert log["outcome"].to_list()[0] == "ok"
    assert log["target"].to_list()[0] == "falabella:f1|ripley:r1"
    assert [o.startswith("rejected") for o in log["outcome"].to_list()] == [False, True, True]
    assert read_labels(warehouse).height == 1


def test_listing_keys_are_parsed_strictly() -> None:
    assert parse_listing_key("Falabella:ABC:1") == ListingKey("falabella", "ABC:1")
    for bad in ("falabella", ":1", "falabella:"):
        with pytest.raises(LabelError):
            parse_listing_key(bad)


def test_the_cli_labels_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARBX_POSTGRES_URL", "ARBX_REDIS_URL", "DAGSTER_HOME", "ARBX_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    from arbx_dagster.cli.config_cmd import open_warehouse_migrated

    with open_warehouse_migrated() as warehouse:
        _listings(warehouse, [("falabella", "f1"), ("paris", "p1")])
    runner = CliRunner()
    ok = runner.invoke(
        app, ["matches", "label", "paris:p1", "falabella:f1", "--match", "--actor", "ana"]
    )
    assert ok.exit_code == 0, ok.output
    assert "falabella:f1 ~ paris:p1 -> same product" in ok.output
    flip = runner.invoke(app, ["matches", "label", "falabella:f1", "paris:p1", "--no-match"])
    assert flip.exit_code == 0 and "(was: match)" in flip.output
    bad = runner.invoke(app, ["matches", "label", "falabella:f1", "paris:zzz", "--match"])
    assert bad.exit_code == 2 and "unknown listing paris:zzz" in bad.output
    missing_flag = runner.invoke(app, ["matches", "label", "falabella:f1", "paris:p1"])
    assert missing_flag.exit_code != 0
    listed = runner.invoke(app, ["matches", "labels"])
    assert listed.exit_code == 0
    assert "falabella:f1" in listed.output and "no match" in listed.output
