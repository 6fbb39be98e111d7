"""The vocabulary of ``sources.yaml``: the strict base of every section, the record fields a
mapping may fill, and the expressions (JMESPath, CSS) checked when the file is loaded."""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

import jmespath
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Record fields a mapping may fill. ``seller_id`` only feeds the first-party rule.
MAPPABLE_FIELDS: tuple[str, ...] = (
    "sku", "product_id", "variant", "url", "name", "brand", "model", "ean", "category",
    "price_list", "price_offer", "price_card", "card_program", "currency", "in_stock",
    "stock_qty", "seller", "seller_id", "is_first_party", "condition", "image_urls",
)  # fmt: skip
FieldName = Literal[
    "sku", "product_id", "variant", "url", "name", "brand", "model", "ean", "category",
    "price_list", "price_offer", "price_card", "card_program", "currency", "in_stock",
    "stock_qty", "seller", "seller_id", "is_first_party", "condition", "image_urls",
]  # fmt: skip
Tier = Literal["critical", "important", "tracking"]


def _check_jmespath(expression: str) -> str:
    """Compile once at load time so a typo fails the config, not the 3 a.m. scrape."""
    try:
        jmespath.compile(_fill_templates(expression))
    except jmespath.exceptions.JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"invalid JMESPath {expression!r}: {reason}") from None
    return expression


def _check_css(spec: str) -> str:
    from arbx_dagster.ingestion.extract import CssSpec

    CssSpec.parse(spec)  # raises ValueError with the reason
    return spec


def _fill_templates(expression: str) -> str:
    return re.sub(r"\{(sku|product_id)\}", "x", expression)


JmesPath = Annotated[str, AfterValidator(_check_jmespath)]
Css = Annotated[str, AfterValidator(_check_css)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]


class ConfigModel(BaseModel):
    """A section of ``sources.yaml``: unknown keys are errors; values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a URL template fills."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}
