"""Business settings: ``enabled_retailers`` names only retailers the sources provide."""

from __future__ import annotations

import pytest

from arbx_dagster.domain.config import Thresholds, coerce_setting

PROVIDED = ("abt", "buy", "falabella")


def test_enabled_retailers_accepts_retailers_the_sources_provide() -> None:
    chosen = coerce_setting("enabled_retailers", "Buy, abt", known_retailers=PROVIDED)
    assert chosen == ("buy", "abt")


def test_enabled_retailers_rejects_a_retailer_no_source_provides_and_lists_the_provided() -> None:
    with pytest.raises(ValueError) as rejected:
        coerce_setting("enabled_retailers", "abt,walmart,lider", known_retailers=PROVIDED)
    message = str(rejected.value)
    assert "lider, walmart" in message  # what is wrong
    assert "abt, buy, falabella" in message  # what may be given instead
    assert "sources.yaml" in message


def test_stored_settings_are_read_whatever_the_sources_say_now() -> None:
    """A source disabled later must not make the stored settings unreadable."""
    stored = Thresholds(enabled_retailers=("walmart",)).to_rows()
    assert Thresholds.from_rows(stored).enabled_retailers == ("walmart",)
