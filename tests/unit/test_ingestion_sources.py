"""sources.yaml: the shipped example loads; a wrong file fails with located, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbx_dagster.ingestion.sources import (
    FileDropSource,
    HtmlSource,
    HttpJsonSource,
    SimulatorSource,
)
from arbx_dagster.ingestion.sources_file import (
    SourcesError,
    load_sources,
    parse_sources,
)
from arbx_dagster.resources.sources import default_sources_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "sources.example.yaml"

MINIMAL = """
retailers:
  - name: falabella
    connector: http_json
    base_url: https://example.test
    listing:
      url: /listing?cat={category}
      targets: [{category: tv}]
      pagination: {kind: page}
      items_path: data.results
      fields: {sku: skuId, name: displayName, price_offer: price}
  - name: ripley
    connector: http_json
    base_url: https://example.test
    listing:
      url: /catalog
      pagination: {kind: pages}
      items_path: products
      fields: {sku: partNumber}
"""


def test_the_shipped_example_covers_every_connector_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "paris").mkdir()  # the landing folder's folders name its retailers
    monkeypatch.setenv("ARBX_LANDING", str(tmp_path))
    sources = load_sources(EXAMPLE)
    kinds = {type(s) for s in sources.retailers}
    assert kinds == {HttpJsonSource, HtmlSource, FileDropSource, SimulatorSource}
    falabella = sources.get("falabella")
    assert isinstance(falabella, HttpJsonSource)
    assert falabella.card_program == "CMR"
    assert falabella.rate_limit.requests_per_second == 0.5  # from defaults
    assert falabella.retry.max_retry_after_seconds == 300
    assert sources.get("paris").rate_limit.burst == 1  # its own value wins
    assert [s.name for s in sources.sources_for("paris")] == ["exports", "simulator"]
    assert sources.archive.codec == "zstd"


def test_default_path_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBX_SOURCES", "/somewhere/sources.yaml")
    assert default_sources_path() == Path("/somewhere/sources.yaml")
    monkeypatch.delenv("ARBX_SOURCES")
    monkeypatch.chdir(REPO)
    assert default_sources_path().resolve() == EXAMPLE


def test_a_wrong_value_is_reported_with_its_line_and_path() -> None:
    with pytest.raises(SourcesError) as error:
        parse_sources(MINIMAL)
    message = str(error.value)
    assert (
        "sources.yaml:17: retailers[1] (ripley).listing.pagination.kind: "
        "must be one of page, cursor, offset, none (got 'pages')"
    ) in message
    assert "falabella" not in message  # only the broken entry is reported


def test_every_problem_is_listed_at_once() -> None:
    text = """
retailers:
  - name: Bad Name
    connector: http_json
    base_url: ftp://nope
    timeout_seconds: -1
    listing:
      url: /x?c={category}
      targets: [{other: 1}]
      items_path: "data.[results"
      fields: {name: title, prize_offer: price}
  - name: shop
    connector: scraper
"""
    with pytest.raises(SourcesError) as error:
        parse_sources(text, origin="my.yaml")
    lines = str(error.value).splitlines()
    text_of = "\n".join(lines)
    assert lines[0] == (
        "my.yaml:3: retailers[0] (Bad Name).name: must be lower case letters, digits, '-' or "
        "'_', starting with a letter (got 'Bad Name')"
    )
    assert "my.yaml:5: retailers[0] (Bad Name).base_url: must start with http://" in text_of
    assert "my.yaml:6: retailers[0] (Bad Name).timeout_seconds: Input should be greater" in text_of
    assert "my.yaml:10: retailers[0] (Bad Name).listing.items_path: invalid JMESPath" in text_of
    assert (
        "my.yaml:11: retailers[0] (Bad Name).listing.fields.prize_offer: must be one of sku,"
    ) in text_of
    assert (
        "my.yaml:13: retailers[1] (shop).connector: must be one of http_json, html, "
        "file_drop, simulator (got 'scraper')"
    ) in text_of


def test_a_listing_must_map_the_sku_and_fill_its_url_template() -> None:
    text = """
retailers:
  - name: shop
    connector: http_json
    base_url: https://example.test
    listing:
      url: /x?c={category}
      targets: [{other: tv}]
      items_path: results
      fields: {name: title}
"""
    with pytest.raises(SourcesError) as error:
        parse_sources(text)
    assert "retailers[0] (shop).listing.fields: must map 'sku'" in str(error.value)
    with pytest.raises(SourcesError) as error:
        parse_sources(text.replace("{name: title}", "{sku: id}"))
    assert "targets[0] lacks ['category'] used by url '/x?c={category}'" in str(error.value)


def test_css_selectors_and_pagination_are_checked() -> None:
    text = """
retailers:
  - name: paris
    connector: html
    base_url: https://example.test
    listing:
      url: /grid
      pagination: {kind: offset}
      item: "div >> a"
      fields: {sku: "::attr(data-id)"}
"""
    with pytest.raises(SourcesError) as error:
        parse_sources(text)
    message = str(error.value)
    assert "offset pagination needs page_size" in message
    assert "invalid CSS selector 'div >> a'" in message


def test_names_must_be_unique_and_the_file_must_exist(tmp_path: Path) -> None:
    text = """
retailers:
  - {name: sim, connector: simulator}
  - {name: sim, connector: simulator}
"""
    with pytest.raises(SourcesError, match=r"unique; repeated: \['sim'\]"):
        parse_sources(text)
    with pytest.raises(SourcesError, match="cannot read sources file"):
        load_sources(tmp_path / "absent.yaml")
    with pytest.raises(SourcesError, match="not valid YAML"):
        parse_sources("retailers: [unclosed")


def test_environment_variables_fill_values_not_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    text = """
# ${NOT_EXPANDED_IN_COMMENTS}
retailers:
  - name: drop
    connector: file_drop
    path: ${ARBX_TEST_LANDING:-/tmp/landing}/in
  - name: sim
    connector: simulator
    seed: ${ARBX_TEST_SEED}
"""
    monkeypatch.setenv("ARBX_TEST_SEED", "11")
    sources = parse_sources(text)
    assert str(sources.get("drop").path) == "/tmp/landing/in"
    assert sources.get("sim").seed == 11
    monkeypatch.delenv("ARBX_TEST_SEED")
    with pytest.raises(SourcesError, match=r"sources.yaml:9: retailers\[1\]\.seed: environment"):
        parse_sources(text)


def test_a_default_may_itself_use_a_variable_with_a_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = """
archive: {root: "${ARBX_TEST_ARCHIVE:-${ARBX_TEST_HOME:-.state}/archive}"}
retailers: [{name: sim, connector: simulator}]
"""
    for name in ("ARBX_TEST_ARCHIVE", "ARBX_TEST_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert parse_sources(text).archive.root == ".state/archive"
    monkeypatch.setenv("ARBX_TEST_HOME", "/srv/arbx")
    assert parse_sources(text).archive.root == "/srv/arbx/archive"
    monkeypatch.setenv("ARBX_TEST_ARCHIVE", "s3://bucket/raw")
    assert parse_sources(text).archive.root == "s3://bucket/raw"
    # A default is read only when it is needed: an unset variable in it is no error then.
    lazy = text.replace("${ARBX_TEST_HOME:-.state}", "${ARBX_TEST_UNSET}")
    assert parse_sources(lazy).archive.root == "s3://bucket/raw"


def test_the_simulator_lists_its_retailers() -> None:
    sources = parse_sources(
        "retailers: [{name: sim, connector: simulator, retailers: [falabella, paris]}]"
    )
    assert sources.get("sim").retailers == ("falabella", "paris")
    assert sources.sources_for("ripley") == []


FIXTURES = REPO / "tests" / "fixtures" / "retailers"


@pytest.mark.parametrize(
    ("store", "page", "first_item"),
    [
        ("falabella", "falabella/listing-cat7190148-p1.json", ("16677002", "599.990", "449.990")),
        ("ripley", "ripley/catalog-celulares-p1.json", ("2000390012345P", "$999.990", "$799.990")),
        ("paris", "paris/grid-notebooks-start0.html", ("MKLG7E", "Normal: $1.099.990", "$899.990")),
    ],
)
def test_the_example_store_mappings_read_the_recorded_pages(
    store: str, page: str, first_item: tuple[str, str, str]
) -> None:
    """The shipped example and the recorded-style fixtures describe the same store shapes."""
    from arbx_dagster.ingestion.connectors import parser_for

    parser = parser_for(load_sources(EXAMPLE).get(store))
    parsed = parser.parse_listing((FIXTURES / page).read_bytes(), "https://store.test/page")
    assert parsed.structure_error is None
    assert len(parsed.items) == 3
    item = parsed.items[0]
    assert (item["sku"], item["price_list"], item["price_offer"]) == first_item


def test_tier_schedules_ask_only_retailers_a_source_fetches_not_those_fed_by_file_drops() -> None:
    sources = load_sources(EXAMPLE)  # falabella, ripley, paris scraped; files for any store
    assert sources.fetched(["falabella", "paris", "ripley", "walmart"]) == [
        "falabella",
        "paris",
        "ripley",
    ]
    drops_only = parse_sources(
        "version: 1\nretailers:\n  - {name: landing, connector: file_drop, path: /landing}\n"
    )
    assert drops_only.fetched(["falabella", "walmart"]) == []
