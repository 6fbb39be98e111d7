"""Brands: canonical names from a store's brand field or, failing that, from the title.

The seed tables below are general domain knowledge (Chilean electronics / appliance
retail and beyond); the data's own brand field and the words that lead many titles
extend them (``infer_brand_vocabulary``).
"""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.frames import position_in_runs
from arbx_dagster.domain.matching.titles import fold

# Spellings seen in Chilean electronics / appliance retail (and generally) -> canonical.
# General domain knowledge only: it is a seed, the data's own brand field and the
# leading-token statistics of the titles extend it (see ``infer_brand_vocabulary``).
BRAND_ALIASES: dict[str, str] = {
    "lg electronics": "lg",
    "lge": "lg",
    "samsung electronics": "samsung",
    "hewlett packard": "hp",
    "hewlett-packard": "hp",
    "hp inc": "hp",
    "black decker": "black+decker",
    "black and decker": "black+decker",
    "black & decker": "black+decker",
    "black+decker": "black+decker",
    "t-mobile": "t-mobile",
    "ursus trotter": "ursus trotter",
    "tp-link": "tp-link",
    "tp link": "tp-link",
    "tplink": "tp-link",
    "d-link": "d-link",
    "d link": "d-link",
    "western digital": "western digital",
    "wd": "western digital",
    "sony ericsson": "sony",
    "xiaomi redmi": "xiaomi",
    "redmi": "xiaomi",
    "poco": "xiaomi",
    "iphone": "apple",
    "ipad": "apple",
    "macbook": "apple",
    "galaxy": "samsung",
    "playstation": "sony",
    "xbox": "microsoft",
}

# Common brands in Chilean electronics / appliance retail (canonical, lower case).
KNOWN_BRANDS: frozenset[str] = frozenset(
    {
        "samsung",
        "lg",
        "sony",
        "apple",
        "xiaomi",
        "huawei",
        "honor",
        "motorola",
        "oppo",
        "vivo",
        "realme",
        "nokia",
        "lenovo",
        "hp",
        "dell",
        "asus",
        "acer",
        "msi",
        "philips",
        "panasonic",
        "tcl",
        "hisense",
        "jvc",
        "caixun",
        "kalley",
        "master-g",
        "aiwa",
        "oster",
        "mabe",
        "fensa",
        "whirlpool",
        "electrolux",
        "bosch",
        "midea",
        "somela",
        "thomas",
        "ursus trotter",
        "sindelen",
        "mademsa",
        "daewoo",
        "nintendo",
        "microsoft",
        "logitech",
        "jbl",
        "bose",
        "sennheiser",
        "canon",
        "nikon",
        "fujifilm",
        "gopro",
        "epson",
        "brother",
        "kodak",
        "toshiba",
        "sharp",
        "pioneer",
        "yamaha",
        "kenwood",
        "denon",
        "onkyo",
        "marshall",
        "harman kardon",
        "anker",
        "tp-link",
        "d-link",
        "netgear",
        "linksys",
        "kingston",
        "sandisk",
        "seagate",
        "western digital",
        "garmin",
        "amazfit",
        "fitbit",
        "polar",
        "suunto",
        "dyson",
        "black+decker",
        "karcher",
        "makita",
        "dewalt",
        "stanley",
        "rca",
        "haier",
        "hyundai",
        "kitchenaid",
        "nespresso",
        "krups",
        "moulinex",
        "tefal",
        "rowenta",
        "braun",
        "remington",
        "gama",
        "atma",
        "blanik",
        "winia",
        "ghiggia",
        "alcatel",
        "zte",
        "blu",
        "google",
        "amazon",
        "razer",
        "hyperx",
        "redragon",
        "corsair",
        "benq",
        "viewsonic",
        "aoc",
        "gigabyte",
        "intel",
        "amd",
        "nvidia",
        "belkin",
    }
)

# Leading title words that are product types or marketing, never brands (ES + EN).
GENERIC_WORDS: frozenset[str] = frozenset(
    {
        "smart",
        "tv",
        "televisor",
        "television",
        "led",
        "oled",
        "qled",
        "uhd",
        "hd",
        "notebook",
        "laptop",
        "computador",
        "pc",
        "tablet",
        "celular",
        "smartphone",
        "telefono",
        "phone",
        "refrigerador",
        "refrigeradora",
        "freezer",
        "lavadora",
        "secadora",
        "lavavajillas",
        "microondas",
        "horno",
        "cocina",
        "encimera",
        "campana",
        "aspiradora",
        "robot",
        "audifonos",
        "audifono",
        "parlante",
        "soundbar",
        "barra",
        "camara",
        "consola",
        "monitor",
        "impresora",
        "mouse",
        "teclado",
        "cargador",
        "cable",
        "funda",
        "case",
        "pack",
        "kit",
        "set",
        "combo",
        "nuevo",
        "nueva",
        "new",
        "the",
        "a",
        "de",
        "del",
        "la",
        "el",
        "con",
        "para",
        "and",
        "with",
        "for",
        "in",
        "of",
        "black",
        "white",
        "negro",
        "blanco",
        "gris",
        "plata",
        "silver",
        "red",
        "blue",
        "rojo",
        "azul",
        "mini",
        "pro",
        "max",
        "plus",
        "ultra",
        "premium",
        "digital",
        "portable",
        "portatil",
        "wireless",
        "inalambrico",
        "bluetooth",
        "usb",
        "hdmi",
        "ventilador",
        "estufa",
        "calefactor",
        "plancha",
        "cafetera",
        "hervidor",
        "batidora",
        "licuadora",
        "juguera",
        "freidora",
        "olla",
        "reloj",
        "smartwatch",
        "smartband",
        "home",
        "theater",
        "sistema",
        "system",
        "speaker",
        "speakers",
        "headphones",
        "refrigerator",
        "washer",
        "dryer",
        "microwave",
        "oven",
        "camera",
        "printer",
        "keyboard",
        "adapter",
        "charger",
        "memoria",
        "disco",
        "pendrive",
        "router",
        "switch",
        "modem",
        "proyector",
        "projector",
        "outdoor",
        "indoor",
        "high",
        "definition",
        "series",
    }
)

CORPORATE_SUFFIXES = (
    r"\b(?:inc|corp|corporation|ltd|llc|co|company|electronics|electronic|products|"
    r"international|chile|s\.?a|spa|ltda|gmbh|group)\b\.?"
)


def normalize_brand(expr: pl.Expr) -> pl.Expr:
    """Canonical lower-case brand from a store's brand field ('LG Electronics' -> 'lg')."""
    folded = (
        fold(expr)
        .str.replace_all(r"[®™©]", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" .,-")
    )
    aliased = folded.replace(BRAND_ALIASES)
    stripped = (
        aliased.str.replace_all(CORPORATE_SUFFIXES, "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" .,-")
    )
    out = (
        pl.when(aliased.is_in(list(BRAND_ALIASES.values())))
        .then(aliased)
        .otherwise(stripped.replace(BRAND_ALIASES))
    )
    return pl.when(out.str.len_chars() > 0).then(out).otherwise(None)


def infer_brand_vocabulary(titles: pl.Series, brands: pl.Series | None = None) -> pl.DataFrame:
    """Brand names the titles can be searched for: ``alias -> brand`` rows.

    Sources: the seed aliases and known brands, every canonical brand the stores put in
    their brand field, and words that lead many titles without being product words
    (stores start titles with the brand far more often than anywhere else).
    """
    vocab = {b: b for b in KNOWN_BRANDS} | dict(BRAND_ALIASES)
    if brands is not None:
        for b in brands.drop_nulls().unique().to_list():
            if b and b not in GENERIC_WORDS:
                vocab.setdefault(b, b)
    tokens = pl.DataFrame({"t": titles}).select(
        pl.col("t").fill_null("").str.split(" ").alias("tok")
    )
    first = tokens.select(pl.col("tok").list.first().alias("w"))
    lead = first.group_by("w").len("n_lead")
    total = tokens.select(pl.col("tok").list.unique()).explode("tok").group_by("tok").len("n_all")
    stats = lead.join(total, left_on="w", right_on="tok").filter(
        (pl.col("n_lead") >= 2)
        & (pl.col("n_lead") >= 0.5 * pl.col("n_all"))
        & pl.col("w").str.contains(r"^[a-z][a-z0-9+&-]{1,}$")
        & ~pl.col("w").is_in(list(GENERIC_WORDS))
    )
    for w in stats["w"].to_list():
        vocab.setdefault(w, w)
    return pl.DataFrame(
        {"alias": list(vocab.keys()), "brand": list(vocab.values())},
        schema={"alias": pl.String, "brand": pl.String},
    )


def infer_brand_from_title(
    df: pl.DataFrame, vocab: pl.DataFrame, *, row_id: str = "__row", title: str = "name_norm"
) -> pl.DataFrame:
    """First title word (or word pair) found in the brand vocabulary: ``row_id, brand``."""
    words = df.select(
        pl.col(row_id), pl.col(title).fill_null("").str.split(" ").alias("w")
    ).explode("w")
    # Exploded words stay grouped by row, so positions and next words need no window.
    words = words.with_columns(position_in_runs(words[row_id]).alias("pos"))
    same_row = pl.col(row_id).shift(-1) == pl.col(row_id)
    bigrams = words.with_columns(
        w=pl.when(same_row).then(pl.col("w") + " " + pl.col("w").shift(-1))
    ).drop_nulls("w")
    hits = (
        pl.concat(
            [bigrams.with_columns(n=pl.lit(2)), words.with_columns(n=pl.lit(1))], how="vertical"
        )
        .join(vocab, left_on="w", right_on="alias", how="inner")
        .sort([row_id, "pos", "n"], descending=[False, False, True])
        .unique(row_id, keep="first")
    )
    return hits.select(row_id, pl.col("brand").alias("brand_inferred"))
