"""The seven scorecard KPIs (``planning/kpis.py``) against values computed by hand (docs/kpis.md).

The case: families F1 (SKUs A, B) and F2 (C, and D without demand), ISO weeks 2025-W03/W04 (January)
and 2025-W06/W07 (February), unit cost 10 in January and 12 in February.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plan_pipeline.planning import kpis as kpis_module
from plan_pipeline.planning.kpis import KPI_BUCKETS, _receipt_segments, format_kpi, scorecard_kpis, scorecard_totals
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import (
    ADJ_COLUMNS,
    DETAIL_COLUMNS,
    MRP_COLUMNS,
    SCORECARD_CATEGORY,
    SCORECARD_KPI_NAMES,
    STORED_KPI_COLUMNS,
    WEEKLY_COLUMNS,
)
from plan_pipeline_tests.planning.synthetic import make_inputs

WEEKS = ["2025-W03", "2025-W04", "2025-W06", "2025-W07"]
MONTH = {"2025-W03": "2025-01", "2025-W04": "2025-01", "2025-W06": "2025-02", "2025-W07": "2025-02"}
FAMILY = {"A": "F1", "B": "F1", "C": "F2", "D": "F2"}
PARAMS = PlanningParameters().resolved()


def _detail(per_sku: dict[str, tuple[list[float], list[float], list[float]]]) -> pd.DataFrame:
    rows = []
    for sku, (demand, supply, backlog) in per_sku.items():
        for week, d, s, b in zip(WEEKS, demand, supply, backlog):
            rows.append((FAMILY[sku], MONTH[week], sku, week, float(d), float(s), float(s), float(b)))
    return pd.DataFrame(rows, columns=DETAIL_COLUMNS)


DETAIL = _detail({
    "A": ([10, 20, 0, 10], [10, 15, 0, 10], [0, 5, 0, 0]),
    "B": ([5, 5, 10, 10], [5, 5, 4, 10], [0, 0, 6, 0]),
    "C": ([20, 20, 20, 20], [20, 20, 10, 20], [0, 0, 10, 0]),
    "D": ([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]),
})


def _mrp(per_item: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = []
    for item, columns in per_item.items():
        for i, week in enumerate(WEEKS):
            row = dict.fromkeys(MRP_COLUMNS + ADJ_COLUMNS, 0.0)
            row.update({"item": item, "sku": item, "week": week, "lt_weeks": 1.0, "lot": 1.0})
            row.update({c: float(v[i]) for c, v in columns.items()})
            rows.append(row)
    return pd.DataFrame(rows, columns=MRP_COLUMNS + ADJ_COLUMNS)


ROWS = _mrp({
    "A": {"gross_req": [10, 20, 0, 10], "on_hand_start": [30, 20, 0, 0], "on_hand_end": [20, 0, 0, 0],
          "planned_order_receipt": [10, 20, 0, 10], "planned_order_receipt_adj": [10, 10, 10, 10]},
    "B": {"gross_req": [5, 5, 10, 10],
          "planned_order_receipt": [5, 5, 10, 10], "planned_order_receipt_adj": [10, 0, 10, 5]},
    "C": {"gross_req": [20, 20, 20, 20], "on_hand_start": [10] * 4, "on_hand_end": [10] * 4,
          "planned_order_receipt": [20, 20, 20, 20], "planned_order_receipt_adj": [10, 20, 30, 20]},
    # a component: not a finished good, ignored by every KPI
    "X": {"gross_req": [999] * 4, "on_hand_start": [1] * 4, "on_hand_end": [1] * 4,
          "planned_order_receipt": [500, 0, 0, 0], "planned_order_receipt_adj": [0, 0, 0, 500]},
})

WEEKLY = pd.DataFrame({"week": WEEKS, "capacity": [100.0, 100.0, 50.0, 0.0],
                       "adjusted_load": [80.0, 100.0, 60.0, 0.0]}).reindex(columns=WEEKLY_COLUMNS, fill_value=0.0)


def _inputs(cost=(("2025-01", 10.0), ("2025-02", 12.0))):
    return make_inputs(
        mix_share=[("F1", "A", 0.5), ("F1", "B", 0.5), ("F2", "C", 1.0), ("F2", "D", 0.0)],
        period_cost=list(cost),
    )


def _kpis(detail=DETAIL, rows=ROWS, weekly=WEEKLY, inputs=None) -> pd.DataFrame:
    return scorecard_kpis(detail, rows, weekly, _inputs() if inputs is None else inputs, PARAMS)


def _values(kpis: pd.DataFrame, metric: str) -> dict[tuple[str, str], float]:
    rows = kpis[kpis["metric"] == metric]
    return {(b, k): v for b, k, v in zip(rows["bucket_type"], rows["bucket_key"], rows["value"])}


@pytest.fixture(scope="module")
def kpis() -> pd.DataFrame:
    return _kpis()


def test_frame_layout_units_and_order(kpis):
    assert list(kpis.columns) == STORED_KPI_COLUMNS
    assert set(kpis["category"]) == {SCORECARD_CATEGORY}
    assert list(dict.fromkeys(kpis["metric"])) == list(SCORECARD_KPI_NAMES)
    units = kpis.drop_duplicates("metric").set_index("metric")["unit"].to_dict()
    assert units == {"fill_rate": "ratio", "service_level": "ratio", "backlog_days": "days",
                     "inventory_turns": "turns/year", "capacity_util": "ratio", "cost_variance": "ratio",
                     "on_time_rate": "ratio"}
    fill = kpis[kpis["metric"] == "fill_rate"]
    assert list(dict.fromkeys(fill["bucket_type"])) == ["total", "month", "week", "family", "sku"]
    assert list(fill.loc[fill["bucket_type"] == "week", "bucket_key"]) == WEEKS
    assert not kpis.duplicated(["metric", "bucket_type", "bucket_key"]).any()
    assert KPI_BUCKETS["capacity_util"] == ("total", "month", "week")


def test_fill_rate(kpis):
    assert _values(kpis, "fill_rate") == {
        ("total", "total"): 0.86,  # 129 / 150
        ("month", "2025-01"): 0.9375, ("month", "2025-02"): 0.771429,  # 75/80, 54/70
        ("week", "2025-W03"): 1.0, ("week", "2025-W04"): 0.888889, ("week", "2025-W06"): 0.466667,
        ("week", "2025-W07"): 1.0,
        ("family", "F1"): 0.842857, ("family", "F2"): 0.875,  # 59/70, 70/80
        ("sku", "A"): 0.875, ("sku", "B"): 0.8, ("sku", "C"): 0.875,
        ("sku", "D"): 1.0,  # no demand
    }


def test_fill_rate_is_clamped_to_one():
    over = DETAIL.assign(supply=DETAIL["demand"] * 2)
    values = _values(_kpis(detail=over), "fill_rate")
    assert set(values.values()) == {1.0}


def test_service_level(kpis):
    assert _values(kpis, "service_level") == {
        ("total", "total"): 0.727273,  # 8 of 11 SKU-weeks with demand fully covered
        ("month", "2025-01"): 0.833333, ("month", "2025-02"): 0.6,  # 5/6, 3/5
        ("week", "2025-W03"): 1.0, ("week", "2025-W04"): 0.666667, ("week", "2025-W06"): 0.0,
        ("week", "2025-W07"): 1.0,
        ("family", "F1"): 0.714286, ("family", "F2"): 0.75,  # 5/7, 3/4
        ("sku", "A"): 0.666667, ("sku", "B"): 0.75, ("sku", "C"): 0.75,
        ("sku", "D"): 1.0,  # no SKU-week with demand: nothing missed
    }


def test_backlog_days(kpis):
    assert _values(kpis, "backlog_days") == {
        ("total", "total"): 8.26,  # 21 / (150 / 59 days)
        ("month", "2025-01"): 1.9375, ("month", "2025-02"): 6.4,  # 5 / (80/31), 16 / (70/28)
        ("week", "2025-W03"): 0.0, ("week", "2025-W04"): 0.777778, ("week", "2025-W06"): 3.733333,
        ("week", "2025-W07"): 0.0,  # 5 / (45/7), 16 / (30/7)
        ("family", "F1"): 9.271429, ("family", "F2"): 7.375,  # 11 / (70/59), 10 / (80/59)
        ("sku", "A"): 7.375, ("sku", "B"): 11.8, ("sku", "C"): 7.375,
        ("sku", "D"): 0.0,  # no demand and no backlog
    }


def test_backlog_days_undefined_without_demand_is_not_stored():
    detail = DETAIL.copy()
    detail.loc[(detail["sku"] == "D") & (detail["week"] == "2025-W03"), "backlog"] = 4.0  # a typed-in backlog
    values = _values(_kpis(detail=detail), "backlog_days")
    assert ("sku", "D") not in values
    assert values[("family", "F2")] == pytest.approx(14 * 59 / 80, abs=1e-6)


def test_inventory_turns(kpis):
    assert _values(kpis, "inventory_turns") == {
        ("total", "total"): 104.0,  # 52 x 150 / (35 + 40) average on hand summed over SKU-weeks
        ("month", "2025-01"): 75.636364, ("month", "2025-02"): 182.0,  # 52x80/55, 52x70/20
        ("week", "2025-W03"): 52.0, ("week", "2025-W04"): 117.0, ("week", "2025-W06"): 156.0,
        ("week", "2025-W07"): 208.0,  # 52x35/35, 52x45/20, 52x30/10, 52x40/10
        ("family", "F1"): 104.0, ("family", "F2"): 104.0,
        ("sku", "A"): 59.428571, ("sku", "C"): 104.0,
        # B holds no stock: turns undefined, no row
    }


def test_capacity_util_is_pooled_per_week(kpis):
    assert _values(kpis, "capacity_util") == {
        ("total", "total"): 0.96, ("month", "2025-01"): 0.9, ("month", "2025-02"): 1.2,
        ("week", "2025-W03"): 0.8, ("week", "2025-W04"): 1.0, ("week", "2025-W06"): 1.2,
        ("week", "2025-W07"): 0.0,  # no capacity and no load
    }
    weekly = WEEKLY.assign(adjusted_load=[80.0, 100.0, 60.0, 5.0])  # load without capacity
    assert ("week", "2025-W07") not in _values(_kpis(weekly=weekly), "capacity_util")


def test_on_time_rate(kpis):
    assert _values(kpis, "on_time_rate") == {
        ("total", "total"): 0.766667,  # 115 of 150 units land no later than required
        ("month", "2025-01"): 0.625, ("month", "2025-02"): 0.928571,  # 50/80, 65/70
        ("week", "2025-W03"): 0.714286, ("week", "2025-W04"): 0.555556, ("week", "2025-W06"): 1.0,
        ("week", "2025-W07"): 0.875,
        ("family", "F1"): 0.785714, ("family", "F2"): 0.75,  # 55/70, 60/80
        ("sku", "A"): 0.75, ("sku", "B"): 0.833333, ("sku", "C"): 0.75,  # B: 5 units never land
    }


def test_cost_variance(kpis):
    assert _values(kpis, "cost_variance") == {
        ("total", "total"): 0.025316,  # 1620 / 1580 - 1
        ("month", "2025-01"): 0.05, ("month", "2025-02"): 0.0,  # 840/800 - 1
        ("week", "2025-W03"): 0.0, ("week", "2025-W04"): 0.088889, ("week", "2025-W06"): 0.0,
        ("week", "2025-W07"): 0.0,  # 490/450 - 1
        ("family", "F1"): 0.028571, ("family", "F2"): 0.022727,  # 720/700 - 1, 900/880 - 1
        ("sku", "A"): 0.047619, ("sku", "B"): 0.0, ("sku", "C"): 0.022727,  # 440/420 - 1
    }


def test_cost_variance_without_cost_data_is_not_stored():
    kpis = _kpis(inputs=_inputs(cost=()))
    assert "cost_variance" not in set(kpis["metric"])
    partial = _values(_kpis(inputs=_inputs(cost=(("2025-01", 10.0),))), "cost_variance")
    # only quantities costed in both their required and landing month count: January -> January
    assert partial[("month", "2025-01")] == 0.0 and ("month", "2025-02") not in partial


def test_no_stock_means_no_turns():
    rows = ROWS.assign(on_hand_start=0.0, on_hand_end=0.0)
    assert "inventory_turns" not in set(_kpis(rows=rows)["metric"])


def test_nothing_leveled_is_on_time_at_no_extra_cost():
    rows = ROWS.assign(planned_order_receipt_adj=ROWS["planned_order_receipt"])
    kpis = _kpis(rows=rows)
    assert set(_values(kpis, "on_time_rate").values()) == {1.0}
    assert set(_values(kpis, "cost_variance").values()) == {0.0}


def test_empty_plan_has_no_rows():
    empty = _kpis(detail=DETAIL.iloc[:0], rows=ROWS.iloc[:0], weekly=WEEKLY.iloc[:0])
    assert list(empty.columns) == STORED_KPI_COLUMNS and len(empty) == 0


def test_one_sku_week_edit_moves_exactly_its_buckets(kpis):
    edited = DETAIL.copy()
    cell = (edited["sku"] == "C") & (edited["week"] == "2025-W07")
    edited.loc[cell, "demand"] += 13
    edited.loc[cell, "backlog"] += 13
    after = _kpis(detail=edited)
    keys = ["metric", "bucket_type", "bucket_key"]
    merged = kpis.merge(after, on=keys, how="outer", suffixes=("_before", "_after"), indicator=True)
    assert (merged["_merge"] == "both").all()
    changed = merged[merged["value_before"] != merged["value_after"]]
    expected = {(m, b, k) for m in ("fill_rate", "service_level", "backlog_days")
                for b, k in (("total", "total"), ("month", "2025-02"), ("week", "2025-W07"), ("family", "F2"),
                             ("sku", "C"))}
    assert set(zip(changed["metric"], changed["bucket_type"], changed["bucket_key"])) == expected


def test_totals_and_display(kpis):
    totals = scorecard_totals(kpis)
    assert [name for name, _, _ in totals] == list(SCORECARD_KPI_NAMES)
    assert totals[0] == ("fill_rate", 0.86, "ratio")
    assert format_kpi("ratio", 0.86) == "86.0 %"
    assert format_kpi("days", 8.26) == "8.3 days"
    assert format_kpi("turns/year", 1234.5) == "1,234.5 turns/year"


def test_receipt_matching_agrees_with_the_cumulative_closed_form():
    """On random receipts (flat weeks, early and late landings, lost units), the on-time quantity of
    a SKU's required week w is max(0, min(cum_original(w), cum_leveled(w)) - cum_original(w - 1))."""
    rng = np.random.default_rng(12)
    skus, n_weeks = 40, 9
    original = rng.choice([0.0, 0.0, 3.0, 7.5, 10.0], size=(skus, n_weeks))
    leveled = np.maximum(0.0, original + rng.choice([-5.0, 0.0, 0.0, 2.5, 6.0], size=(skus, n_weeks)))
    sku, pos = np.repeat(np.arange(skus), n_weeks), np.tile(np.arange(n_weeks), skus)
    shuffle = rng.permutation(len(sku))  # the matching sorts the rows itself
    segments = _receipt_segments(sku[shuffle], pos[shuffle], original.reshape(-1)[shuffle],
                                 leveled.reshape(-1)[shuffle])
    cum_o, cum_a = original.cumsum(axis=1), leveled.cumsum(axis=1)
    before = np.hstack([np.zeros((skus, 1)), cum_o[:, :-1]])
    expected = np.maximum(0.0, np.minimum(cum_o, cum_a) - before)
    on_time = segments[segments["landed"] <= segments["required"]]
    got = np.zeros((skus, n_weeks))
    np.add.at(got, (on_time["sku"].to_numpy(), on_time["required"].to_numpy()), on_time["qty"].to_numpy())
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # every matched unit once: per SKU, min(Σ original, Σ leveled)
    matched = segments.groupby("sku")["qty"].sum().reindex(range(skus), fill_value=0.0).to_numpy()
    np.testing.assert_allclose(matched, np.minimum(cum_o[:, -1], cum_a[:, -1]), atol=1e-9)
    # each segment (in order per SKU, ending where the cumulative matched quantity is): required where
    # the original curve reaches its midpoint, landed where the leveled curve does
    ends = segments.groupby("sku")["qty"].cumsum().to_numpy()
    for row, end in zip(segments.itertuples(), ends):
        middle = end - row.qty / 2
        assert row.required == np.searchsorted(cum_o[row.sku], middle, side="left")
        assert row.landed == np.searchsorted(cum_a[row.sku], middle, side="left")


def test_receipt_kpis_computed_in_blocks_of_skus_are_those_of_all_rows_at_once(monkeypatch):
    """The receipt matching runs block by block of whole SKUs (memory at 50,000 SKUs): on a plan of
    many SKUs with rows in no particular order, every block size gives the same KPI rows, bit for bit."""
    rng = np.random.default_rng(5)
    skus = [f"S{i:03d}" for i in range(60)]
    per_item = {sku: {"gross_req": rng.choice([0.0, 4.0, 9.5], 4).tolist(),
                      "on_hand_start": rng.choice([0.0, 3.0, 12.0], 4).tolist(),
                      "on_hand_end": rng.choice([0.0, 2.0, 8.0], 4).tolist(),
                      "planned_order_receipt": rng.choice([0.0, 0.0, 3.0, 7.5, 10.0], 4).tolist(),
                      "planned_order_receipt_adj": rng.choice([0.0, 2.5, 6.0, 10.0], 4).tolist()}
                for sku in skus}
    rows = _mrp(per_item).sample(frac=1.0, random_state=3).reset_index(drop=True)  # SKUs interleaved
    inputs = make_inputs(mix_share=[(f"F{i % 4}", sku, 1.0) for i, sku in enumerate(skus)],
                         period_cost=[("2025-01", 10.0), ("2025-02", 12.0)])
    whole = scorecard_kpis(DETAIL.iloc[:0], rows, WEEKLY, inputs, PARAMS)
    assert {"on_time_rate", "cost_variance"} <= set(whole["metric"])
    assert (whole["bucket_type"] == "sku").sum() > 60
    for block_rows in (1, 3, 4, 9, 50):
        monkeypatch.setattr(kpis_module, "RECEIPT_BLOCK_ROWS", block_rows)
        blocks = kpis_module._sku_blocks(pd.factorize(rows["item"])[0], block_rows)
        assert sorted(np.concatenate(blocks).tolist()) == list(range(len(rows)))  # every row once
        assert len(blocks) == (60 if block_rows < 4 else -(-240 // (block_rows // 4 * 4)))
        pd.testing.assert_frame_equal(scorecard_kpis(DETAIL.iloc[:0], rows, WEEKLY, inputs, PARAMS), whole,
                                      check_exact=True)
