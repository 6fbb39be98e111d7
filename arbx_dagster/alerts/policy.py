"""No spam: when an opportunity alerts, and when it may alert again.

Per opportunity the cache keeps what was last *alerted* (``AlertState``, 30 days), so the
rules below hold across runs, workers and restarts (Redis when configured):

* **Once.** The first time an open opportunity is dispatched it alerts (🎯, or 💰 / 📈 when it
  already clears those levels). Coming back after expiring is not news by itself.
* **Again only if materially better** than what was last alerted: the margin grew by at
  least ``MATERIAL_GAIN`` (25 %) *and* by at least ``min_margin_clp`` (10.000 CLP by default),
  or a glitch's severity rose (low -> medium -> high), or it newly earned a badge (💰 margin
  >= ``high_margin_clp``, 📈 ROI >= ``high_roi_pct``).
* **Hysteresis.** A badge, once earned, is lost only when the value falls below
  ``BADGE_EXIT`` (90 %) of its level; only then can it be earned — and alerted — again. A
  margin flapping between $49.000 and $51.000 alerts 💰 once, not on every crossing; the same
  memory stops an opportunity flapping around ``min_margin_clp`` (expiring and coming back)
  from re-alerting.
* **Cooldown.** At most one alert per opportunity per ``COOLDOWN_SECONDS`` (6 h), claimed
  atomically with ``Cache.add``: two workers (or a retried run) never both send it. An
  improvement inside the cooldown is not lost: it alerts after the cooldown if still material.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from arbx_dagster.domain.config import Thresholds

MATERIAL_GAIN = 0.25
BADGE_EXIT = 0.9
COOLDOWN_SECONDS = 6 * 3600
STATE_TTL_SECONDS = 30 * 86400
_SEVERITY_RANK = {None: 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class AlertState:
    """What was last alerted for one opportunity (badges track the hysteresis)."""

    margin_clp: int
    roi_pct: float
    severity: str | None
    badges: tuple[str, ...]
    alerted_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> AlertState | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                margin_clp=int(data["margin_clp"]),
                roi_pct=float(data["roi_pct"]),
                severity=data.get("severity"),
                badges=tuple(data.get("badges", ())),
                alerted_at=str(data.get("alerted_at", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None  # unreadable state: treat as never alerted


@dataclass(frozen=True)
class Decision:
    send: bool
    kind: str  # headline: new_opportunity / high_margin / high_roi
    improved: bool
    reason: str  # new / improved / badge / severity / not_material
    badges: tuple[str, ...]
    state: AlertState  # the state to store (after sending, or the badge update when not)


def badges_of(
    row: dict[str, Any], held: tuple[str, ...], thresholds: Thresholds
) -> tuple[str, ...]:
    """Badges the opportunity holds now: earned at the level, kept down to 90 % of it."""
    margin, roi = row.get("margin_clp") or 0, row.get("roi_pct") or 0.0
    found = []
    level = thresholds.high_margin_clp
    if margin >= level or ("high_margin" in held and margin >= BADGE_EXIT * level):
        found.append("high_margin")
    level_roi = thresholds.high_roi_pct
    if roi >= level_roi or ("high_roi" in held and roi >= BADGE_EXIT * level_roi):
        found.append("high_roi")
    return tuple(found)


def decide(
    row: dict[str, Any], previous: AlertState | None, thresholds: Thresholds, now_iso: str
) -> Decision:
    """Whether one open opportunity alerts now (rules in the module docstring)."""
    held = previous.badges if previous else ()
    badges = badges_of(row, held, thresholds)
    alerted = AlertState(
        margin_clp=int(row.get("margin_clp") or 0),
        roi_pct=float(row.get("roi_pct") or 0.0),
        severity=row.get("severity"),
        badges=badges,
        alerted_at=now_iso,
    )
    headline = badges[0] if badges else "new_opportunity"
    if previous is None:
        return Decision(True, headline, False, "new", badges, alerted)
    earned = [b for b in badges if b not in previous.badges]
    gain = alerted.margin_clp - previous.margin_clp
    material = gain >= max(MATERIAL_GAIN * previous.margin_clp, thresholds.min_margin_clp)
    worse = _SEVERITY_RANK.get(alerted.severity, 0) > _SEVERITY_RANK.get(previous.severity, 0)
    if earned:
        return Decision(True, earned[0], True, "badge", badges, alerted)
    if material or worse:
        return Decision(
            True, headline, True, "improved" if material else "severity", badges, alerted
        )
    kept = AlertState(
        previous.margin_clp, previous.roi_pct, previous.severity, badges, previous.alerted_at
    )
    return Decision(False, headline, False, "not_material", badges, kept)
