"""The alerts users know, worded for the Chilean market ($1.299.990, "23,5 %").

* 🎯 new opportunity (a spread, or a possible price error for a glitch);
* 💰 high margin (``Thresholds.high_margin_clp``, default $50.000);
* 📈 high ROI (``Thresholds.high_roi_pct``, default 20 %);
* 🚨 system error (failed runs, failed blocking checks);
* 🔔 watch rule hit (target price, % drop, N-day low, back in stock).

One opportunity event is one message: its headline is the most notable of 💰 / 📈 / 🎯 and
the body lists the other badges, so a great opportunity does not arrive three times. A
burst (a market-wide price change opening hundreds at once) arrives as 📋 digests of
``DIGEST_SIZE`` alerts each, written out in full, rather than as hundreds of messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arbx_dagster.domain.money import format_amount

EMOJI = {
    "new_opportunity": "🎯",
    "high_margin": "💰",
    "high_roi": "📈",
    "system_error": "🚨",
    "watch": "🔔",
    "digest": "📋",
}
# Apprise notify types: colour/icon on channels that have them.
NOTIFY_TYPE = {
    "new_opportunity": "info",
    "high_margin": "success",
    "high_roi": "success",
    "system_error": "failure",
    "watch": "info",
    "digest": "info",
}
RETAILER_NAMES = {"falabella": "Falabella", "ripley": "Ripley", "paris": "Paris"}
GLITCH_TYPE_TEXT = {
    "pack_size": "probable pack vendido a precio unitario",
    "digit_slip": "probable dígito perdido",
    "thousands": "probable precio en miles",
    "currency": "probable precio en dólares",
    "implausible": "precio imposible",
    "deep_discount": "muy bajo todas las referencias",
}
SEVERITY_TEXT = {"low": "baja", "medium": "media", "high": "alta"}


@dataclass(frozen=True)
class Alert:
    """One message to deliver: what the channels show, plus data for JSON receivers."""

    kind: str  # new_opportunity / high_margin / high_roi / system_error / watch
    title: str
    body: str
    key: str  # what it is about (opportunity id, rule x listing, error key)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def notify_type(self) -> str:
        return NOTIFY_TYPE.get(self.kind, "info")


def pct(value: float | None, decimals: int = 1) -> str:
    """12.345 -> '12,3 %' (Chilean decimal comma)."""
    if value is None:
        return "—"
    if value > 9_999:
        return ">9.999 %"
    return f"{value:.{decimals}f}".replace(".", ",") + " %"


def store(retailer: str | None) -> str:
    return RETAILER_NAMES.get(retailer or "", (retailer or "—").title())


def opportunity_alert(
    row: dict[str, Any], kind: str, badges: list[str], improved: bool, code: str = "CLP"
) -> Alert:
    """The message for one opportunity (a row with OPPORTUNITY_SCHEMA columns), amounts in
    the market's currency ``code``."""

    def clp(amount: int | None) -> str:
        return format_amount(amount, code)

    name = row.get("product_name") or row.get("canonical_id") or "producto"
    glitch = row.get("kind") == "glitch"
    if kind == "high_margin":
        headline = f"Margen alto {clp(row['margin_clp'])}"
    elif kind == "high_roi":
        headline = f"ROI alto {pct(row['roi_pct'])}"
    elif glitch:
        headline = "Posible error de precio"
    else:
        headline = "Nueva oportunidad"
    if improved:
        headline += " (mejoró)"
    card = " con tarjeta" if row.get("buy_price_type") == "card" else ""
    reference = (
        f"{store(row.get('ref_retailer'))} {clp(row['ref_price'])}"
        if row.get("ref_retailer")
        else f"su precio habitual {clp(row['ref_price'])}"
    )
    lines = [
        f"Comprar en {store(row['buy_retailer'])} a {clp(row['buy_price'])}{card} · "
        f"referencia {reference}",
        f"Margen {clp(row['margin_clp'])} · "
        # A glitch's ROI (a few pesos against thousands) says nothing: its depth line does.
        + ("" if glitch else f"ROI {pct(row['roi_pct'])} · ")
        + f"confianza {pct(100 * (row.get('confidence') or 0.0), 0)}",
    ]
    if glitch:
        severity = SEVERITY_TEXT.get(row.get("severity") or "", row.get("severity") or "—")
        ratio = 100 * row["buy_price"] / row["ref_price"] if row.get("ref_price") else 0.0
        kind_text = GLITCH_TYPE_TEXT.get(row.get("glitch_type") or "", "")
        lines.append(
            f"Severidad {severity}: {pct(ratio, 0)} de la referencia"
            + (f" · {kind_text}" if kind_text else "")
        )
    others = [f"{EMOJI[b]} {'margen alto' if b == 'high_margin' else 'ROI alto'}" for b in badges]
    others = [o for o, b in zip(others, badges, strict=True) if b != kind]
    if others:
        lines.append(" · ".join(others))
    if row.get("buy_url"):
        lines.append(str(row["buy_url"]))
    return Alert(
        kind=kind,
        title=f"{EMOJI[kind]} {headline}: {name}",
        body="\n".join(lines),
        key=str(row["opportunity_id"]),
        data={
            "opportunity_id": row["opportunity_id"],
            "opportunity_kind": row.get("kind"),
            "buy_retailer": row.get("buy_retailer"),
            "buy_sku": row.get("buy_sku"),
            "buy_price": row.get("buy_price"),
            "ref_price": row.get("ref_price"),
            "margin_clp": row.get("margin_clp"),
            "roi_pct": row.get("roi_pct"),
            "severity": row.get("severity"),
            "improved": improved,
        },
    )


def system_error_alert(title: str, detail: str, key: str, run_id: str | None = None) -> Alert:
    body = detail.strip()
    if run_id:
        body += f"\nRun: {run_id}"
    return Alert(
        kind="system_error",
        title=f"{EMOJI['system_error']} Error del sistema: {title}",
        body=body,
        key=key,
        data={"error": title, "run_id": run_id},
    )


WATCH_TEXT = {
    "target_price": "llegó a tu precio objetivo {target}",
    "pct_drop": "bajó {drop} desde {reference}",
    "lowest_in_days": "su precio más bajo en {days} días (antes {reference})",
    "back_in_stock": "volvió a tener stock",
}


def watch_alert(row: dict[str, Any], code: str = "CLP") -> Alert:
    """The message for one watch-rule hit (a row of ``rules.evaluate_watch_rules``)."""

    def clp(amount: int | None) -> str:
        return format_amount(amount, code)

    text = WATCH_TEXT[row["rule_kind"]].format(
        target=clp(row.get("target_price")),
        drop=pct(row.get("drop_pct"), 0),
        reference=clp(row.get("reference_price")),
        days=row.get("days"),
    )
    name = row.get("name") or row.get("canonical_id") or row["sku"]
    lines = [f"{store(row['retailer'])} {clp(row['price'])}: {text}"]
    if row.get("url"):
        lines.append(str(row["url"]))
    return Alert(
        kind="watch",
        title=f"{EMOJI['watch']} Alerta de precio: {name}",
        body="\n".join(lines),
        key=f"{row['rule_id']}|{row['retailer']}|{row['sku']}",
        data={k: row.get(k) for k in ("rule_id", "rule_kind", "retailer", "sku", "price")},
    )


DIGEST_ABOVE = 5  # a dispatch with more alerts than this sends them as digests
DIGEST_SIZE = 10  # alerts per digest: about 2,500 characters, under chat apps' limits


def digests(alerts: Sequence[Alert], size: int = DIGEST_SIZE) -> list[tuple[Alert, list[Alert]]]:
    """``(digest, the alerts it carries)`` for ``alerts`` in order, ``size`` per digest:
    each alert's title and body in full, so nothing a single message says is lost."""
    chunks = [list(alerts[i : i + size]) for i in range(0, len(alerts), size)]
    out = []
    for number, chunk in enumerate(chunks, start=1):
        part = f" ({number}/{len(chunks)})" if len(chunks) > 1 else ""
        keys = "\n".join(a.key for a in chunk)
        digest = Alert(
            kind="digest",
            title=f"{EMOJI['digest']} {len(alerts)} alertas{part}",
            body="\n\n".join(f"{a.title}\n{a.body}" for a in chunk),
            key="digest:" + hashlib.sha256(keys.encode()).hexdigest()[:16],
            data={"alerts": [a.data | {"kind": a.kind, "key": a.key} for a in chunk]},
        )
        out.append((digest, chunk))
    return out
