"""File drops: CSV, JSONL and Parquet exports; bad files lose no good rows; a sensor-style
scan picks each complete file exactly once."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.connectors import (
    FetchRequest,
    FileDropConnector,
    concat_batches,
    replay_day,
)
from arbx_dagster.ingestion.sources import FileDropSource
from arbx_dagster.ingestion.webhook_files import webhook_file_name

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
HEADER = "sku,name,brand,price_list,price_offer,price_card,in_stock,observed_at\n"


def _drop(tmp_path: Path, **kwargs: object) -> FileDropConnector:
    options: dict = {"name": "exports", "connector": "file_drop", "path": tmp_path / "landing"}
    options.update(kwargs)
    (tmp_path / "landing").mkdir(exist_ok=True)
    return FileDropConnector(FileDropSource(**options), Archive(tmp_path / "archive"))


def _write(path: Path, content: str | bytes, age_seconds: float = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    stamp = NOW.timestamp() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_a_truncated_csv_keeps_its_good_rows_and_flags_the_cut_one(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    _write(
        tmp_path / "landing/falabella/2026-11-22.csv",
        HEADER
        + '1,TV 55,SAMSUNG,"$599.990","$449.990","$429.990",true,2026-11-22T13:00:00Z\n'
        + "2,TV 65,LG,699990,499990,,1,2026-11-22T13:00:00Z\n"
        + "3,Radio,SONY,59990\n"  # fields missing
        + '4,TV 43,TCL,"$129.990","$1',  # cut mid-row: "$1" must not become a price
    )
    [batch] = drop.fetch(FetchRequest(day=date(2026, 11, 22), observed_at=NOW))
    frame = batch.frame
    assert frame["retailer"].to_list() == ["falabella"] * 4
    assert frame["source_location"].to_list() == [
        f"falabella/2026-11-22.csv:{n}" for n in (2, 3, 4, 5)
    ]
    assert frame.select("price_list", "price_offer", "price_card").rows()[:2] == [
        (599_990, 449_990, 429_990),
        (699_990, 499_990, None),
    ]
    assert frame.row(3, named=True)["parse_error"].startswith("truncated")
    assert frame.row(3, named=True)["price_list"] is None

    assert frame.row(2, named=True)["parse_error"] == "4 fields where the header has 8"
    result = validate_observations(frame, now=NOW)
    assert result.accepted["sku"].to_list() == ["1", "2"]
    assert result.quarantined["source_location"].to_list() == [
        "falabella/2026-11-22.csv:4",
        "falabella/2026-11-22.csv:5",
    ]
    assert result.accepted.height + result.quarantined.height == frame.height
    assert batch.stats.items_seen == 4 and batch.stats.items_unparsable == 2


def test_unquoted_csv_is_split_the_same_way(tmp_path: Path) -> None:
    drop = _drop(tmp_path, retailer="paris", csv_separator=";")
    _write(
        tmp_path / "landing/precios.csv",
        "sku;name;price_offer;price_card\n\nA;Mouse;$9.990;$8.990\nB;Teclado;$19.990\nC;Cut;$1",
    )
    [batch] = drop.fetch(FetchRequest(observed_at=NOW))
    assert batch.frame.select("sku", "price_offer", "price_card", "parse_error").rows() == [
        ("A", 9_990, 8_990, None),
        ("B", None, None, "3 fields where the header has 4"),
        ("C", None, None, "truncated: the file ends in the middle of this row"),
    ]
    assert batch.frame["source_location"].to_list() == [
        "precios.csv:3",
        "precios.csv:4",
        "precios.csv:5",
    ]
    assert batch.payload_sha256 is not None


def test_jsonl_bad_lines_become_quarantinable_rows(tmp_path: Path) -> None:
    drop = _drop(tmp_path, retailer="ripley")
    _write(
        tmp_path / "landing/catalogue.jsonl",
        '{"sku": "A", "name": "Phone", "price_offer": "$299.990"}\n'
        "not json at all\n"
        "\n"
        '["a", "list"]\n'
        '{"sku": "B", "name": "Tablet", "price_offer": 199990, "price_card": "$189.990"}\n'
        '{"sku": "C", "name": "Wat',
    )
    [batch] = drop.fetch(FetchRequest(observed_at=NOW))
    frame = batch.frame
    assert frame.select("source_location", "parse_error").rows() == [
        ("catalogue.jsonl:1", None),
        ("catalogue.jsonl:2", "invalid JSON: Expecting value"),
        ("catalogue.jsonl:4", "line is not a JSON object"),
        ("catalogue.jsonl:5", None),
        ("catalogue.jsonl:6", "truncated: the file ends in the middle of this row"),
    ]
    assert frame["retailer"].unique().to_list() == ["ripley"]
    # No column, no date in the name: the time the file was written (a minute ago).
    assert frame["observed_at"].to_list() == [NOW - timedelta(seconds=60)] * 5
    result = validate_observations(frame, now=NOW)
    assert result.accepted["sku"].to_list() == ["A", "B"]
    assert result.quarantined.height == 3


def test_parquet_with_a_retailer_column_and_renamed_columns(tmp_path: Path) -> None:
    drop = _drop(tmp_path, columns={"price_offer": "precio_oferta", "sku": "codigo"})
    pl.DataFrame(
        {
            "retailer": ["paris", "falabella"],
            "codigo": ["P1", "F1"],
            "name": ["Notebook", "TV"],
            "precio_oferta": [449_990.0, 299_990.0],
            "in_stock": [True, False],
            "observed_at": [datetime(2026, 11, 22, 12), datetime(2026, 11, 22, 13)],
        }
    ).write_parquet(tmp_path / "landing/export.parquet")
    _write(tmp_path / "landing/broken.parquet", b"PAR1 this is not a parquet file")
    batches = list(drop.fetch(FetchRequest(paths=("export.parquet", "broken.parquet"))))
    good, broken = batches
    assert good.frame.select("retailer", "sku", "price_offer", "in_stock").rows() == [
        ("paris", "P1", 449_990, True),
        ("falabella", "F1", 299_990, False),
    ]
    assert good.frame["observed_at"][0] == datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert broken.frame.is_empty() and broken.stats.pages_failed == 1
    assert "broken.parquet: unreadable parquet file" in broken.stats.errors[0]

    only_paris = list(drop.fetch(FetchRequest(retailer="paris", paths=("export.parquet",))))
    assert only_paris[0].frame["sku"].to_list() == ["P1"]


def test_rows_without_timestamps_take_noon_in_chile_of_the_dated_file(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    _write(tmp_path / "landing/paris/export_20261117.csv", "sku,name,price_offer\nX,Mouse,9.990\n")
    _write(tmp_path / "landing/paris/export_20261118.csv", "sku,name,price_offer\nX,Mouse,8.990\n")
    [batch] = drop.fetch(FetchRequest(day=date(2026, 11, 17), observed_at=NOW))
    assert batch.frame["observed_at"].to_list() == [datetime(2026, 11, 17, 15, tzinfo=UTC)]
    assert batch.frame["price_offer"].to_list() == [9_990]
    [none] = drop.fetch(FetchRequest(day=date(2026, 11, 1)))
    assert none.frame.is_empty() and "no files of 2026-11-01" in none.stats.errors[0]


def test_ready_files_waits_for_complete_files_and_yields_each_once(tmp_path: Path) -> None:
    drop = _drop(tmp_path, settle_seconds=5)
    landing = tmp_path / "landing"
    now = NOW.timestamp()
    _write(landing / "falabella/a.csv", HEADER, age_seconds=60)
    _write(landing / "falabella/b.csv.part", HEADER, age_seconds=60)  # still being copied
    _write(landing / "ripley/c.jsonl", "{}\n", age_seconds=1)  # too fresh
    _write(landing / "ripley/notes.txt", "not data", age_seconds=60)
    _write(landing / "Old Exports/stray.csv", HEADER, age_seconds=60)  # no retailer's name

    first = drop.ready_files(None, now=now)
    assert first.files == []  # first look: sizes not yet known to be stable
    assert sorted(first.waiting) == ["Old Exports/stray.csv", "falabella/a.csv", "ripley/c.jsonl"]

    second = drop.ready_files(first.cursor, now=now + 10)
    relpaths = ["Old Exports/stray.csv", "falabella/a.csv", "ripley/c.jsonl"]
    assert [f.relpath for f in second.files] == relpaths
    assert [f.retailer for f in second.files] == [None, "falabella", "ripley"]
    assert second.files[1].key.startswith("falabella/a.csv@")

    # a restarted sensor continues from its cursor: nothing twice
    assert drop.ready_files(second.cursor, now=now + 20).files == []

    (landing / "falabella/b.csv.part").rename(landing / "falabella/b.csv")
    _write(landing / "ripley/c.jsonl", '{"sku": "1"}\n', age_seconds=30)  # rewritten
    third = drop.ready_files(second.cursor, now=now + 30)
    assert third.files == []
    fourth = drop.ready_files(third.cursor, now=now + 40)
    assert sorted(f.relpath for f in fourth.files) == ["falabella/b.csv", "ripley/c.jsonl"]

    (landing / "falabella/a.csv").unlink()
    assert "falabella/a.csv" not in drop.ready_files(fourth.cursor, now=now + 50).cursor


def test_a_file_the_webhook_landed_is_ready_at_once(tmp_path: Path) -> None:
    drop = _drop(tmp_path, settle_seconds=5)
    landing = tmp_path / "landing"
    name = webhook_file_name("2026-11-22", "3a52b9d2612f6f397c7df99b" + "0" * 40)
    _write(landing / f"ripley/{name}", '{"sku": "1"}\n', age_seconds=0)  # renamed into place
    _write(landing / "ripley/webhook-export.jsonl", '{"sku": "2"}\n', age_seconds=0)  # not ours

    first = drop.ready_files(None, now=NOW.timestamp())

    assert [f.relpath for f in first.files] == [f"ripley/{name}"]
    assert first.waiting == ["ripley/webhook-export.jsonl"]


def test_a_dropped_file_replays_from_the_archive(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    path = _write(
        tmp_path / "landing/falabella/2026-11-22.csv",
        HEADER + '1,TV,LG,"$599.990","$449.990",,true,2026-11-22T13:00:00Z\n',
    )
    live, _ = concat_batches(drop.fetch(FetchRequest(day=date(2026, 11, 22), observed_at=NOW)))
    path.unlink()  # the landing folder is cleaned; the archive keeps the bytes
    archive = Archive(tmp_path / "archive")
    replayed, stats = concat_batches(replay_day(archive, "exports", date(2026, 11, 22)))
    assert replayed.equals(live)
    assert stats.pages == 1


def test_unknown_files_and_formats_are_clear_errors(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    from arbx_dagster.ingestion.connectors import IngestionError

    with pytest.raises(IngestionError, match="no such file"):
        list(drop.fetch(FetchRequest(paths=("nope.csv",))))
    _write(tmp_path / "landing/x.xlsx", b"zip")
    with pytest.raises(IngestionError, match="unknown format"):
        list(drop.fetch(FetchRequest(paths=("x.xlsx",))))


def test_a_wrongly_encoded_file_is_quarantined_by_line_never_stored_garbled(
    tmp_path: Path,
) -> None:
    content = "sku,name,price_offer\nA,Televisión 55,199990\nB,Radio,19990\n".encode("latin-1")
    _write(tmp_path / "landing/falabella/export.csv", content)
    [batch] = _drop(tmp_path).fetch(FetchRequest(observed_at=NOW))
    result = validate_observations(batch.frame, now=NOW)
    assert result.accepted["name"].to_list() == ["Radio"]  # the ASCII line still lands
    [reason] = result.quarantined["reason"].to_list()
    assert reason.startswith("not utf-8 text") and "encoding: latin-1" in reason

    [fixed] = _drop(tmp_path, encoding="latin-1").fetch(FetchRequest(observed_at=NOW))
    names = validate_observations(fixed.frame, now=NOW).accepted["name"].to_list()
    assert names == ["Televisión 55", "Radio"]


def test_an_unknown_encoding_is_refused_when_sources_yaml_loads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown text encoding 'klingon'"):
        FileDropSource(name="x", connector="file_drop", path=tmp_path, encoding="klingon")


def test_a_jsonl_line_nested_thousands_deep_is_quarantined_and_the_rest_lands(
    tmp_path: Path,
) -> None:
    deep = '{"sku": ' + "[" * 5_000 + "]" * 5_000 + "}"
    good = '{"sku": "B", "name": "Tablet", "price_offer": 199990}'
    _write(tmp_path / "landing/ripley/feed.jsonl", f"{deep}\n{good}\n")
    [batch] = _drop(tmp_path).fetch(FetchRequest(observed_at=NOW))
    assert batch.frame.select("sku", "parse_error").rows() == [
        (None, "JSON nested too deeply"),
        ("B", None),
    ]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_a_row_written_with_another_separator_is_quarantined_saying_so(
    tmp_path: Path, quoted: bool
) -> None:
    drop = _drop(tmp_path, retailer="paris")
    name = '"TV 55, 4K"' if quoted else "TV 55"
    _write(
        tmp_path / "landing/precios.csv",
        "sku,name,price_offer\n"
        f"A,{name},99990\n"
        "B;Radio;19990\n"  # pasted from a semicolon export
        "C,Mouse\n",
    )
    [batch] = drop.fetch(FetchRequest(observed_at=NOW))
    assert batch.frame.select("sku", "parse_error").rows() == [
        ("A", None),
        ("B;Radio;19990", "fields separated by ';' where the file uses ','"),
        ("C", "2 fields where the header has 3"),
    ]
    result = validate_observations(batch.frame, now=NOW)
    assert result.accepted["sku"].to_list() == ["A"]
    assert result.accepted.height + result.quarantined.height == batch.frame.height == 3
