"""Alert messages: the ones users know, in Chilean formatting."""

from __future__ import annotations

from arbx_dagster.alerts.messages import (
    opportunity_alert,
    pct,
    system_error_alert,
    watch_alert,
)

SPREAD = {
    "opportunity_id": "abc",
    "kind": "spread",
    "product_name": "Smart TV 55 QLED",
    "buy_retailer": "falabella",
    "buy_sku": "123",
    "buy_url": "https://www.falabella.com/falabella-cl/product/123",
    "buy_price": 1_299_990,
    "buy_price_type": "offer",
    "ref_retailer": "ripley",
    "ref_price": 1_499_990,
    "margin_clp": 200_000,
    "roi_pct": 15.384,
    "confidence": 0.82,
    "severity": None,
}


def test_a_new_spread_reads_in_chilean_pesos_and_decimal_commas():
    alert = opportunity_alert(SPREAD, "new_opportunity", [], improved=False)
    assert alert.title == "🎯 Nueva oportunidad: Smart TV 55 QLED"
    assert alert.body.splitlines() == [
        "Comprar en Falabella a $1.299.990 · referencia Ripley $1.499.990",
        "Margen $200.000 · ROI 15,4 % · confianza 82 %",
        "https://www.falabella.com/falabella-cl/product/123",
    ]
    assert alert.key == "abc"
    assert alert.data["margin_clp"] == 200_000


def test_high_margin_leads_and_other_badges_are_listed_once():
    alert = opportunity_alert(SPREAD, "high_margin", ["high_margin", "high_roi"], improved=False)
    assert alert.title == "💰 Margen alto $200.000: Smart TV 55 QLED"
    assert "📈 ROI alto" in alert.body
    assert "💰" not in alert.body
    roi = opportunity_alert(SPREAD | {"roi_pct": 35.25}, "high_roi", ["high_roi"], improved=True)
    assert roi.title == "📈 ROI alto 35,2 % (mejoró): Smart TV 55 QLED"


def test_a_glitch_says_possible_price_error_with_severity_and_cause():
    glitch = SPREAD | {
        "kind": "glitch",
        "buy_price": 129_990,
        "buy_price_type": "card",
        "ref_retailer": None,
        "ref_price": 1_299_990,
        "severity": "high",
        "glitch_type": "digit_slip",
    }
    alert = opportunity_alert(glitch, "new_opportunity", [], improved=False)
    assert alert.title.startswith("🎯 Posible error de precio")
    assert "a $129.990 con tarjeta · referencia su precio habitual $1.299.990" in alert.body
    assert "Severidad alta: 10 % de la referencia · probable dígito perdido" in alert.body
    assert "ROI" not in alert.body  # a few pesos against a normal price: no meaningful ROI


def test_system_errors_and_watch_hits():
    error = system_error_alert("run failed", "stage opportunities: boom", "k", run_id="r-1")
    assert error.title == "🚨 Error del sistema: run failed"
    assert error.body == "stage opportunities: boom\nRun: r-1"
    assert error.notify_type == "failure"

    hit = watch_alert(
        {
            "rule_id": "r1",
            "rule_kind": "pct_drop",
            "retailer": "paris",
            "sku": "p1",
            "name": "Notebook",
            "price": 499_990,
            "drop_pct": 23.0,
            "reference_price": 649_990,
        }
    )
    assert hit.title == "🔔 Alerta de precio: Notebook"
    assert hit.body == "Paris $499.990: bajó 23 % desde $649.990"
    assert hit.key == "r1|paris|p1"


def test_percentages_never_print_absurd_numbers():
    assert pct(12345.6) == ">9.999 %"
    assert pct(None) == "—"


def test_a_market_in_another_currency_is_alerted_in_it():
    alert = opportunity_alert(SPREAD, "new_opportunity", [], improved=False, code="USD")
    assert alert.body.splitlines()[:2] == [
        "Comprar en Falabella a USD 12,999.90 · referencia Ripley USD 14,999.90",
        "Margen USD 2,000.00 · ROI 15,4 % · confianza 82 %",
    ]
