"""The market simulator: realistic enough to fool nobody, labelled exactly enough to score on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from arbx_dagster.domain.schema import RAW_PRICE_KEY, RAW_PRICE_SCHEMA, RETAILERS
from arbx_dagster.domain.simulator import (
    SimulatedMarket,
    SimulatorConfig,
    market_events,
    simulate_catalogue,
    simulate_market,
)
from arbx_dagster.domain.simulator.catalogue import build_products
from arbx_dagster.domain.simulator.listings import carry_products
from arbx_dagster.domain.simulator.text import strip_accents

TZ = "America/Santiago"
DEFAULT = SimulatorConfig()
SMALL = SimulatorConfig(seed=3, n_products=120, days=30)


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return simulate_market(DEFAULT)


@pytest.fixture(scope="module")
def products() -> pl.DataFrame:
    return build_products(2_000, np.random.default_rng(1))


def _local_day(column: str = "observed_at") -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(TZ).dt.date()


def _clean(market: SimulatedMarket) -> pl.DataFrame:
    """Observations that were not broken on purpose, with their true product and local day."""
    broken = market.truth_malformed["row"]
    return (
        market.observations.with_row_index("row")
        .filter(~pl.col("row").cast(pl.Int64).is_in(broken.implode()))
        .join(market.truth_listings, on=["retailer", "sku"], how="left")
        .with_columns(day=_local_day())
    )


def _glitched(market: SimulatedMarket) -> pl.DataFrame:
    return market.truth_glitches.select("retailer", "sku", "observed_at").with_columns(glitch=True)


def _gap_days(market: SimulatedMarket) -> pl.DataFrame:
    """(true_product_id, day) pairs on which a planted gap runs."""
    return (
        market.truth_gaps.with_columns(day=pl.date_ranges("start_day", "end_day"))
        .explode("day")
        .select("true_product_id", "day", "cheap_sku", "discount")
    )


def _ordinary(market: SimulatedMarket) -> pl.DataFrame:
    """Clean, new, in-stock, priced rows that are neither glitched nor part of a planted gap."""
    return (
        _clean(market)
        .join(_glitched(market), on=["retailer", "sku", "observed_at"], how="anti")
        .join(_gap_days(market), on=["true_product_id", "day"], how="anti")
        .filter(
            (pl.col("condition") == "new")
            & pl.col("in_stock")
            & pl.col("price_offer").is_not_null()
        )
    )


# --- shape and determinism -------------------------------------------------------------------


def test_observations_have_exactly_the_raw_price_schema(market: SimulatedMarket) -> None:
    assert market.observations.schema == pl.Schema(RAW_PRICE_SCHEMA)
    clean = _clean(market)
    assert set(clean["source"]) == {"simulator"}
    assert set(clean["fetch_status"]) == {"ok"}
    assert set(clean["currency"]) == {"CLP"}
    assert clean["payload_sha256"].str.contains(r"^[0-9a-f]{64}$").all()
    assert market.observations["payload_sha256"].n_unique() == market.observations.height


def test_default_market_has_the_promised_size(market: SimulatedMarket) -> None:
    assert market.truth_listings["true_product_id"].n_unique() == DEFAULT.n_products
    days = market.observations.select(_local_day().alias("day"))["day"]
    assert (days.min(), days.max()) == (date(2026, 9, 25), DEFAULT.end)
    assert market.truth_listings.height > 2 * DEFAULT.n_products


def test_the_same_config_gives_identical_frames() -> None:
    first, second = simulate_market(SMALL), simulate_market(SMALL)
    for name in SimulatedMarket.__dataclass_fields__:
        assert getattr(first, name).equals(getattr(second, name)), name


def test_different_seeds_give_different_catalogues() -> None:
    a = simulate_catalogue(300, seed=1)
    b = simulate_catalogue(300, seed=2)
    assert not a.equals(b)
    assert set(a["name"]) != set(b["name"])


# --- ground-truth invariants -----------------------------------------------------------------


def test_every_observation_belongs_to_a_labelled_listing(market: SimulatedMarket) -> None:
    clean = _clean(market)
    assert clean["true_product_id"].null_count() == 0
    listed = market.truth_listings
    assert listed.select("retailer", "sku").is_unique().all()
    observed = clean.select("retailer", "sku").unique()
    assert observed.join(listed, on=["retailer", "sku"], how="anti").height == 0
    assert listed.join(observed, on=["retailer", "sku"], how="anti").height == 0


def test_a_listing_is_observed_at_most_once_a_day(market: SimulatedMarket) -> None:
    clean = _clean(market)
    assert clean.select(RAW_PRICE_KEY).is_unique().all()
    assert clean.select("retailer", "sku", "day").is_unique().all()
    hours = clean["observed_at"].dt.convert_time_zone(TZ).dt.hour()
    assert hours.min() >= 7 and hours.max() <= 16  # daytime crawls, Santiago time


def test_products_are_carried_by_one_to_three_stores_mostly_two_or_more(
    market: SimulatedMarket,
) -> None:
    stores = market.truth_listings.group_by("true_product_id").agg(n=pl.col("retailer").n_unique())
    assert stores["n"].is_between(1, 3).all()
    assert (stores["n"] >= 2).mean() > 0.7
    assert (stores["n"] == 1).any()
    one_each = market.truth_listings.group_by("true_product_id", "retailer").len()["len"]
    assert (one_each == 1).all()


# --- catalogue realism -------------------------------------------------------------------------


def test_titles_of_one_product_differ_from_store_to_store(market: SimulatedMarket) -> None:
    titles = _clean(market).group_by("true_product_id", "retailer").agg(pl.col("name").first())
    per_product = (
        titles.group_by("true_product_id")
        .agg(stores=pl.len(), distinct=pl.col("name").n_unique())
        .filter(pl.col("stores") > 1)
    )
    assert (per_product["distinct"] == per_product["stores"]).mean() > 0.95


def test_catalogue_has_siblings_that_differ_only_by_size_or_generation() -> None:
    products = build_products(400, np.random.default_rng(7))
    sizes_per_line = products.group_by("line_id").agg(pl.col("size").n_unique())["size"]
    assert (sizes_per_line >= 2).sum() >= 40  # e.g. UN50CU7000 / UN55CU7000, 128 / 256 GB
    series = products.group_by("category", "brand", "series_no", "gen_idx").len()
    generations = series.group_by("category", "brand", "series_no").len()["len"]
    assert (generations >= 2).sum() >= 10  # e.g. Galaxy A54 / A55, CU7000 / DU7000
    assert products.select("category", "brand", "name", "size").is_unique().all()
    assert products.select("category", "brand", "code", "size").is_unique().all()
    assert not products["synthetic"].any()


def test_every_title_names_its_product_and_its_size(products: pl.DataFrame) -> None:
    listings = carry_products(
        products,
        RETAILERS,
        np.random.default_rng(2),
        days=1,
        marketplace_rate=0.15,
        refurbished_rate=0.05,
        late_listing_rate=0.0,
    ).select("product_idx", "category", "name")
    truth = products.select("product_idx", true_name="name", code="code", size="size")

    def fold(column: str) -> pl.Expr:
        return strip_accents(pl.col(column)).str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")

    checked = listings.join(truth, on="product_idx").select(
        "category",
        "size",
        named=fold("name").str.contains(fold("true_name"), literal=True),
        coded=fold("name").str.contains(fold("code"), literal=True),
        sized=fold("name").str.contains(fold("size"), literal=True),
    )
    assert (checked["named"] | checked["coded"]).all()
    sized = checked.filter(pl.col("category") != "notebooks")  # notebooks: RAM and SSD
    assert (sized["sized"] | sized["coded"]).all()


@pytest.mark.parametrize(
    ("brand", "category", "pattern"),
    [
        ("Samsung", "televisores", r"^(UN\d{2}[A-Z]{2}\d{4}|QN\d{2}QN?\d{2}[A-Z])$"),
        ("LG", "televisores", r"^(\d{2}U[PQRT]\d{4}|\d{2}NANO\d{2}[PQRS]|OLED\d{2}[BCG]\d)$"),
        ("Sony", "televisores", r"^(KD|XR)-\d{2}[XA]\d{2}[JKL]$"),
        ("Samsung", "smartphones", r"^SM-[ASF]\d{3,4}[A-Z]$"),
        ("Apple", "smartphones", r"^M[0-9A-Z]{4}LZ/A$"),
        ("Lenovo", "notebooks", r"^8[23][0-9A-Z]{6}(LM|CL)$"),
    ],
)
def test_model_codes_follow_the_brand_style(
    products: pl.DataFrame, brand: str, category: str, pattern: str
) -> None:
    codes = products.filter((pl.col("brand") == brand) & (pl.col("category") == category))["code"]
    assert codes.len() > 0
    assert codes.str.contains(pattern).all(), codes.filter(~codes.str.contains(pattern)).to_list()


def test_store_identifiers_urls_and_fields_follow_each_store(market: SimulatedMarket) -> None:
    clean = _clean(market).unique(["retailer", "sku"], keep="first")
    formats = {
        "falabella": (
            r"^\d{8}$",
            r"^https://www\.falabella\.com/falabella-cl/product/\d{8}/[A-Za-z0-9-]+/\d{8}$",
        ),
        "ripley": (
            r"^(2000\d{9}|MPM\d{11})$",
            r"^https://simple\.ripley\.cl/[a-z0-9-]+-(2000\d{9}|MPM\d{11})$",
        ),
        "paris": (
            r"^(\d{6}999|MK[0-9A-Z]{8})$",
            r"^https://www\.paris\.cl/[a-z0-9-]+-(\d{6}999|MK[0-9A-Z]{8})\.html$",
        ),
    }
    for store, (sku, url) in formats.items():
        rows = clean.filter(pl.col("retailer") == store)
        assert rows["sku"].str.contains(sku).all(), store
        assert rows["url"].str.contains(url).all(), store
    programmes = (
        clean.filter(pl.col("price_card").is_not_null())
        .group_by("retailer")
        .agg(pl.col("card_program").unique())
    )
    assert dict(programmes.iter_rows()) == {
        "falabella": ["CMR"],
        "ripley": ["Tarjeta Ripley"],
        "paris": ["Tarjeta Cencosud"],
    }
    assert clean["model"].is_null().mean() > 0.8
    assert clean["ean"].is_null().mean() > 0.85
    for ean in clean["ean"].drop_nulls().to_list():  # valid EAN-13 check digits
        digits = [int(d) for d in ean]
        assert len(digits) == 13 and (sum(digits[::2]) + 3 * sum(digits[1::2])) % 10 == 0
    assert 0 < clean["brand"].is_null().mean() < 0.15
    assert 0.05 < (~clean["is_first_party"]).mean() < 0.3
    assert (clean["condition"] == "new").mean() > 0.95


# --- prices ------------------------------------------------------------------------------------


def test_prices_are_whole_clp_ending_in_990_and_ordered(market: SimulatedMarket) -> None:
    rows = _ordinary(market)
    assert (rows["price_offer"] % 1000 == 990).mean() > 0.99
    assert (rows["price_list"] >= rows["price_offer"]).all()
    carded = rows.filter(pl.col("price_card").is_not_null())
    assert (carded["price_card"] <= carded["price_offer"]).all()
    assert 0.1 < carded.height / rows.height < 0.6
    assert rows["price_offer"].is_between(9_990, 10_000_000).all()


def test_ordinary_noise_never_opens_an_eight_percent_cross_store_gap(
    market: SimulatedMarket,
) -> None:
    spreads = (
        _ordinary(market)
        .group_by("true_product_id", "day")
        .agg(ratio=pl.col("price_offer").max() / pl.col("price_offer").min(), stores=pl.len())
        .filter(pl.col("stores") > 1)
    )
    assert spreads["ratio"].max() < 1.08


def test_prices_move_in_steps(market: SimulatedMarket) -> None:
    rows = _ordinary(market).sort("retailer", "sku", "day")
    changed = rows.select(
        (pl.col("price_offer").diff() != 0).over("retailer", "sku").alias("changed")
    )["changed"].drop_nulls()
    assert 0.02 < changed.mean() < 0.25  # prices hold for days, then jump


def test_stock_outs_hide_the_price_only_at_paris(market: SimulatedMarket) -> None:
    sold_out = _clean(market).filter(~pl.col("in_stock"))
    assert sold_out.height > 0
    paris = sold_out.filter(pl.col("retailer") == "paris")
    others = sold_out.filter(pl.col("retailer") != "paris")
    assert paris["price_offer"].is_null().all() and paris["price_list"].is_not_null().all()
    assert others["price_offer"].is_not_null().all()
    assert (sold_out["stock_qty"].drop_nulls() == 0).all()


# --- events, gaps and glitches -------------------------------------------------------------------


def test_events_fall_on_their_chilean_dates() -> None:
    events = {(e.name, e.start, e.end) for e in market_events(date(2026, 1, 1), date(2026, 12, 31))}
    assert events == {
        ("CyberDay", date(2026, 6, 1), date(2026, 6, 3)),
        ("CyberMonday", date(2026, 10, 5), date(2026, 10, 7)),
        ("Black Friday", date(2026, 11, 27), date(2026, 11, 29)),
    }


def test_an_event_cuts_the_same_products_at_every_store(market: SimulatedMarket) -> None:
    assert market.truth_promotions.rows() == [("CyberMonday", date(2026, 10, 5), date(2026, 10, 7))]
    rows = _ordinary(market)
    before = rows.filter(pl.col("day") == date(2026, 10, 4)).select(
        "retailer", "sku", "true_product_id", before="price_offer"
    )
    during = rows.filter(pl.col("day") == date(2026, 10, 5)).select(
        "retailer", "sku", during="price_offer"
    )
    moves = before.join(during, on=["retailer", "sku"]).with_columns(
        cut=1 - pl.col("during") / pl.col("before")
    )
    cut = moves.group_by("true_product_id").agg(
        pl.col("cut").min(), pl.col("cut").max().alias("cut_max"), pl.len()
    )
    discounted = cut.filter(pl.col("cut") > 0.08)
    assert discounted.height > 0.3 * cut.height
    multi = discounted.filter(pl.col("len") > 1)
    assert (multi["cut_max"] - multi["cut"]).max() < 0.1  # similar amounts everywhere
    assert (moves["during"] / moves["before"]).min() > 0.5  # deep, but not glitch-deep


def test_planted_gaps_are_visible_actionable_and_outside_events(market: SimulatedMarket) -> None:
    gaps = market.truth_gaps
    assert gaps.height > 0 and gaps["discount"].is_between(0.15, 0.40).all()
    assert gaps.filter(pl.col("end_day") == DEFAULT.end).height >= 0.3 * gaps.height
    for event in market.truth_promotions.iter_rows(named=True):
        overlap = (gaps["start_day"] <= event["end_day"]) & (gaps["end_day"] >= event["start_day"])
        assert not overlap.any()
    days = _clean(market).join(_gap_days(market), on=["true_product_id", "day"])
    assert days["in_stock"].all()
    is_cheap = pl.col("sku") == pl.col("cheap_sku")
    per_day = days.group_by("true_product_id", "day").agg(
        cheap=pl.col("price_offer").filter(is_cheap).min(),
        others=pl.col("price_offer").filter(~is_cheap).min(),
    )
    assert (per_day["others"] / per_day["cheap"]).min() > 1.1
    assert (per_day["others"] - per_day["cheap"]).min() >= 10_000


def test_planted_glitches_are_exact_rare_and_outside_events_and_gaps(
    market: SimulatedMarket,
) -> None:
    glitches = market.truth_glitches.with_columns(day=_local_day())
    assert glitches.height > 0
    assert glitches.height / market.observations.height < 0.01
    assert glitches.filter(pl.col("day") == DEFAULT.end).height >= 3
    assert (glitches["glitch_price"] <= 0.45 * glitches["true_price"]).all()
    assert set(glitches["price_type"]) <= {"offer", "card"}
    seen = glitches.join(market.observations, on=["retailer", "sku", "observed_at"])
    assert seen.height == glitches.height
    shown = (
        pl.when(pl.col("price_type") == "offer")
        .then(pl.col("price_offer"))
        .otherwise(pl.col("price_card"))
    )
    assert seen.select((shown == pl.col("glitch_price")).all()).item()
    assert seen["in_stock"].all()
    for event in market.truth_promotions.iter_rows(named=True):
        assert not glitches["day"].is_between(event["start_day"], event["end_day"]).any()
    listed = glitches.join(market.truth_listings, on=["retailer", "sku"])
    assert listed.join(_gap_days(market), on=["true_product_id", "day"]).height == 0


def test_malformed_rows_are_labelled_and_disjoint_from_glitches(market: SimulatedMarket) -> None:
    labels = market.truth_malformed
    share = labels.height / market.observations.height
    assert 0.001 < share < 0.004
    broken = (
        market.observations.with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .join(labels.select("row", "defect"), on="row")
    )
    checks = {
        "negative_price": pl.col("price_offer") < 0,
        "zero_price": pl.col("price_offer") == 0,
        "absurd_price": pl.col("price_offer") > 100_000_000,
        "wrong_currency": pl.col("currency") == "USD",
        "missing_sku": pl.col("sku").is_null(),
        "missing_name": pl.col("name").is_null(),
        "offer_above_list": pl.col("price_offer") > 2 * pl.col("price_list"),
    }
    for defect, holds in checks.items():
        rows = broken.filter(pl.col("defect") == defect)
        assert rows.height > 0, defect
        assert rows.select(holds.all()).item(), defect
    glitched = market.truth_glitches.select("retailer", "sku", "observed_at")
    assert labels.join(glitched, on=["retailer", "sku", "observed_at"]).height == 0


def test_the_quarantine_rules_catch_exactly_the_malformed_rows(market: SimulatedMarket) -> None:
    from arbx_dagster.domain.quality import validate_observations

    result = validate_observations(market.observations, now=datetime(2026, 11, 24, tzinfo=UTC))
    rows = result.quarantined["source_location"].str.extract(r":(\d+)$").cast(pl.Int64)
    assert sorted(rows.to_list()) == market.truth_malformed["row"].to_list()


# --- snapshots, clock and configuration ----------------------------------------------------------


def test_catalogue_snapshot_has_the_requested_number_of_unique_listings() -> None:
    snapshot = simulate_catalogue(5_000, seed=11)
    assert snapshot.height == 5_000
    assert snapshot.schema == pl.Schema(RAW_PRICE_SCHEMA)
    assert snapshot.select("retailer", "sku").is_unique().all()
    assert snapshot.select(_local_day().alias("d"))["d"].n_unique() == 1
    assert snapshot["price_offer"].null_count() < 0.02 * snapshot.height  # only Paris stock-outs
    assert set(snapshot["retailer"]) == {"falabella", "ripley", "paris"}
    assert set(simulate_catalogue(500, retailers=("ripley", "paris"))["retailer"]) == {
        "ripley",
        "paris",
    }


def test_no_observation_is_later_than_now() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 09:00 in Santiago, mid-crawl
    market = simulate_market(SimulatorConfig(seed=5, n_products=60, days=10, now=now))
    observed = market.observations["observed_at"]
    assert observed.max() <= now
    last = market.observations.filter(_local_day() == date(2026, 11, 23))
    assert last.height == market.truth_listings.height  # every listing still observed that day


@pytest.mark.parametrize(
    "changes",
    [
        {"n_products": 0},
        {"days": 0},
        {"retailers": ("falabella", "falabella")},
        {"retailers": ("lider",)},
        {"glitch_rate": 1.5},
        {"now": datetime(2026, 11, 20, tzinfo=UTC)},
    ],
)
def test_config_rejects_impossible_settings(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**changes)  # type: ignore[arg-type]


def test_small_and_single_store_markets_still_work() -> None:
    market = simulate_market(SimulatorConfig(seed=2, n_products=5, days=3, retailers=("paris",)))
    assert set(market.observations["retailer"]) == {"paris"}
    assert market.truth_gaps.height == 0
    titles = market.observations["name"].drop_nulls()
    assert titles.str.contains(re.escape("  ")).sum() == 0
