"""Planning calendar (spec §3) incl. the reference calendar invariants (§17)."""
from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from plan_pipeline.planning.calendar import (
    CalendarError,
    build_calendar,
    effective_fallback_weeks,
    infer_weeks,
    map_due_to_week,
    order_weeks,
    period_of_week,
    week_distribution,
    week_sequence_of,
)


def iso_calendar(months: list[str]) -> dict:
    """ISO-week fragments per month, as in the sample calendar's convention."""
    periods = []
    seq: dict[str, int] = {}
    for ym in months:
        y, m = map(int, ym.split("-"))
        first = date(y, m, 1)
        last = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        weeks = []
        d = first
        while d <= last:
            end = min(last, d + timedelta(days=6 - d.weekday()))
            iy, iw, _ = d.isocalendar()
            code = f"{iy}-W{iw:02d}"
            seq.setdefault(code, len(seq) + 1)
            weeks.append({"week_code": code, "sequence": seq[code], "start_date": d.isoformat(),
                          "end_date": end.isoformat(), "weight": (end - d).days + 1})
            d = end + timedelta(days=1)
        periods.append({"period": ym, "start_date": first.isoformat(), "end_date": last.isoformat(), "weeks": weeks})
    return {"calendar_type": "custom", "week_unit": "day", "periods": periods}


@pytest.fixture
def sample_lookup(reference_dir):
    doc = json.loads((reference_dir / "inputs/samples_planning/planning_calendar.json").read_text(encoding="utf-8"))
    return build_calendar(doc)


def test_sample_january_has_five_weeks(sample_lookup):
    entries = week_distribution(sample_lookup, "2025-01")
    assert [e.week_code for e in entries] == [f"2025-W0{i}" for i in range(1, 6)]
    assert sum(e.ratio for e in entries) == pytest.approx(1.0, abs=1e-12)
    assert entries[-1].week_code == "2025-W05"
    assert entries[0].ratio == 5 / 31
    assert sample_lookup.mode == "custom"
    assert len(sample_lookup.periods) == 12
    assert len(sample_lookup.week_order) == 53
    assert sample_lookup.week_order[-1] == "2026-W01"
    assert sample_lookup.week_sequence["2026-W01"] == 53


def test_shared_week_last_writer_wins(sample_lookup):
    assert sample_lookup.week_to_period["2025-W05"] == "2025-02"
    assert sample_lookup.week_to_period["2025-W09"] == "2025-03"
    assert sample_lookup.week_to_period["2025-W14"] == "2025-04"
    assert period_of_week(sample_lookup, "2025-W05") == "2025-02"
    assert sample_lookup.period_last_week["2025-01"] == "2025-W05"
    # the shared week appears as two fragments in the ranges
    assert sum(1 for _, _, c in sample_lookup.week_ranges if c == "2025-W05") == 2


def test_due_mapping_with_calendar(sample_lookup):
    assert map_due_to_week(sample_lookup, "2025-01-05") == "2025-W01"
    assert map_due_to_week(sample_lookup, "2025-01-10") == "2025-W02"
    assert map_due_to_week(sample_lookup, "2025-01") == "2025-W05"
    assert map_due_to_week(sample_lookup, "2025-03") == "2025-W14"
    assert map_due_to_week(sample_lookup, "2025-W07") == "2025-W07"
    assert map_due_to_week(sample_lookup, "2025-02-01") == "2025-W05"
    # outside the calendar: fallback forms
    assert map_due_to_week(sample_lookup, "2026-03-01") == "2026-03-W1"
    assert map_due_to_week(sample_lookup, "2026-03") == "2026-03-W4"
    assert map_due_to_week(sample_lookup, "") is None
    assert map_due_to_week(sample_lookup, "garbage") is None


def test_iso_calendar_cases():
    lookup = build_calendar(iso_calendar(["2024-12", "2025-01", "2025-02"]))
    assert map_due_to_week(lookup, "2024-12-30") == "2025-W01"
    assert map_due_to_week(lookup, "2025-02-01") == "2025-W05"
    jan = week_distribution(lookup, "2025-01")
    assert jan[-1].week_code == "2025-W05" and jan[-1].ratio == pytest.approx(5 / 31)
    assert jan[1].ratio == pytest.approx(7 / 31)
    assert jan[0].week_code == "2025-W01" and jan[0].ratio == pytest.approx(5 / 31)
    assert lookup.week_to_period["2025-W01"] == "2025-01"


def test_fallback_weeks_and_infer():
    lookup = build_calendar(None, 3)
    assert lookup.mode == "fallback_weeks" and not lookup.has_calendar
    entries = week_distribution(lookup, "2024-12")
    assert [e.week_code for e in entries] == ["2024-12-W1", "2024-12-W2", "2024-12-W3"]
    assert all(e.ratio == 1 / 3 and e.weight == 0.0 for e in entries)
    assert [e.sequence for e in entries] == [1, 2, 3]
    assert infer_weeks("2025-03", 4) == 5
    assert infer_weeks("2025-02", 4) == 5
    assert infer_weeks("2021-02", 4) == 4
    assert infer_weeks("2025-03", 3) == 3
    assert infer_weeks("2025-03", 5) == 5
    assert infer_weeks("2025-03", 0) == 1
    assert infer_weeks("M1", 4) == 4
    assert infer_weeks("M3", 4) == 5
    assert infer_weeks("m6", 4) == 5
    assert infer_weeks("M0", 4) == 4
    assert infer_weeks("2025-13", 4) == 4
    assert infer_weeks("Q1", 4) == 4
    # a period missing from an existing calendar also falls back
    cal = build_calendar(iso_calendar(["2025-01"]))
    assert [e.week_code for e in week_distribution(cal, "2025-03")][-1] == "2025-03-W5"


def test_due_mapping_without_calendar():
    lookup = build_calendar(None, 4)
    assert map_due_to_week(lookup, "2025-01-10") == "2025-01-W2"
    assert map_due_to_week(lookup, "2025-01-29") == "2025-01-W4"  # never W5
    assert map_due_to_week(lookup, "2025-01-07") == "2025-01-W1"
    assert map_due_to_week(lookup, "2025-01-21") == "2025-01-W3"
    assert map_due_to_week(lookup, "2025-02") == "2025-02-W4"
    assert map_due_to_week(build_calendar(None, 5), "2025-02") == "2025-02-W5"
    assert map_due_to_week(lookup, "2025-01-xx") is None
    assert map_due_to_week(lookup, "2025/01/10") is None
    assert map_due_to_week(lookup, "") is None


def test_order_weeks(sample_lookup):
    assert order_weeks(build_calendar(None), ["2025-01-W2", "", "2025-01-W1", "2025-01-W2"]) == ["2025-01-W1", "2025-01-W2"]
    codes = ["X1", "2025-W03", "2025-W01", "A0", "2025-W03"]
    assert order_weeks(sample_lookup, codes) == ["2025-W01", "2025-W03", "X1", "A0"]


def test_period_of_week_iso_thursday_rule():
    lookup = build_calendar(None)
    assert period_of_week(lookup, "2025-W05") == "2025-01"  # Thursday 2025-01-30
    assert period_of_week(lookup, "2025-W09") == "2025-02"  # Thursday 2025-02-27
    assert period_of_week(lookup, "2025-W01") == "2025-01"  # Thursday 2025-01-02
    assert period_of_week(lookup, "2026-W01") == "2026-01"
    assert period_of_week(lookup, "2020-W53") == "2020-12"
    assert period_of_week(lookup, "2025-W99") == "2025-W9"  # invalid ISO week: code[:7]
    assert period_of_week(lookup, "2025-01-W3") == "2025-01"
    assert period_of_week(lookup, "M3") == "M3"
    assert period_of_week(lookup, "") == ""


def test_week_sequence_of(sample_lookup):
    assert week_sequence_of(sample_lookup, "2025-W05") == 5
    assert week_sequence_of(sample_lookup, "2026-W01") == 53
    assert week_sequence_of(sample_lookup, "2025-03-W3") == 3
    assert week_sequence_of(sample_lookup, "Wk12") == 12
    assert week_sequence_of(sample_lookup, "nothing", 7) == 7


def test_sorting_and_ratio_rules():
    doc = {"periods": [{"period": "P", "start_date": "2025-01-01", "end_date": "2025-01-31", "weeks": [
        {"week_code": "b", "sequence": 2, "start_date": "2025-01-08", "end_date": "2025-01-14", "weight": -3},
        {"week_code": "a", "sequence": 1, "start_date": "2025-01-01", "end_date": "2025-01-07"},
        {"week_code": "c", "sequence": 2, "start_date": "2025-01-08", "end_date": "2025-01-14", "weight": 3},
    ]}, {"period": "Q", "start_date": "2025-02-01", "end_date": "2025-02-28", "weeks": [
        {"week_code": "z", "sequence": 1, "start_date": "2025-02-01", "end_date": "2025-02-07", "weight": 0},
        {"week_code": "y", "sequence": 2, "start_date": "2025-02-08", "end_date": "2025-02-14", "weight": 0},
    ]}, {"period": "EMPTY", "start_date": "2025-03-01", "end_date": "2025-03-31"}]}
    lookup = build_calendar(doc)
    assert lookup.mode == "custom"
    p = lookup.periods["P"]
    assert [e.week_code for e in p] == ["a", "b", "c"]
    assert [e.ratio for e in p] == [0.25, 0.0, 0.75]
    assert [e.ratio for e in lookup.periods["Q"]] == [0.5, 0.5]
    assert "EMPTY" not in lookup.periods
    assert lookup.week_order == ["a", "b", "c", "z", "y"]


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d["periods"][2]["weeks"][0].__setitem__("start_date", "x"), "periods[2].weeks[0].start_date"),
    (lambda d: d["periods"][0]["weeks"][1].pop("week_code"), "periods[0].weeks[1].week_code"),
    (lambda d: d["periods"][1]["weeks"][0].__setitem__("sequence", "one"), "periods[1].weeks[0].sequence"),
    (lambda d: d["periods"][1].pop("end_date"), "periods[1].end_date"),
    (lambda d: d["periods"][0]["weeks"][0].__setitem__("weight", "heavy"), "periods[0].weeks[0].weight"),
    (lambda d: d.__setitem__("periods", {}), "periods"),
    (lambda d: d["periods"][0].__setitem__("period", 5), "periods[0].period"),
])
def test_calendar_errors_name_the_json_path(mutate, path):
    doc = iso_calendar(["2025-01", "2025-02", "2025-03"])
    mutate(doc)
    with pytest.raises(CalendarError) as err:
        build_calendar(doc)
    assert str(err.value).startswith(path + ":")


def test_calendar_error_is_value_error():
    with pytest.raises(ValueError):
        build_calendar(["not", "a", "dict"])


def test_effective_fallback_weeks():
    assert effective_fallback_weeks(SimpleNamespace(fallback_weeks=3), has_calendar=False) == 3
    assert effective_fallback_weeks(SimpleNamespace(fallback_weeks=0), has_calendar=False) == 1
    assert effective_fallback_weeks(SimpleNamespace(fallback_weeks=3), has_calendar=True) == 4
