"""No spam: an opportunity alerts once, again only when materially better, with hysteresis."""

from __future__ import annotations

from arbx_dagster.alerts.policy import AlertState, Decision, decide
from arbx_dagster.domain.config import Thresholds

T = Thresholds()  # min margin 10 000; high margin 50 000; high ROI 20 %


def opp(margin: int, roi: float = 10.0, severity: str | None = None) -> dict:
    return {"opportunity_id": "o1", "margin_clp": margin, "roi_pct": roi, "severity": severity}


def run(rows: list[dict]) -> list[Decision]:
    """Decide each row in turn, storing state after each alert (as the dispatcher does)."""
    state, decisions = None, []
    for row in rows:
        decision = decide(row, state, T, "2026-11-23T12:00:00+00:00")
        decisions.append(decision)
        state = decision.state
    return decisions


def test_first_sighting_alerts_and_the_same_values_do_not_alert_again():
    first, second = run([opp(20_000), opp(20_000)])
    assert (first.send, first.kind, first.reason) == (True, "new_opportunity", "new")
    assert (second.send, second.reason) == (False, "not_material")


def test_a_new_opportunity_that_is_already_big_leads_with_its_badge():
    (decision,) = run([opp(80_000, roi=30.0)])
    assert (decision.kind, decision.badges) == ("high_margin", ("high_margin", "high_roi"))


def test_only_a_material_improvement_realerts():
    decisions = run([opp(40_000), opp(49_000), opp(50_500, roi=12.0), opp(70_000, roi=12.0)])
    assert [d.send for d in decisions] == [True, False, True, True]
    # +9 000 is less than min_margin_clp; 50 500 earns the 💰 badge; +19 500 is > 25 % and
    # > 10 000 over the last *alerted* 50 500.
    assert [d.reason for d in decisions] == ["new", "not_material", "badge", "improved"]
    assert decisions[3].improved


def test_small_steps_do_not_add_up_to_an_alert_while_a_big_one_does():
    decisions = run([opp(100_000), opp(110_000), opp(120_000), opp(124_000), opp(125_000)])
    assert [d.send for d in decisions] == [True, False, False, False, True]  # +25 % vs 100 000


def test_a_margin_flapping_around_the_high_margin_level_alerts_once():
    margins = [51_000, 49_000, 51_000, 47_000, 52_000, 44_000, 51_000]
    decisions = run([opp(m) for m in margins])
    # Earned at 51 000; kept while >= 45 000 (90 %); lost at 44 000; earned again at 51 000.
    assert [d.send for d in decisions] == [True, False, False, False, False, False, True]
    assert [("high_margin" in d.badges) for d in decisions] == [
        True,
        True,
        True,
        True,
        True,
        False,
        True,
    ]


def test_an_opportunity_flapping_around_the_minimum_margin_alerts_once():
    # It expires below 10 000 and comes back: only the first sighting is news.
    decisions = run([opp(11_000), opp(10_500), opp(11_500), opp(10_200)])
    assert [d.send for d in decisions] == [True, False, False, False]


def test_a_glitch_getting_more_severe_realerts():
    decisions = run([opp(30_000, severity="low"), opp(31_000, severity="high")])
    assert [d.reason for d in decisions] == ["new", "severity"]


def test_state_survives_a_round_trip_and_garbage_counts_as_never_alerted():
    state = run([opp(60_000, roi=25.0)])[0].state
    assert AlertState.from_json(state.to_json()) == state
    assert AlertState.from_json("{not json") is None
    assert AlertState.from_json(None) is None
