"""Run-time business settings (thresholds, costs, enabled retailers).

The warehouse's ``system_config`` table is the source of truth; this dataclass is its
typed, validated view with the defaults the product ships with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from arbx_dagster.domain.money import DEFAULT_CURRENCY, currency, currency_code
from arbx_dagster.domain.schema import RETAILER_NAME, RETAILERS

ALL_RETAILERS = ("all", "*")  # what ``enabled_retailers`` accepts for "every retailer"


@dataclass(frozen=True)
class Thresholds:
    # The market's currency: every price, margin and cost here is an integer amount of its
    # minor unit (whole CLP; cents for USD), whatever the setting's name says. Rows in
    # another currency are quarantined (domain/money.py).
    currency: str = DEFAULT_CURRENCY
    min_margin_clp: int = 10_000
    min_roi_pct: float = 8.0
    # Retailers whose listings are bought and compared; empty: every retailer the sources
    # provide (so a store added to sources.yaml counts without a second setting).
    enabled_retailers: tuple[str, ...] = ()
    # Whether a store-card-only price may be the buy price of a spread.
    include_card_prices: bool = False
    # Costs subtracted from the gross gap before margin and ROI.
    shipping_cost_clp: int = 0
    fee_pct: float = 0.0
    # Glitch severity by price / reference ratio (at or below).
    glitch_ratio_low: float = 0.4
    glitch_ratio_medium: float = 0.3
    glitch_ratio_high: float = 0.1
    # Alert levels the original system used.
    high_margin_clp: int = 50_000
    high_roi_pct: float = 20.0
    # A price older than this is neither bought nor compared (24 h tracking cadence + slack).
    max_price_age_hours: float = 26.0

    def to_rows(self) -> dict[str, str]:
        """Serialise each setting as JSON text, one row per key in ``system_config``."""
        rows = {f.name: json.dumps(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if not self.enabled_retailers:
            rows["enabled_retailers"] = json.dumps(ALL_RETAILERS[0])
        return rows

    @classmethod
    def from_rows(cls, rows: dict[str, str]) -> Thresholds:
        """Build from ``system_config`` rows, ignoring unknown keys and validating types."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, text in rows.items():
            if key in known:
                values[key] = coerce_setting(key, json.loads(text))
        return cls(**values)


# Money settings whose shipped default is an amount, per the minor units of the market's
# currency: CLP 10.000 is about USD 10, so a market in cents starts at 1.000 (10.00).
_MONEY_DEFAULTS_IN_CENTS = {"min_margin_clp": 1_000, "high_margin_clp": 5_000}
# Settings that are amounts in the market currency's minor units (named _clp historically;
# each is also accepted by its currency-neutral name).
MONEY_SETTINGS = ("min_margin_clp", "shipping_cost_clp", "high_margin_clp")
SETTING_ALIASES = {key.removesuffix("_clp"): key for key in MONEY_SETTINGS}


def setting_key(name: str) -> str:
    """The stored name of a setting: ``min_margin`` -> ``min_margin_clp``."""
    return SETTING_ALIASES.get(name, name)


def money_defaults(code: str) -> dict[str, int]:
    """The shipped money thresholds for a market in ``code`` (its minor units)."""
    if currency(code).minor_digits == 0:
        defaults = Thresholds()
        return {key: getattr(defaults, key) for key in _MONEY_DEFAULTS_IN_CENTS}
    return dict(_MONEY_DEFAULTS_IN_CENTS)


def rebased_money(thresholds: Thresholds, new_code: str) -> dict[str, int]:
    """Money settings to change when the market moves to ``new_code``: those still at the
    old currency's default take the new one's (a value someone chose is kept)."""
    old, new = money_defaults(thresholds.currency), money_defaults(new_code)
    return {k: new[k] for k, v in old.items() if getattr(thresholds, k) == v and new[k] != v}


def coerce_setting(key: str, value: Any, *, known_retailers: Collection[str] | None = None) -> Any:
    """Validate one setting's value; raise ``ValueError`` with a clear message.

    ``known_retailers``: the retailers the enabled sources provide (sources.yaml); when
    given, ``enabled_retailers`` may name only those. Stored settings are read without it,
    so a source disabled later does not make them unreadable."""
    defaults = Thresholds()
    if not hasattr(defaults, key):
        allowed = ", ".join(sorted(Thresholds().to_rows()))
        raise ValueError(f"unknown setting {key!r}; known settings: {allowed}")
    current = getattr(defaults, key)
    if key == "currency":
        return currency_code(value)
    if isinstance(current, tuple):
        if isinstance(value, str) and value.strip().lower() in ALL_RETAILERS:
            return ()
        items = value.split(",") if isinstance(value, str) else list(value)
        retailers = tuple(str(item).strip().lower() for item in items if str(item).strip())
        invalid = sorted(r for r in retailers if not RETAILER_NAME.match(r))
        if invalid or not retailers:
            examples = ",".join(sorted(known_retailers or RETAILERS))
            raise ValueError(
                f"{key} expects retailer names such as {examples} (or 'all'), got {value!r}"
            )
        if known_retailers is not None:
            unknown = sorted(set(retailers) - set(known_retailers))
            if unknown:
                raise ValueError(
                    f"{key}: no enabled source provides {', '.join(unknown)}; "
                    f"sources.yaml provides: {', '.join(sorted(known_retailers)) or 'none'}"
                )
        return retailers
    try:
        if isinstance(current, bool):
            text = str(value).strip().lower()
            if text not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError
            return text in {"true", "1", "yes"}
        result = int(value) if isinstance(current, int) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} expects {type(current).__name__}, got {value!r}") from None
    if result < 0:
        raise ValueError(f"{key} must not be negative, got {value!r}")
    return result
