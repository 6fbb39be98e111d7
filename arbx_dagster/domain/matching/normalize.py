"""Listing normalisation for matching: folded titles, brands, model codes, categories.

Everything here is a Polars expression or a frame-level join so it runs on millions of
listings without Python loops. Two stores rarely write a title the same way
('Smart TV Samsung 55" UN55CU7000GXZS' vs 'TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000'),
so the goal is to map the many spellings of the same fact onto one token: units become
``55in`` / ``128gb`` / ``10kg``, brands become one lower-case name, and model codes lose
their dashes, slashes and dots.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import polars as pl

from arbx_dagster.domain.frames import select_streamed, with_columns_streamed

# --- brands ---------------------------------------------------------------------------

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

# --- units ----------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
# What may stand before a measure's number: the start, a space or punctuation, not a
# letter or digit (in 'gddr5"' or 'x2gb' the digits belong to a word).
STANDALONE = r"(^|[^a-z0-9.])"
# (pattern applied to folded lower-case text, canonical unit suffix)
UNIT_RULES: tuple[tuple[str, str], ...] = (
    (_NUM + r"\s*(?:pulgadas|pulgada|pulg\b\.?|inches|inch\b|in\b\.|\"|''|”|″|')", "in"),
    (_NUM + r"\s*-?in\b", "in"),
    (_NUM + r"\s*(?:gb|gigas?|gigabytes?)\b", "gb"),
    (_NUM + r"\s*(?:tb|teras?|terabytes?)\b", "tb"),
    (_NUM + r"\s*(?:mb|megabytes?)\b", "mb"),
    (_NUM + r"\s*(?:mbps)\b", "mbps"),
    (_NUM + r"\s*(?:mp|mpx|megapixels?|megapixeles|megapixel)\b", "mp"),
    (_NUM + r"\s*(?:kg|kgs|kilos?|kilogramos?)\b", "kg"),
    (_NUM + r"\s*(?:l|lt|lts|litros?|liters?|litres?)\b", "l"),
    (_NUM + r"\s*(?:ml|mililitros?)\b", "ml"),
    (_NUM + r"\s*(?:w|watts?|watt)\b", "w"),
    (_NUM + r"\s*(?:mah)\b", "mah"),
    (_NUM + r"\s*(?:ghz)\b", "ghz"),
    (_NUM + r"\s*(?:mhz)\b", "mhz"),
    (_NUM + r"\s*(?:hz)\b", "hz"),
    (_NUM + r"\s*(?:cm|centimetros?)\b", "cm"),
    (_NUM + r"\s*(?:mm|milimetros?)\b", "mm"),
    (_NUM + r"\s*(?:cu\.?\s*ft\b\.?|cubic[\s-]*f(?:ee|oo)t\b|pies\s*cubicos\b)", "cuft"),
    (_NUM + r"\s*(?:ft|feet|foot|pies)\b", "ft"),
    (_NUM + r"\s*(?:btu)\b", "btu"),
    (_NUM + r"\s*(?:v|volts?|voltios?)\b", "v"),
    (_NUM + r"\s*(?:rpm)\b", "rpm"),
    # pack counts: '4 pack', '2-pk', '10 unidades', '6 pcs'
    (_NUM + r"\s*(?:pack|pk|pcs|pzas|piezas|unidades|uds|units|count)\b", "pk"),
)
UNIT_SUFFIXES: tuple[str, ...] = tuple(sorted({unit for _, unit in UNIT_RULES}))

# A token that is a number with a canonical unit, e.g. ``55in`` or ``2.5kg``.
UNIT_TOKEN = r"^\d+(?:\.\d+)?(?:" + "|".join(sorted(UNIT_SUFFIXES, key=len, reverse=True)) + r")$"

# Title words that say "this is a screen", which is when a diagonal in cm is an inch size.
SCREEN_WORDS = r"\b(?:tv|televisor|television|smart\s*tv|monitor|pantalla|led|oled|qled)\b"

# A number with a canonical unit as ``normalize_units`` writes it, upper-cased ('64GB ').
_MEASURE = (
    r"\d+(?:\.\d+)?(?:"
    + "|".join(sorted((u.upper() for u in UNIT_SUFFIXES), key=len, reverse=True))
    + r")(?:\s|$)"
)

# --- model codes ----------------------------------------------------------------------

# A run of alphanumerics possibly joined by - / . _ (UN-55CU7000, MB739LL/A, 1EE0.052.02).
CODE_TOKEN = r"[A-Z0-9]+(?:[-/._][A-Z0-9]+)*"
# Compact tokens that look like a code but are a measure, a standard or an ordinal.
NOT_A_CODE = (
    r"^(?:\d+(?:"
    + "|".join(sorted((u.upper() for u in UNIT_SUFFIXES), key=len, reverse=True))
    + r"|P|I|K|X|G|T|TH|ST|ND|RD|PC|PCS|PK|PZ|PZAS|PACK|MS|DB|A|AH|MA|CH|D|FPS)"
    r"|(?:USB|HDMI|DDR|LPDDR|GDDR|WIFI|PS|MP|SATA|PCIE|RTX|GTX|DVB|H|X|V|IP|BT|RJ|AAA|AA|LTE|CAT)"
    r"\d{1,3}[A-Z]?|\d{1,4}X\d{1,4}[A-Z]*|(?:1080|720|480|2160|4320)[PI]|802\d*[A-Z]*|\d{1,2}IN\d{1,2})$"
)
# Short codes ('N96', 'D90', 'A15') are real model names, but only as letters + digits.
MIN_CODE_LEN = 3
MIN_KEY_LEN = 4  # shorter codes are too common to block on or to search inside titles


def fold(expr: pl.Expr) -> pl.Expr:
    """Lower-case and strip accents (NFKD + drop combining marks): 'Televisión' -> 'television'."""
    return expr.str.normalize("NFKD").str.replace_all(r"\p{Mn}+", "").str.to_lowercase()


def normalize_units(expr: pl.Expr) -> pl.Expr:
    """Fold and rewrite numbers and units only: '15,6"' -> '15.6in', '1.000 W' -> '1000w'."""
    text = (
        fold(expr)
        .str.replace_all("’", "'")
        .str.replace_all(r"(\d),(\d{3})\b", "${1}${2}")  # 10,000 -> 10000
        .str.replace_all(r"(\d),(\d{1,2})\b", "${1}.${2}")  # 15,6 -> 15.6
        .str.replace_all(r"(\d)\.(\d{3})\b", "${1}${2}")  # 1.000 -> 1000
    )
    for fraction, decimal in (("1/2", "5"), ("1/4", "25"), ("3/4", "75"), ("1/3", "33")):
        text = text.str.replace_all(r"(\d)[\s-]+" + fraction + r"\b", "${1}." + decimal)
    # '3-in-1', '2 en 1': a count of functions, not inches.
    text = text.str.replace_all(r"\b(\d{1,2})[\s-]*(?:in|en)[\s-]+(\d{1,2})\b", "${1}in${2}")
    # 'pack of 4', 'pack de 4', 'twin pack': a pack count ('4 pack' is a unit rule below)
    text = text.str.replace_all(
        r"\b(?:pack|set|caja|paquete|box) (?:of|de|x) ?(\d+)\b", "${1} pack"
    )
    text = text.str.replace_all(r"\btwin pack\b", "2 pack")
    for pattern, unit in UNIT_RULES:
        # (a closing quote after a model name, 'GDDR5"', is not inches)
        text = text.str.replace_all(
            STANDALONE + pattern.replace(r"\s*", r"[\s-]*", 1), "${1}${2}" + unit + " "
        )
    return text


def normalize_title(expr: pl.Expr) -> pl.Expr:
    """Fold a title and rewrite units, numbers and punctuation to canonical tokens.

    Decimal commas become points ('15,6' -> '15.6'), thousands separators go ('1.000 W' ->
    '1000w'), dashes and slashes inside alphanumeric codes are removed ('UN-55CU7000' ->
    'un55cu7000'), every unit spelling becomes a suffix ('55 pulgadas' -> '55in'), and all
    other punctuation becomes a space.
    """
    return _title_from_units(normalize_units(expr))


def _title_from_units(text: pl.Expr) -> pl.Expr:
    """``normalize_title`` after ``normalize_units`` (enrichment computes that once for
    both the title and the model codes)."""
    # Join model codes split by '-' or '/' ('un-55cu7000', 'kx-tg1032s', 'mb739ll/a',
    # 'mb15-blu') but not words with a number hyphenated on ('5-disc', '8-port').
    # Twice, because regex matches cannot overlap.
    for _ in range(2):
        text = text.str.replace_all(r"\b([a-z]{1,4})-([a-z]{0,3}\d)", "${1}${2}")
        text = text.str.replace_all(r"(\d)-([a-z]{1,3})\b", "${1}${2}")
        text = text.str.replace_all(r"(\d[a-z]*)/([a-z0-9]{1,3})\b", "${1}${2}")
    text = (
        text.str.replace_all(r"([a-z0-9])\+(\s|$)", "${1} plus${2}")  # 'a8+' -> 'a8 plus'
        .str.replace_all(r"[^a-z0-9.+\s]", " ")
        .str.replace_all(r"(^|[^0-9])\.", "${1} ")
        .str.replace_all(r"\.([^0-9]|$)", " ${1}")
        .str.replace_all(r"\.0+([a-z]|\s|$)", "${1}")  # 6.0 -> 6, 21.0cuft -> 21cuft
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return text


def _screen_inches(name_norm: pl.Expr) -> pl.Expr:
    """Screens sold by their diagonal in cm ('139 cm') get the equivalent inch token.

    Stores list the same TV as 55" at one and 139 cm at another; converting lets the two
    meet and lets a 50" vs 55" conflict show. Only for titles that say they are a screen
    and only for plausible diagonals (50-330 cm), so a 120 cm table stays a 120 cm table.
    """
    cm = name_norm.str.extract(r"\b(\d{2,3}(?:\.\d+)?)cm\b", 1).cast(pl.Float64)
    has_inch = name_norm.str.contains(r"\b\d+(?:\.\d+)?in\b")
    is_screen = name_norm.str.contains(SCREEN_WORDS) & cm.is_between(50, 330)
    inch_token = (cm / 2.54).round(0).cast(pl.Int64).cast(pl.String) + "in"
    without_cm = name_norm.str.replace(r"\b\d{2,3}(?:\.\d+)?cm\b", "").str.replace_all(r"\s+", " ")
    return (
        pl.when(is_screen & has_inch)
        .then(without_cm.str.strip_chars())
        .when(is_screen)
        .then((without_cm.str.strip_chars() + " " + inch_token).str.strip_chars())
        .otherwise(name_norm)
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


def normalize_code(expr: pl.Expr) -> pl.Expr:
    """Upper-case a model code and drop separators: 'un-55cu7000' -> 'UN55CU7000'."""
    return fold(expr).str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def code_stem(expr: pl.Expr) -> pl.Expr:
    """The code up to its last digit, without region / colour suffix.

    'UN55CU7000GXZS' -> 'UN55CU7000', so a store that drops the suffix still meets it.
    """
    return expr.str.replace(r"^(.*\d)[A-Z]+$", "${1}")


def _position_in_runs(keys: pl.Series) -> pl.Series:
    """0, 1, 2... within each run of equal consecutive keys (a window ``int_range().over()``
    without the window: ~20x faster on a million rows)."""
    values = keys.to_numpy()
    n = len(values)
    if n == 0:
        return pl.Series(values=np.empty(0, dtype=np.int64))
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return pl.Series(values=np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])))


def model_code_candidates(
    df: pl.DataFrame,
    text_cols: list[str],
    *,
    row_id: str = "__row",
    units_normalized: Collection[str] = (),
) -> pl.DataFrame:
    """Every code-like token of each row, ranked, as ``row_id, code, stem, rank`` rows.

    A code has letters and digits (or is a digit string of 5+), at least ``MIN_CODE_LEN``
    characters once separators are dropped, and is not a measure like '128GB' or '1080P'.
    Ranking prefers the store's model field, then mixed letter+digit codes, then longer
    ones, then the later in the title (stores append the code at the end).
    ``units_normalized`` names the text columns ``normalize_units`` already ran on.
    """
    parts = []
    for priority, col in enumerate(text_cols):
        text = pl.col(col) if col in units_normalized else normalize_units(pl.col(col))
        parts.append(
            select_streamed(
                df.filter(pl.col(col).is_not_null()),  # (a store's model field often is)
                pl.col(row_id),
                text.str.to_uppercase()
                # a measure joined on is not part of the code: 'DTSE9G2/64GB' -> 'DTSE9G2'
                .str.replace_all(r"[-/._](" + _MEASURE + r")", " ${1}")
                .str.extract_all(CODE_TOKEN)
                .alias("raw"),
            )
            .with_columns(pl.lit(priority).alias("source"))
            .explode("raw")
        )
        parts[-1] = parts[-1].with_columns(_position_in_runs(parts[-1][row_id]).alias("position"))
    # one streamed pass: normalize, describe, filter and grade every token
    tokens = pl.concat(parts).lazy().drop_nulls("raw")
    tokens = tokens.with_columns(code=normalize_code(pl.col("raw"))).with_columns(
        has_digit=pl.col("code").str.contains(r"\d"),
        has_alpha=pl.col("code").str.contains(r"[A-Z]"),
        n_digits=pl.col("code").str.count_matches(r"\d"),
        length=pl.col("code").str.len_chars(),
    )
    mixed = pl.col("has_digit") & pl.col("has_alpha")
    # Digit-only codes (part numbers like '3730001') but not '10/100' or '2-1/2'.
    long_number = ~pl.col("has_alpha") & (pl.col("length") >= 5) & ~pl.col("raw").str.contains("/")
    tokens = tokens.filter(
        (pl.col("length") >= MIN_CODE_LEN)
        & (pl.col("length") <= 24)
        & (mixed | long_number)
        & ~pl.col("code").str.contains(NOT_A_CODE)
        # Decimal numbers with units ('2.5KG') are not codes, nor are words with a small
        # number hyphenated on ('8-PORT', '2-1/5-CUBIC-FOOT').
        & ~pl.col("raw").str.contains(r"^\d+\.\d+[A-Z]{0,3}$")
        & ~(
            (pl.col("n_digits") <= 3)
            & pl.col("raw").str.contains(r"(?:^|[-/._])[A-Z]{4,}(?:$|[-/._])")
        )
    )
    tokens = tokens.with_columns(
        stem=code_stem(pl.col("code")),
        quality=(
            mixed.cast(pl.Int32) * 4
            + (pl.col("n_digits") >= 2).cast(pl.Int32) * 2
            + (pl.col("length") >= 6).cast(pl.Int32)
        ),
    )
    ranked = (
        tokens.collect(engine="streaming")
        .sort(
            [row_id, "source", "quality", "length", "position"],
            descending=[False, False, True, True, True],
        )
        .unique([row_id, "code"], keep="first", maintain_order=True)
    )
    return ranked.with_columns(_position_in_runs(ranked[row_id]).alias("rank")).select(
        row_id, "code", "stem", "rank"
    )


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
    words = words.with_columns(_position_in_runs(words[row_id]).alias("pos"))
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


def enrich_listings(df: pl.DataFrame) -> pl.DataFrame:
    """Add or overwrite ``name_norm``, ``brand``, ``model_code``, ``model_codes`` (every
    code found, best first, space-separated) and ``category``.

    Input: raw listing columns (``retailer``, ``sku``, ``name`` and optionally ``brand``,
    ``model``, ``category``; any may be null). Output: the same rows in the same order.
    The brand comes from the store's brand field when present, otherwise from the title
    (see ``infer_brand_vocabulary``); the model code from the store's model field when it
    holds one, otherwise from the title.
    """
    row_id = "__row"
    base = df.with_row_index(row_id)
    added = [c for c in ("brand", "model", "category", "model_code") if c not in df.columns]
    base = base.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in added)
    # The folded title is materialised first: ``_screen_inches`` reads it several times,
    # and as one nested expression Polars would re-run the whole regex chain each time.
    base = with_columns_streamed(
        base, normalize_units(pl.col("name").fill_null("")).alias("__name_units")
    )
    base = with_columns_streamed(base, _title_from_units(pl.col("__name_units")).alias("name_norm"))
    base = with_columns_streamed(
        base,
        _screen_inches(pl.col("name_norm")).alias("name_norm"),
        normalize_brand(pl.col("brand").cast(pl.String)).alias("__brand_field"),
        fold(pl.col("category").cast(pl.String))
        .str.split(">")
        .list.last()
        .str.replace_all(r"[^a-z0-9+\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .alias("__category"),
    )
    vocab = infer_brand_vocabulary(base["name_norm"], base["__brand_field"])
    inferred = infer_brand_from_title(base, vocab, row_id=row_id)
    code_src = base.select(
        row_id,
        pl.coalesce(pl.col("model").cast(pl.String), pl.col("model_code").cast(pl.String)).alias(
            "__model_field"
        ),
        "__name_units",
    )
    codes = model_code_candidates(
        code_src,
        ["__model_field", "__name_units"],
        row_id=row_id,
        units_normalized={"__name_units"},
    )
    ranked = codes.group_by(row_id).agg(
        pl.col("code").sort_by("rank").first().alias("__code"),
        pl.col("code").sort_by("rank").str.join(" ").alias("model_codes"),
    )
    out = (
        base.join(inferred, on=row_id, how="left")
        .join(ranked, on=row_id, how="left")
        .sort(row_id)
        .with_columns(
            brand=pl.coalesce("__brand_field", "brand_inferred"),
            model_code=pl.col("__code"),
            model_codes=pl.col("model_codes").fill_null(""),  # '' = looked, found none
            category=pl.when(pl.col("__category").str.len_chars() > 0)
            .then(pl.col("__category"))
            .otherwise(None),
        )
    )
    drop = [row_id, "__name_units", "__brand_field", "brand_inferred", "__code", "__category"]
    return out.drop(drop + [c for c in added if c not in ("brand", "category", "model_code")])


def _stored_or_extracted_codes(base: pl.DataFrame) -> pl.DataFrame:
    """``idx, code, rank`` for every listing: the ``model_codes`` normalisation stored, or,
    for listings without them (built by hand, or from before they were stored), codes
    extracted from ``model_code`` and ``name`` now."""
    stored = pl.col("model_codes").is_not_null() if "model_codes" in base.columns else pl.lit(False)
    known = base.filter(stored)
    have = (
        known.select("idx", pl.col("model_codes").str.split(" ").alias("code"))
        .explode("code")
        .filter(pl.col("code").str.len_chars() > 0)
    )
    have = have.with_columns(_position_in_runs(have["idx"]).alias("rank"))
    missing = base.filter(~stored).select("idx", "model_code", "name")
    extracted = model_code_candidates(missing, ["model_code", "name"], row_id="idx").select(
        "idx", "code", "rank"
    )
    return pl.concat([have.cast({"rank": pl.Int64}), extracted.cast({"rank": pl.Int64})])


def matching_records(listings: pl.DataFrame) -> pl.DataFrame:
    """The matcher's working frame: one row per listing with an integer ``idx``.

    Adds every code candidate (``codes``) and its stem (``stems``) as lists, the price used
    for comparisons (offer, else list, else card) and ``text``, the string the TF-IDF
    blocker and the cosine feature read: the normalised title plus the compact codes, so
    'UN-55CU7000' and 'UN55CU7000GXZS' share most of their n-grams. A ``description``
    column is passed through when the listings have one (null otherwise).
    """
    base = listings.with_row_index("idx").with_columns(pl.col("idx").cast(pl.Int64))
    for col in ("name_norm", "brand", "model_code", "category", "name", "description"):
        if col not in base.columns:
            base = base.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    for col in ("price_offer", "price_list", "price_card"):
        if col not in base.columns:
            base = base.with_columns(pl.lit(None, dtype=pl.Int64).alias(col))
    codes = _stored_or_extracted_codes(base)
    stems = codes.with_columns(stem=code_stem(pl.col("code"))).filter(
        (pl.col("stem") != pl.col("code"))
        & (pl.col("stem").str.len_chars() >= MIN_KEY_LEN)
        & pl.col("stem").str.contains(r"[A-Z]")
    )
    code_lists = codes.group_by("idx").agg(pl.col("code").sort_by("rank").alias("codes"))
    stem_lists = stems.group_by("idx").agg(pl.col("stem").unique().sort().alias("stems"))
    empty = pl.lit([], dtype=pl.List(pl.String))
    return (
        base.join(code_lists, on="idx", how="left")
        .join(stem_lists, on="idx", how="left")
        .sort("idx")
        .with_columns(
            pl.col("codes").fill_null(empty),
            pl.col("stems").fill_null(empty),
            pl.coalesce(
                pl.when(pl.col("price_offer") > 0).then(pl.col("price_offer")),
                pl.when(pl.col("price_list") > 0).then(pl.col("price_list")),
                pl.when(pl.col("price_card") > 0).then(pl.col("price_card")),
            )
            .cast(pl.Float64)
            .alias("price"),
            pl.col("name_norm").fill_null(""),
        )
        .with_columns(
            text=pl.concat_str(
                [pl.col("name_norm"), pl.col("codes").list.join(" ").str.to_lowercase()],
                separator=" ",
            )
        )
        .select(
            "idx",
            "retailer",
            "sku",
            "name",
            "name_norm",
            "brand",
            "model_code",
            "category",
            "price",
            "codes",
            "stems",
            "text",
            pl.col("description").cast(pl.String),
        )
    )
