"""Folded titles: accents, numbers and units, model codes joined, punctuation.

Two stores rarely write a title the same way ('Smart TV Samsung 55" UN55CU7000GXZS' vs
'TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000'), so every spelling of a measure becomes
one token (``55in``, ``128gb``, ``10kg``), decimal commas and thousands separators are
unified, codes split by a dash or a slash are joined and other punctuation becomes a
space. Polars expressions only: they run on millions of listings without Python loops.
"""

from __future__ import annotations

import polars as pl

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
    # '3-in-1', '2 en 1': a count of functions, not inches (but '13in 2.5ghz' is a size
    # and a speed: neither number may be part of a decimal or glued to a unit).
    text = text.str.replace_all(
        r"(^|[^0-9.])(\d{1,2})[\s-]*(?:in|en)[\s-]+(\d{1,2})([^0-9a-z.]|$)", "${1}${2}in${3}${4}"
    )
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
    return title_from_units(normalize_units(expr))


def title_from_units(text: pl.Expr) -> pl.Expr:
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
        .str.replace_all(r"(\d\.\d*[1-9])0+([a-z]|\s|$)", "${1}${2}")  # 2.70ghz -> 2.7ghz
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return text


def screen_inches(name_norm: pl.Expr) -> pl.Expr:
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
