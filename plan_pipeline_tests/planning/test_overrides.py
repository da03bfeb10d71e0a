"""Detail overrides and locks (pure): application, lock laws, anchor correction around locks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.overrides import (
    OverrideError,
    aggregate_demand_inputs,
    aggregate_key,
    apply_aggregate_overrides,
    apply_detail_overrides,
    check_override_key,
    detail_key,
    lock_violations,
    parse_aggregate_key,
    parse_detail_key,
)
from plan_pipeline.planning.types import PlanningParameters


def detail():
    rows = []
    for sku in ("A", "B"):
        for week, period, d in (("2025-W09", "2025-02", 5.0), ("2025-W09", "2025-03", 2.0), ("2025-W10", "2025-03", 7.0),
                                ("2025-W11", "2025-03", 7.0), ("2025-W12", "2025-03", 7.0)):
            rows.append(("F", period, sku, week, d, d, d, 0.0))
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


def test_keys_round_trip_and_reject_separators():
    assert parse_detail_key(detail_key("2025-W09", "A", "2025-03")) == ("2025-W09", "A", "2025-03")
    assert parse_detail_key(detail_key("2025-W10", "A")) == ("2025-W10", "A", None)
    with pytest.raises(ValueError):
        detail_key("2025-W10", "A,B")


def test_edit_sets_values_recomputes_backlog_and_reports_problems():
    overrides = [
        {"key": detail_key("2025-W10", "A"), "payload": {"demand": 10.0}, "locked": False},
        {"key": detail_key("2025-W09", "B", "2025-03"), "payload": {"supply": 1.0}, "locked": True},
        {"key": detail_key("2025-W09", "A"), "payload": {"demand": 1.0}, "locked": False},  # shared week, no period
        {"key": detail_key("2025-W40", "A"), "payload": {"demand": 1.0}, "locked": False},  # no such row
    ]
    applied = apply_detail_overrides(detail(), overrides)
    f = applied.frame
    row = f[(f.sku == "A") & (f.week == "2025-W10")].iloc[0]
    assert (row.demand, row.supply, row.backlog) == (10.0, 7.0, 3.0)
    row = f[(f.sku == "B") & (f.week == "2025-W09") & (f.period == "2025-03")].iloc[0]
    assert (row.supply, row.supply_plan, row.backlog) == (1.0, 1.0, 1.0)
    assert applied.edited.sum() == 2 and applied.locked.sum() == 1
    assert applied.problems["problem"].tolist() == [
        "week 2025-W09 of A spans periods 2025-02, 2025-03: give the period",
        "matches no row of the detail plan",
    ]
    assert lock_violations(f, overrides).empty
    assert lock_violations(detail(), overrides)["field"].tolist() == ["supply"]


def test_anchor_correction_leaves_locked_rows_and_still_meets_the_aggregate():
    det = detail()
    overrides = [{"key": detail_key("2025-W12", "A"), "payload": {"demand": 17.0}, "locked": True}]
    edited = apply_detail_overrides(det, overrides)
    agg = pd.DataFrame({"family": ["F", "F"], "period": ["2025-02", "2025-03"], "demand": [10.0, 46.0],
                        "supply": [10.0, 46.0], "backlog": [0.0, 0.0], "capacity_total": [99.0, 99.0]})
    params = PlanningParameters(anchor_policy="DET_near", cutover_date="2025-03-15", round_mode="none")
    result = anchor_adjust(agg, edited.frame, None, params, locked=edited.locked)
    out = result.rows
    march = out[out.period == "2025-03"]
    assert march["demand"].sum() == pytest.approx(46.0)  # the +10 edit was absorbed elsewhere
    locked_row = out[(out.sku == "A") & (out.week == "2025-W12")].iloc[0]
    assert locked_row.demand == 17.0
    assert lock_violations(out, overrides, reference=edited.frame).empty
    # without the lock the edited row itself takes part of the correction
    free = anchor_adjust(agg, edited.frame, None, params).rows
    assert free[(free.sku == "A") & (free.week == "2025-W12")].iloc[0].demand < 17.0


def test_fully_locked_group_keeps_its_residual():
    det = detail()
    march = det.period == "2025-03"
    locked = march.to_numpy()
    agg = pd.DataFrame({"family": ["F"], "period": ["2025-03"], "demand": [30.0], "supply": [46.0],
                        "backlog": [0.0], "capacity_total": [99.0]})
    params = PlanningParameters(anchor_policy="blend", cutover_date="2025-03-15", round_mode="none")
    result = anchor_adjust(agg, det, None, params, locked=locked)
    np.testing.assert_array_equal(result.rows["demand"].to_numpy(), det["demand"].to_numpy())


# ------------------------------------------------------------------ aggregate (family x period) overrides
def _demand_family():
    return pd.DataFrame({"family": ["F", "G", "F", "F", "G"], "period": ["2025-01", "2025-01", "2025-02", "2025-02", "2025-02"],
                         "demand": [10.0, 20.0, 4.0, 6.0, 30.0]})


def _capacity():
    return pd.DataFrame({"workcenter": ["W", "W"], "period": ["2025-01", "2025-02"], "capacity": [100.0, 40.0]})


def test_aggregate_keys_round_trip_and_are_checked_per_level():
    assert parse_aggregate_key(aggregate_key("2025-02", "F")) == ("2025-02", "F")
    assert check_override_key("agg", "agg:period=2025-02,family=F") == "agg:period=2025-02,family=F"
    for level, key in (("agg", "det:week=W1,sku=A"), ("det", "agg:period=2025-02,family=F"), ("mrp", "x")):
        with pytest.raises(OverrideError):
            check_override_key(level, key)
    with pytest.raises(OverrideError):
        aggregate_key("2025-02", "F,G")


def test_an_aggregate_demand_edit_replaces_the_family_period_total_before_rationing():
    inputs = _demand_family()
    edited, problems = aggregate_demand_inputs(inputs, [
        {"key": aggregate_key("2025-02", "F"), "payload": {"demand": 25.0}, "locked": False},
        {"key": aggregate_key("2025-09", "F"), "payload": {"demand": 1.0}, "locked": False},
        {"key": aggregate_key("2025-01", "G"), "payload": {"supply": 1.0}, "locked": True},  # not a demand edit
    ])
    assert edited["demand"].tolist() == [10.0, 20.0, 25.0, 0.0, 30.0]  # first row holds the total, order kept
    assert problems == [("agg:period=2025-09,family=F", "matches no row of the family demand")]
    assert inputs["demand"].tolist() == [10.0, 20.0, 4.0, 6.0, 30.0]  # the input is not changed
    same, none = aggregate_demand_inputs(inputs, [])
    assert same is inputs and none == []
    # through the stage: 2025-02 is short (capacity 40): F's bigger demand takes a bigger share, Σ supply = capacity
    from plan_pipeline.planning.aggregate import plan_aggregate
    from plan_pipeline.planning.types import PlanningInputs

    def plan(demand):
        return plan_aggregate(PlanningInputs(demand_family=demand, capacity=_capacity(),
                                             mix_share=pd.DataFrame(columns=["family", "sku", "share"])),
                              PlanningParameters(round_mode="int")).set_index(["period", "family"])

    base, after = plan(inputs), plan(edited)
    assert (base.loc[("2025-02", "F"), "supply"], after.loc[("2025-02", "F"), "supply"]) == (10.0, 18.0)
    assert after.loc[("2025-02", "F"), "demand"] == 25.0 and after.loc["2025-02", "supply"].sum() == 40.0
    assert after.loc[("2025-02", "F"), "backlog"] == 7.0
    assert after.loc["2025-01"].equals(base.loc["2025-01"])


def test_aggregate_supply_and_backlog_edits_are_pinned_on_the_rationed_plan():
    aggregate = pd.DataFrame({"family": ["F", "G"], "period": ["2025-01", "2025-01"], "demand": [10.0, 20.0],
                              "supply": [10.0, 20.0], "backlog": [0.0, 0.0], "capacity_total": [100.0, 100.0]})
    applied = apply_aggregate_overrides(aggregate, [
        {"key": aggregate_key("2025-01", "F"), "payload": {"supply": 4.0}, "locked": True},
        {"key": aggregate_key("2025-01", "G"), "payload": {"supply": 5.0, "backlog": 1.0}, "locked": False},
        {"key": aggregate_key("2025-03", "G"), "payload": {"supply": 5.0}, "locked": False},
    ])
    f = applied.frame
    assert f["supply"].tolist() == [4.0, 5.0] and f["backlog"].tolist() == [6.0, 1.0]
    assert f["demand"].tolist() == [10.0, 20.0]
    assert applied.edited.tolist() == [True, True] and applied.locked.tolist() == [True, False]
    assert applied.problems["key"].tolist() == ["agg:period=2025-03,family=G"]
    assert aggregate["supply"].tolist() == [10.0, 20.0]
    plain = apply_aggregate_overrides(aggregate, [])
    assert plain.frame.equals(aggregate) and not plain.edited.any()
