"""Currencies: every price is an integer amount of its currency's minor unit.

CLP has no minor unit (a price is whole pesos); the two-decimal currencies count cents
(``$1,299.00`` is 129900). Prices, margins and cost settings stay integers everywhere, so
a warehouse holds one currency, the market's (the ``currency`` setting, CLP by default):
sources read prices in their own declared currency and rows in another one are
quarantined, never compared with the market's.

``max_plausible`` is the price above which a row is a parsing error rather than a real
consumer price (validator, data-quality checks). For CLP it is the ceiling seen in
practice for the Chilean stores (tens of millions); for the other currencies it is that
ceiling's order of magnitude (CLP 50 million is about USD 55,000) rounded up to a round
amount of the currency.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Currency:
    code: str  # ISO 4217
    minor_digits: int  # decimals of the minor unit: 0 for CLP, 2 for cents
    symbols: tuple[str, ...]  # signs stores print beside amounts (the code itself also counts)
    max_plausible: int  # in minor units
    # No shelf price is under this (CLP 100, about 10 US cents): below, a price is a mistake
    # with or without a reference.
    shelf_floor: int
    # Under this (CLP 1.000, about USD 1) a price with no recognisable slip is "implausible".
    implausible_below: int

    @property
    def minor_per_unit(self) -> int:
        return 10**self.minor_digits


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("CLP", 0, ("$", "CLP$"), 50_000_000, 100, 1_000),
        Currency("USD", 2, ("US$", "U$S", "$"), 10_000_000, 10, 100),  # 100,000.00
        Currency("EUR", 2, ("€",), 10_000_000, 10, 100),
        Currency("GBP", 2, ("£",), 10_000_000, 10, 100),
        Currency("CAD", 2, ("CA$", "C$", "$"), 10_000_000, 10, 100),
        Currency("AUD", 2, ("AU$", "A$", "$"), 10_000_000, 10, 100),
        Currency("MXN", 2, ("MX$", "$"), 200_000_000, 200, 2_000),  # 2,000,000.00
        Currency("BRL", 2, ("R$",), 50_000_000, 50, 500),  # 500,000.00
    )
}
DEFAULT_CURRENCY = "CLP"
# Units of account that are never a shop price in any of the currencies above.
OTHER_MARKERS: tuple[str, ...] = ("UF",)


def currency(code: object) -> Currency:
    """The currency of an ISO code (any case); ``ValueError`` naming the supported ones."""
    text = str(code).strip().upper() if code is not None else ""
    if text not in CURRENCIES:
        raise ValueError(f"currency must be one of {', '.join(CURRENCIES)} (got {code!r})")
    return CURRENCIES[text]


def currency_code(code: object) -> str:
    """``'usd'`` -> ``'USD'``; ``ValueError`` for a currency ArbX cannot read."""
    return currency(code).code


def max_plausible_price(code: str) -> int:
    """The plausible ceiling of a price in ``code``'s minor units."""
    return currency(code).max_plausible


def format_amount(amount: int | float | None, code: str = DEFAULT_CURRENCY) -> str:
    """An amount in ``code``'s minor units as its users read it: CLP as '$1.299.990'
    (Chilean thousands separator), the others with their code and decimals,
    184977 USD -> 'USD 1,849.77'."""
    if amount is None:
        return "—"
    unit = currency(code)
    if unit.minor_digits == 0 and unit.code == "CLP":
        return "$" + f"{round(amount):,}".replace(",", ".")
    return f"{unit.code} {amount / unit.minor_per_unit:,.{unit.minor_digits}f}"
