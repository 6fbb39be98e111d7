"""Webhook prices are whole CLP: JSON integers, which JSON also writes as 299990.0."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from arbx_dagster.service.webhooks import PriceWebhook, WebhookObservation


def observation(price: object) -> WebhookObservation:
    return WebhookObservation(
        retailer="ripley", sku="R-1", observed_at=datetime.now(UTC), price_offer=price
    )


@pytest.mark.parametrize("price", [299_990, 299_990.0])
def test_whole_pesos_are_accepted_as_integers(price: object) -> None:
    accepted = observation(price).price_offer
    assert accepted == 299_990 and type(accepted) is int


@pytest.mark.parametrize("price", ["299990", True, 299_990.5, -1, 10_000_000_001])
def test_text_booleans_fractions_and_out_of_range_prices_are_refused(price: object) -> None:
    with pytest.raises(ValidationError):
        observation(price)


def test_the_published_schema_carries_the_price_bounds() -> None:
    schema = PriceWebhook.model_json_schema()["$defs"]["WebhookObservation"]
    integer = schema["properties"]["price_offer"]["anyOf"][0]
    assert integer == {"type": "integer", "minimum": 0, "maximum": 10_000_000_000}
