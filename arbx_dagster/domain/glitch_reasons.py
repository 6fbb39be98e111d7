"""The ``reason`` text of a glitch: what it was judged against, on what evidence, and what
most likely went wrong."""

from __future__ import annotations

import math

from arbx_dagster.domain.glitch_kinds import SCALE_TOLERANCE
from arbx_dagster.domain.money import currency, format_amount

_TYPE_TEXT = {
    "pack_size": "likely a pack sold at the unit price (x{pack})",
    "digit_slip": "likely a lost digit (x{factor})",
    "thousands": "likely entered in thousands of CLP (x1000)",
    "currency": "likely typed in US dollars",
    "implausible": "no real CLP price is this low",
    "deep_discount": "far below every reference",
}
_AGAINST = {
    "history": "its own history",
    "history+stores": "its own history",
    "list price": "its own list price",
}
_EVIDENCE_TEXT = {
    "history": "its own history",
    "history+stores": "its own history and the other stores",
    "stores": "the other stores (little history of its own)",
    "stores+list price": "the other stores and its own crossed-out list price "
    "(little history of its own)",
    "list price": "its own crossed-out list price",
    "shelf floor": "no shelf price is under {floor}",
}


def glitch_reason(
    buy_price_type: str,
    buy_price: int,
    ref_price: int,
    ref_retailer: str | None,
    evidence: str,
    common_price: int | None,
    recent_price: int | None,
    last_price: int | None,
    history_days: int | None,
    others_retailer: str | None,
    others_price: int | None,
    event_baseline: int | None,
    glitch_type: str,
    pack: int | None,
    list_price: int | None = None,
    *,
    code: str = "CLP",
) -> str:
    def clp(amount: int | None) -> str:  # amounts in the market's currency
        return format_amount(amount, code)

    pct = 100 * buy_price / ref_price if ref_price else 0.0
    against = ref_retailer or _AGAINST.get(evidence, "the best reference known")
    # The own reference capped by a list price the store lowered (glitches.py): say so.
    from_history = ref_retailer is None and evidence.startswith("history")
    if from_history and list_price == ref_price and ref_price < (common_price or ref_price):
        against = "its list price, cut below its history"
    parts = [
        f"{buy_price_type} {clp(buy_price)} is {pct:.1f} % of {clp(ref_price)} ({against})",
        "judged on " + _EVIDENCE_TEXT[evidence].format(floor=clp(currency(code).shelf_floor)),
    ]
    if common_price is not None and history_days:
        parts.append(
            f"90-day median {clp(common_price)}, last 7 closes {clp(recent_price)}, "
            f"last close {clp(last_price)} ({history_days} d of history)"
        )
    if others_price is not None:
        parts.append(f"{others_retailer} {clp(others_price)}")
    if list_price is not None:
        parts.append(f"list price {clp(list_price)}")
    if event_baseline is not None:
        parts.append(f"30-day pre-event median {clp(event_baseline)}")
    factor = 10 if abs(math.log(buy_price * 10 / ref_price)) <= SCALE_TOLERANCE else 100
    parts.append(_TYPE_TEXT[glitch_type].format(pack=pack, factor=factor))
    return "; ".join(parts)


# The columns :func:`glitch_reason` reads, in the order of its parameters.
REASON_COLUMNS = (
    "buy_price_type",
    "buy_price",
    "ref_price",
    "ref_retailer",
    "evidence",
    "common_price",
    "recent_price",
    "last_price",
    "history_days",
    "others_retailer",
    "others_price",
    "event_baseline",
    "glitch_type",
    "pack",
    "list_price",
)


__all__ = ["REASON_COLUMNS", "glitch_reason"]
