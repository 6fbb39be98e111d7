"""Normalisation for matching: titles, units, brands, model codes, categories."""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.domain.matching.brands import normalize_brand
from arbx_dagster.domain.matching.model_codes import code_stem
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.titles import normalize_title


def norm(text: str) -> str:
    return pl.select(normalize_title(pl.lit(text))).item()


def enrich(names: list[str], **cols: list[str | None]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "retailer": ["falabella"] * len(names),
            "sku": [str(i) for i in range(len(names))],
            "name": names,
            **cols,
        }
    )
    return enrich_listings(frame)


@pytest.mark.parametrize(
    ("title", "token"),
    [
        ('Smart TV Samsung 55" Crystal UHD', "55in"),
        ("TELEVISOR SAMSUNG LED 55 PULGADAS", "55in"),
        ("Televisor 55'' 4K", "55in"),
        ("Smart TV 55 pulg. QLED", "55in"),
        ("Sony 46' BRAVIA LCD", "46in"),
        ('Notebook 15,6" Ryzen 5', "15.6in"),
        ("Celular 128 GB", "128gb"),
        ("Celular 128GB", "128gb"),
        ("Pendrive 64 gigas", "64gb"),
        ("Lavadora 10 Kg", "10kg"),
        ("Lavadora 10,5 kilos", "10.5kg"),
        ("Refrigerador 310 Litros", "310l"),
        ("Refrigerador 310 lts", "310l"),
        ("Microondas 1.000 W", "1000w"),
        ("Panasonic 1250-Watt Microwave", "1250w"),
    ],
)
def test_units_become_one_canonical_token(title: str, token: str) -> None:
    assert token in norm(title).split()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Intel Core i5 6400 2.70GHz", "intel core i5 6400 2.7 GHz"),
        ("WD 72.80GB SCSI", "wd 72.8 gb scsi"),
        ("Cámara 20.0 MP", "camara 20 mp"),
    ],
)
def test_a_value_is_written_one_way_whatever_its_trailing_zeros(one: str, other: str) -> None:
    assert norm(one) == norm(other)


def test_a_size_beside_another_measure_is_not_read_as_a_count_of_functions() -> None:
    """'2 en 1', '3-in-1' name functions; '13in 2.5ghz' is a size and a speed."""
    assert norm("MacBook Pro 13in 2.5GHz").split()[-2:] == ["13in", "2.5ghz"]
    assert norm("iMac 27 in 3.4 GHz").split()[-2:] == ["27in", "3.4ghz"]
    assert "2in1" in norm("Notebook 2 en 1 táctil").split()
    assert "3in1" in norm("Impresora 3-in-1, WiFi").split()


def test_title_is_folded_and_cleaned() -> None:
    assert norm("Televisión Ñandú  LED, ¡Oferta!") == "television nandu led oferta"
    # Codes lose their separators; words with a small number stay apart.
    assert "un55cu7000" in norm("TV UN-55CU7000").split()
    assert norm("Sony 5-Disc CD Player").split()[1:3] == ["5", "disc"]


def test_screen_diagonal_in_cm_becomes_inches() -> None:
    out = enrich(
        ["Smart TV LG 139 cm UHD 55UQ8050PSB", 'Smart TV LG 55" (139 cm) UHD', "Mesa 120 cm"]
    )
    tokens = [set(t.split()) for t in out["name_norm"].to_list()]
    assert "55in" in tokens[0] and "139cm" not in tokens[0]
    assert "55in" in tokens[1] and "139cm" not in tokens[1]
    assert "120cm" in tokens[2]  # not a screen: left alone


def test_brand_from_field_is_canonical() -> None:
    got = pl.select(
        normalize_brand(pl.Series(["LG Electronics", "SAMSUNG", " Sony ", "Hewlett-Packard", ""]))
    ).to_series()
    assert got.to_list() == ["lg", "samsung", "sony", "hp", None]


def test_brand_inferred_from_title_when_missing() -> None:
    out = enrich(
        [
            'Smart TV Samsung 55" Crystal UHD UN55CU7000GXZS',
            "TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000",
            'Notebook Lenovo IdeaPad 3 15,6" Ryzen 5 8GB 512GB SSD 82KU00RFLM',
            "iPhone 15 256 GB Negro",
            "Acme Rocket Skates X100",
            "Acme Anvil Deluxe Z200",
            "Lavadora Carga Frontal 10 kg",
        ],
        brand=[None, None, None, None, None, None, None],
    )
    assert out["brand"].to_list() == [
        "samsung",
        "samsung",
        "lenovo",
        "apple",
        "acme",
        "acme",
        None,
    ]


def test_brand_field_wins_over_title() -> None:
    out = enrich(["Smart TV 55 UN55CU7000"], brand=["Samsung Electronics"])
    assert out["brand"].item() == "samsung"


@pytest.mark.parametrize(
    ("title", "code"),
    [
        ('Smart TV Samsung 55" Crystal UHD UN55CU7000GXZS', "UN55CU7000GXZS"),
        ("TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000", "UN55CU7000"),
        ('Notebook Lenovo IdeaPad 3 15,6" Ryzen 5 8GB 512GB SSD 82KU00RFLM', "82KU00RFLM"),
        ("Apple 8GB Purple 4th Generation iPod Nano - MB739LL/A", "MB739LLA"),
        ("Sony BRAVIA KDL-46Z4100 46' LCD TV", "KDL46Z4100"),
        ("Panasonic NN-H965WF 1250-Watt Microwave Oven", "NNH965WF"),
        ("Celular Samsung Galaxy A15 128GB", "A15"),
        ("Apple iPhone 15 128GB Negro", None),
        ("Linksys EtherFast 8-Port 10/100 Switch", None),
    ],
)
def test_model_code_from_title(title: str, code: str | None) -> None:
    assert enrich([title])["model_code"].item() == code


def test_model_field_wins_and_is_normalized() -> None:
    out = enrich(["Smart TV Samsung 55 UN55CU7000GXZS"], model=["un-55cu7000"])
    assert out["model_code"].item() == "UN55CU7000"


def test_model_codes_meet_through_stems() -> None:
    stems = pl.select(code_stem(pl.Series(["UN55CU7000GXZS", "UN55CU7000", "3730001"]))).to_series()
    assert stems.to_list() == ["UN55CU7000", "UN55CU7000", "3730001"]
    records = matching_records(
        enrich(['Smart TV Samsung 55" UN55CU7000GXZS', "TELEVISOR SAMSUNG 55 PULGADAS UN-55CU7000"])
    )
    keys = [set(c) | set(s) for c, s in zip(records["codes"], records["stems"], strict=True)]
    assert "UN55CU7000" in keys[0] & keys[1]


def test_category_is_the_folded_leaf() -> None:
    out = enrich(["x", "y"], category=["Tecnología > TV > Televisores LED", None])
    assert out["category"].to_list() == ["televisores led", None]


def test_enrich_keeps_rows_order_and_other_columns() -> None:
    frame = pl.DataFrame(
        {"retailer": ["a", "b"], "sku": ["1", "2"], "name": ["B", None], "price_offer": [1, 2]}
    )
    out = enrich_listings(frame)
    assert out["sku"].to_list() == ["1", "2"]
    assert out["price_offer"].to_list() == [1, 2]
    assert {"name_norm", "brand", "model_code", "category"} <= set(out.columns)
    assert "model" not in out.columns
