"""Listings: which stores carry each product, and how each store presents it.

This is where most of the realism a matcher has to cope with lives:

* 1-3 stores per product (most 2-3); sometimes through a marketplace seller instead of the
  store itself. One listing per product and store.
* Each store has its own title templates per category and its own habits: Falabella often
  leaves the brand out of the title (it shows it apart, in capitals), Ripley writes many
  titles in capitals, Paris prefers "Pulgadas" / "Lts". Model codes appear with or without
  their region/colour suffix (UN55CU7000GXZS / UN55CU7000), with or without dashes
  (KD-55X77L / KD55X77L, UN-55CU7000). Accents are sometimes dropped. Marketplace sellers
  use Title Case or lower case and add "Nuevo", "Sellado", "Envío Gratis"...
* The ``brand`` field is in the store's own casing and sometimes empty; ``model`` (part
  number) and ``ean`` are rarely exposed.
* Store identifiers: Falabella 8-digit numeric SKUs under a product id; Ripley
  ``2000xxxxxxxxx`` (marketplace ``MPMxxxxxxxxxxx``) with a ``...P`` parent id; Paris
  ``xxxxxx999`` (marketplace ``MKxxxxxxxx``). Phones and tablets group their capacities under
  one product id, as the stores' variant pickers do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import polars as pl

from arbx_dagster.domain.simulator.calendar import CRAWL_MINUTES
from arbx_dagster.domain.simulator.catalogue_data import ALNUM, CATEGORIES
from arbx_dagster.domain.simulator.text import (
    encode,
    fields,
    punctuation_of,
    render,
    slug,
    squash,
    strip_accents,
)

STORE_NAMES = {"falabella": "Falabella", "ripley": "Ripley", "paris": "Paris"}
CARD_PROGRAMS = {"falabella": "CMR", "ripley": "Tarjeta Ripley", "paris": "Tarjeta Cencosud"}
CARD_SHARE = {"falabella": 0.55, "ripley": 0.45, "paris": 0.35}  # first-party listings
FULL_CODE_SHARE = {"falabella": 0.45, "ripley": 0.35, "paris": 0.2}
CARRIER_WEIGHTS = (0.2, 0.35, 0.45)  # 1, 2 or 3 stores
DASHED_CATEGORIES = ("televisores", "refrigeradores", "lavadoras", "microondas")
MARKETPLACE_SELLERS = (
    "TecnoMundo SpA",
    "Importadora Andina",
    "ElectroSur Ltda",
    "Distribuidora Maipú",
    "MegaStore Chile",
    "DigitalPoint",
    "Comercial Los Andes",
    "Tienda Gamer CL",
    "Hogar y Más",
    "Electro Outlet",
    "SmartBuy Chile",
    "Comercializadora Pacífico",
)
JUNK = (
    "Nuevo",
    "Original",
    "Sellado",
    "Garantía Oficial",
    "Envío Gratis",
    "Boleta o Factura",
    "Oferta!",
    "Caja Sellada",
    "Stock Inmediato",
)
URL_FORMATS = {
    "falabella": "https://www.falabella.com/falabella-cl/product/{product_id}/{slug_case}/{sku}",
    "ripley": "https://simple.ripley.cl/{slug_lower}-{sku}",
    "paris": "https://www.paris.cl/{slug_lower}-{sku}.html",
}
IMAGE_FORMATS = {
    "falabella": "https://media.falabella.com/falabellaCL/{sku}_1/w=800,h=800,fit=pad",
    "ripley": "https://rimage.ripley.cl/home.ripley/Attachment/WOP/1/{sku}/full_image-1.jpg",
    "paris": (
        "https://www.paris.cl/dw/image/v2/BCHW_PRD/on/demandware.static/-/"
        "Sites-cencosud-master-catalog/default/images/imagenes-productos/{sku}-0001-001.jpg"
    ),
}


def carry_products(
    products: pl.DataFrame,
    retailers: tuple[str, ...],
    rng: np.random.Generator,
    *,
    days: int,
    marketplace_rate: float,
    refurbished_rate: float,
    late_listing_rate: float,
) -> pl.DataFrame:
    """One row per listing, in (product, retailer) order, with every text field rendered."""
    product_idx, store = _assign_stores(products.height, len(retailers), rng)
    n = product_idx.size
    first_party = rng.random(n) >= marketplace_rate
    refurbished = ~first_party & (rng.random(n) < refurbished_rate)
    late = rng.random(n) < late_listing_rate
    frame = (
        products.select(LISTING_PRODUCT_COLUMNS)[product_idx]
        .rename({"brand": "brand_name"})
        .with_columns(
            listing_idx=pl.Series(np.arange(n, dtype=np.int64)),
            product_idx=pl.Series(product_idx),
            retailer=pl.Series(retailers, dtype=pl.String).gather(store),
            is_first_party=pl.Series(first_party),
            condition=pl.when(pl.lit(pl.Series(refurbished)))
            .then(pl.lit("refurbished"))
            .otherwise(pl.lit("new")),
            start_day=pl.Series(
                np.where(late & (days > 1), rng.integers(1, max(days // 2, 2), n), 0)
            ),
            crawl_minute=pl.Series(rng.integers(0, CRAWL_MINUTES, n)),
        )
    )
    frame = _with_identifiers(frame, rng)
    frame = frame.with_columns(_titles(products, frame, rng))
    return _with_store_fields(frame, rng)


# Product columns every listing keeps (titles are rendered from a separate, wider gather).
LISTING_PRODUCT_COLUMNS = (
    "true_product_id",
    "category",
    "brand",
    "line_id",
    "code",
    "code_full",
    "variant_label",
    "ean",
)


def _assign_stores(
    n_products: int, n_stores: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(product index, store index) of every listing, product by product."""
    weights = np.array(CARRIER_WEIGHTS[:n_stores])
    carriers = rng.choice(np.arange(1, n_stores + 1), size=n_products, p=weights / weights.sum())
    rank = np.argsort(np.argsort(rng.random((n_products, n_stores)), axis=1), axis=1)
    product_idx, store = np.nonzero(rank < carriers[:, None])
    return product_idx.astype(np.int64), store.astype(np.int64)


def _unique(rng: np.random.Generator, count: int, low: int, high: int) -> np.ndarray:
    return low + rng.choice(high - low, size=count, replace=False)


def _text(numbers: np.ndarray, width: int = 0) -> pl.Expr:
    return pl.lit(pl.Series(numbers, dtype=pl.Int64)).cast(pl.String).str.zfill(width)


def _with_identifiers(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Store SKUs and product ids in each store's format (unique within the store)."""
    groups = [
        ("falabella", None),
        ("ripley", True),
        ("ripley", False),
        ("paris", True),
        ("paris", False),
    ]
    ids: list[pl.DataFrame] = []
    for store, own in groups:  # a handful of formats
        selected = pl.col("retailer") == store
        if own is not None:
            selected &= pl.col("is_first_party") == own
        rows = (
            frame.select("listing_idx", "retailer", "is_first_party")
            .filter(selected)
            .select("listing_idx")
        )
        ids.append(rows.with_columns(**_store_ids(store, own, rows.height, rng)))
    frame = frame.hstack(pl.concat(ids).sort("listing_idx").drop("listing_idx"))
    grouped = pl.col("category").is_in([c.key for c in CATEGORIES if c.grouped])
    # Phones and tablets: sibling capacities share the product id of the line's first listing.
    parents = (
        frame.filter(grouped)
        .group_by("retailer", "is_first_party", "line_id", maintain_order=True)
        .agg(parent=pl.col("product_id").first())
    )
    return (
        frame.join(
            parents, on=["retailer", "is_first_party", "line_id"], how="left", maintain_order="left"
        )
        .with_columns(
            product_id=pl.coalesce("parent", "product_id"),
            variant=pl.when(grouped).then(pl.col("variant_label")),
        )
        .drop("parent")
    )


def _store_ids(
    store: str, first_party: bool | None, count: int, rng: np.random.Generator
) -> dict[str, pl.Expr]:
    """``sku`` and ``product_id`` expressions for ``count`` new listings of one store format."""
    if store == "falabella":  # numeric, one number space for the store and its sellers
        numbers = _unique(rng, count, 10_000_001, 99_999_999)
        return {"sku": _text(numbers), "product_id": _text(numbers - 1)}
    if store == "ripley":
        sku = (
            pl.concat_str([pl.lit("2000"), _text(_unique(rng, count, 0, 10**9), 9)])
            if first_party
            else pl.concat_str([pl.lit("MPM"), _text(_unique(rng, count, 0, 10**8), 11)])
        )
        return {"sku": sku, "product_id": pl.concat_str([sku, pl.lit("P")])}
    if first_party:  # Paris: "<stem>999", the stem being the product id
        high = 10 ** max(6, len(str(count * 2)))
        stem = _text(_unique(rng, count, high // 10, high))
        return {"sku": pl.concat_str([stem, pl.lit("999")]), "product_id": stem}
    code = pl.lit(encode(_unique(rng, count, 0, len(ALNUM) ** 8), ALNUM, 8))
    sku = pl.concat_str([pl.lit("MK"), code])
    return {"sku": sku, "product_id": sku}


def _titles(products: pl.DataFrame, listings: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    """Each listing's title: one of its store's templates for the category, then the noise."""
    templates = {(c.key, store): t for c in CATEGORIES for store, t in c.titles.items()}
    counts = {f"{c}|{store}": len(t) for (c, store), t in templates.items()}
    key = pl.concat_str([pl.col("category"), pl.col("retailer")], separator="|")
    text = _with_draws(
        listings.select(
            "listing_idx", "product_idx", "category", "retailer", "is_first_party", "condition"
        ),
        rng,
        "form",
        "dash",
        "brand_case",
        "template",
        "style",
        "accents",
        "case",
        "junk",
    ).with_columns(
        _choice=(pl.col("_template") * key.replace_strict(counts, return_dtype=pl.Float64))
        .floor()
        .cast(pl.Int64)
    )
    forms = _code_and_brand_forms(products)
    rendered: list[pl.DataFrame] = []
    for (category, store, choice), rows in text.partition_by(
        "category", "retailer", "_choice", as_dict=True
    ).items():
        template = templates[(category, store)][choice]
        used = fields(template)
        wanted = sorted(used - {"brand", "code"})
        written: dict[str, pl.Expr] = {}
        if "brand" in used:
            wanted += _BRAND_FORMS
            written["brand"] = _brand_as_written()
        if "code" in used:
            wanted += _CODE_FORMS
            written["code"] = _code_as_written()
        values = forms.select(wanted)[rows["product_idx"].to_numpy()]
        rows = rows.hstack(values).with_columns(**written)
        title = render(template)
        if any(rows[name].str.len_bytes().min() == 0 for name in used):
            title = squash(title)  # an empty field left a double space
        rendered.append(rows.select(*_NOISE_COLUMNS, title=title))
    return _title_noise(pl.concat(rendered))["name"]


_BRAND_FORMS = ("brand", "BRAND")
_CODE_FORMS = (
    "code_plain",
    "code_nodash",
    "code_dashed",
    "full_plain",
    "full_nodash",
    "full_dashed",
)
_NOISE_COLUMNS = (
    "listing_idx",
    "retailer",
    "is_first_party",
    "condition",
    "_style",
    "_accents",
    "_case",
    "_junk",
)


def _code_and_brand_forms(products: pl.DataFrame) -> pl.DataFrame:
    """Per product, the ways stores write its model code and brand (cheaper than per listing).

    Dashes come and go (KD-55X77L / KD55X77L); a dash after the letter prefix of a sized model
    code (UN-55CU7000, RT-38CG6420) only appears where codes carry the size.
    """
    sized = pl.col("category").is_in(list(DASHED_CATEGORIES))

    def forms(code: pl.Expr, prefix: str) -> dict[str, pl.Expr]:
        return {
            f"{prefix}_plain": code,
            f"{prefix}_nodash": code.str.replace_all("-", "", literal=True),
            f"{prefix}_dashed": pl.when(sized)
            .then(code.str.replace(r"^([A-Z]{2,3})(\d)", "$1-$2"))
            .otherwise(code),
        }

    return products.with_columns(
        **forms(pl.col("code"), "code"),
        **forms(pl.col("code_full"), "full"),
        BRAND=pl.col("brand").str.to_uppercase(),
    )


def _with_draws(frame: pl.DataFrame, rng: np.random.Generator, *names: str) -> pl.DataFrame:
    """Uniform random columns ``_<name>``, one draw per listing, in a fixed order."""
    return frame.with_columns(**{f"_{name}": pl.Series(rng.random(frame.height)) for name in names})


def _draw_names(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("_")]


def _by_store(shares: dict[str, float]) -> pl.Expr:
    return pl.col("retailer").replace_strict(shares, default=0.0, return_dtype=pl.Float64)


def _brand_as_written() -> pl.Expr:
    return pl.when(pl.col("_brand_case") < 0.2).then(pl.col("BRAND")).otherwise(pl.col("brand"))


def _code_as_written() -> pl.Expr:
    """The model code as a store types it: suffix or not, dashes dropped or added, case."""
    full = pl.col("_form") < _by_store(FULL_CODE_SHARE)
    dash = pl.col("_dash")
    return (
        pl.when(full & (dash < 0.2))
        .then(pl.col("full_nodash"))
        .when(full & (dash < 0.27))
        .then(pl.col("full_dashed"))
        .when(full)
        .then(pl.col("full_plain"))
        .when(dash < 0.2)
        .then(pl.col("code_nodash"))
        .when(dash < 0.27)
        .then(pl.col("code_dashed"))
        .otherwise(pl.col("code_plain"))
    )


def _title_noise(titles: pl.DataFrame) -> pl.DataFrame:
    """How stores and sellers alter a template title; returns ``listing_idx, name`` in order.

    Stores sometimes drop accents and Ripley writes many titles in capitals. Marketplace
    sellers add sales words, drop accents more often and use Title Case, lower or UPPER case.
    Refurbished listings say so. Each change runs only on the rows it applies to.
    """
    seller = ~pl.col("is_first_party")
    case = pl.col("_case")
    junk = pl.lit(pl.Series(JUNK, dtype=pl.String)).gather(
        (pl.col("_junk") * len(JUNK)).floor().cast(pl.Int64)
    )
    refurbished = pl.col("condition") == "refurbished"
    titles = titles.with_columns(
        title=pl.when(refurbished & (pl.col("_style") < 0.5))
        .then(pl.concat_str([pl.lit("Reacondicionado "), pl.col("title")]))
        .when(refurbished)
        .then(pl.concat_str([pl.col("title"), pl.lit(" (Reacondicionado)")]))
        .otherwise(pl.col("title")),
    ).with_columns(
        title=pl.when(seller & (pl.col("_style") > 0.5))
        .then(pl.concat_str([pl.col("title"), junk], separator=" "))
        .otherwise(pl.col("title")),
        _style=pl.when(seller & (case < 0.35))
        .then(pl.lit("title"))
        .when(seller & (case < 0.45))
        .then(pl.lit("lower"))
        .when(seller & (case < 0.6))
        .then(pl.lit("upper"))
        .when(~seller & (case < pl.when(pl.col("retailer") == "ripley").then(0.45).otherwise(0.04)))
        .then(pl.lit("upper"))
        .otherwise(pl.lit("")),
    )
    titles = _where(
        titles, pl.col("_accents") < pl.when(seller).then(0.45).otherwise(0.15), strip_accents
    )
    titles = _where(titles, pl.col("_style") == "upper", lambda t: t.str.to_uppercase())
    titles = _where(titles, pl.col("_style") == "lower", lambda t: t.str.to_lowercase())
    titles = _where(titles, pl.col("_style") == "title", lambda t: t.str.to_titlecase())
    return titles.select("listing_idx", name=pl.col("title")).sort("listing_idx")


def _where(
    frame: pl.DataFrame, condition: pl.Expr, change: Callable[[pl.Expr], pl.Expr]
) -> pl.DataFrame:
    """Apply ``change`` to the title of the rows meeting ``condition`` only (row order changes)."""
    hit = frame.filter(condition).with_columns(title=change(pl.col("title")))
    return pl.concat([frame.filter(~condition), hit])


def _with_store_fields(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Brand/model/EAN fields, category path, URLs, seller, card programme, listing rank."""
    frame = _with_draws(
        frame, rng, "brand_null", "brand_upper", "model", "ean", "card", "seller", "rank"
    )
    seller_names = pl.lit(pl.Series(MARKETPLACE_SELLERS, dtype=pl.String))
    frame = frame.with_columns(
        _seller_name=seller_names.gather(rng.integers(0, len(MARKETPLACE_SELLERS), frame.height))
    )
    own, store = pl.col("is_first_party"), pl.col("retailer")
    upper_share = (
        pl.when(store == "falabella").then(1.0).when(store == "ripley").then(0.4).otherwise(0.5)
    )
    paths = {f"{c.key}|{r}": p for c in CATEGORIES for r, p in c.paths.items()}
    frame = frame.with_columns(
        brand=pl.when(pl.col("_brand_null") < pl.when(own).then(0.05).otherwise(0.12))
        .then(None)
        .when(pl.col("_brand_upper") < upper_share)
        .then(pl.col("brand_name").str.to_uppercase())
        .otherwise(pl.col("brand_name")),
        model=pl.when(own & (pl.col("_model") < 0.05))
        .then(pl.col("code_full"))
        .when(own & (pl.col("_model") < pl.when(store == "ripley").then(0.05).otherwise(0.15)))
        .then(pl.col("code")),
        ean=pl.when(own & (pl.col("_ean") < 0.08)).then(pl.col("ean")),
        category_path=pl.concat_str([pl.col("category"), store], separator="|").replace_strict(
            paths
        ),
        has_card=pl.col("_card") < _by_store(CARD_SHARE) * pl.when(own).then(1.0).otherwise(0.4),
        seller=pl.when(own)
        .then(store.replace_strict(STORE_NAMES))
        .when(pl.col("_seller") < 0.2)
        .then(pl.concat_str([pl.lit("Tienda Oficial "), pl.col("brand_name")]))
        .otherwise(pl.col("_seller_name")),
        slug_case=slug(pl.col("name"), punctuation=_title_punctuation()),
    ).with_columns(slug_lower=pl.col("slug_case").str.to_lowercase())
    return frame.with_columns(
        card_program=store.replace_strict(CARD_PROGRAMS),
        url=_per_store(URL_FORMATS),
        image_urls=pl.concat_str([pl.lit('["'), _per_store(IMAGE_FORMATS), pl.lit('"]')]),
        listing_rank=pl.col("_rank").rank("ordinal").over("retailer", "category").cast(pl.Int32),
    ).drop("slug_case", "slug_lower", *_draw_names(frame))


@cache
def _title_punctuation() -> set[str]:
    """Every non-alphanumeric character a title can contain, from the data that makes titles."""
    texts = [*JUNK, "Reacondicionado ( )"]
    for category in CATEGORIES:
        texts += [*category.colors, *(t for group in category.titles.values() for t in group)]
        texts += [v.label for v in category.axis] + [
            a for v in category.axis for a in v.attrs.values()
        ]
        for brand in category.brands:
            texts.append(brand.name)
            for tier in brand.tiers:
                texts += [tier.name, tier.code, *tier.gens, *(tier.gen_codes or ()), *tier.sers]
                texts += [*tier.suffix, tier.part, *tier.attrs.values()]
    return punctuation_of(texts)


def _per_store(formats: dict[str, str]) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.String)
    for store, template in formats.items():
        expr = pl.when(pl.col("retailer") == store).then(render(template)).otherwise(expr)
    return expr
