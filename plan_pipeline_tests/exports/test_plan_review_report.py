"""The plan report (plan_pipeline/exports/plan_review*.py) on versions planned for real: the page
parses, every chart is embedded and written beside it and is a real picture, and the numbers on
the page are the store's."""
from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from plan_pipeline.exports.plan_review import (
    final_level,
    gather_report_frames,
    published_report_dir,
    write_plan_report,
)
from plan_pipeline.exports.plan_review_report import (
    DIFF_CHART,
    FAMILY_MONTH_CHART,
    INVENTORY_CHART,
    REPORT_FILE,
    WEEKLY_LOAD_CHART,
    ReportComparison,
    format_value,
    over_capacity_weeks,
    write_report,
)
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_KPIS
from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.level_slices import read_series_slice
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE, require_reference
from plan_pipeline_tests.exports.report_helpers import (
    assert_non_trivial_png,
    embedded_png,
    parse_page,
    plan_home,
)

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

BASE_CHARTS = [FAMILY_MONTH_CHART, WEEKLY_LOAD_CHART, INVENTORY_CHART]


@pytest.fixture(scope="module")
def report_home(tmp_path_factory, homes):
    """The project home the planned versions live in (its store: ``planned``)."""
    return homes.new(tmp_path_factory.mktemp("report") / "home")


@pytest.fixture(scope="module")
def planned(report_home):
    """``plain``: the bundled sample, default parameters; ``tight``: sample_tight (capacity short
    most weeks) with a March cutover, the blend preset and the anchored branch applied."""
    tight_dir = require_reference() / "inputs" / "sample_tight"
    env = plan_home(report_home, {
        "plain": (BUNDLED_SAMPLE, "sample", PlanningParameters()),
        "tight": (tight_dir, "tight", PlanningParameters(cutover_date="2025-03-15", preset="blend",
                                                         apply_adjusted=True)),
    })
    env.store.create_version("unplanned", "sample", PlanningParameters())
    return env.store


def _page_and_files(out):
    page = parse_page(out / REPORT_FILE)
    return page, sorted(p.name for p in out.glob("*.png"))


def test_the_page_parses_and_every_chart_is_embedded_and_beside_it(planned, tmp_path):
    files = write_plan_report(planned, "plain", tmp_path / "r")
    assert files.html == tmp_path / "r" / REPORT_FILE
    assert [p.name for p in files.charts] == BASE_CHARTS
    page, pngs = _page_and_files(tmp_path / "r")
    assert pngs == sorted(BASE_CHARTS)
    assert [img["data-file"] for img in page.images] == BASE_CHARTS
    for image in page.images:  # the embedded picture is the file beside the page
        assert embedded_png(image) == (tmp_path / "r" / image["data-file"]).read_bytes()
        assert_non_trivial_png(tmp_path / "r" / image["data-file"])
    assert list(page.sections) == ["family-month", "capacity", "inventory", "kpis", "baseline"]
    html = files.html.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "<script" not in html  # opens with no network


def test_the_header_names_version_status_input_set_parameters_and_run(planned, tmp_path):
    files = write_plan_report(planned, "plain", tmp_path)
    html = files.html.read_text(encoding="utf-8")
    publication = planned.publication("plain")
    assert "<dt>Version</dt><dd>plain</dd>" in html and "<dt>Status</dt><dd>draft</dd>" in html
    assert "<dt>Input set</dt><dd>sample</dd>" in html and "<dd>plain chain</dd>" in html
    assert f"<dt>Run id</dt><dd>{publication['runs'][0]}</dd>" in html
    assert "round_mode=int" in html and "lt_unit=day" in html


def test_family_month_is_the_detail_plan_rolled_up_and_matches_the_aggregate(planned):
    frames = gather_report_frames(planned, "plain")
    aggregate = planned.read_series("plain", "aggregate").set_index(["family", "period"]).sort_index()
    rolled = frames.family_month.set_index(["family", "period"]).sort_index()
    assert list(rolled.index) == list(aggregate.index) and len(rolled) == 36
    for measure in ("demand", "supply", "backlog"):  # no planner edits: the detail sums are the aggregate
        assert rolled[measure].to_numpy() == pytest.approx(aggregate[measure].to_numpy())


def test_family_month_table_shows_each_family_measure_and_month(planned, tmp_path):
    write_plan_report(planned, "plain", tmp_path)
    page = parse_page(tmp_path / REPORT_FILE)
    table = page.tables[0]
    aggregate = planned.read_series("plain", "aggregate")
    assert table[0][:3] == ["family", "measure", "2025-01"] and table[0][-1] == "total"
    assert len(table) == 1 + 3 * aggregate["family"].nunique()
    bikes_demand = next(row for row in table if row[:2] == ["BIKES", "demand"])
    expected = aggregate[aggregate["family"] == "BIKES"].sort_values("period")["demand"]
    assert bikes_demand[2:-1] == [f"{v:,.0f}" for v in expected]
    assert bikes_demand[-1] == f"{expected.sum():,.0f}"


def test_the_ten_largest_skus_by_demand_and_their_projected_on_hand(planned):
    frames = gather_report_frames(planned, "plain")
    detail = planned.read_series("plain", "det")
    demand = detail.groupby("sku")["demand"].sum().sort_values(ascending=False, kind="stable")
    assert len(demand) == 12 and len(frames.top_skus) == 10
    assert frames.top_skus["demand"].tolist() == pytest.approx(demand.head(10).tolist())
    assert set(frames.top_skus["sku"]) == set(demand.head(10).index)
    mrp = planned.read_series("plain", "mrp_final")
    sku = frames.top_skus["sku"].iloc[0]
    mine = frames.inventory[frames.inventory["sku"] == sku].sort_values("week")
    theirs = mrp[mrp["item"] == sku].sort_values("week")
    assert mine["on_hand"].tolist() == pytest.approx(theirs["on_hand_end"].tolist())
    assert set(frames.inventory["sku"]) == set(frames.top_skus["sku"])


def test_the_kpi_table_without_a_scorecard_level_shows_the_reference_kpis_with_a_note(planned, tmp_path):
    # a plan run stages the scorecard; a version published before it existed (or a legacy import) has none
    frames = gather_report_frames(planned, "plain")
    assert frames.scorecard is not None and len(frames.scorecard)
    write_report(dataclasses.replace(frames, scorecard=None), tmp_path)
    page = parse_page(tmp_path / REPORT_FILE)
    kpis = page.sections["kpis"]
    assert "has no scorecard KPIs" in kpis
    totals = planned.read_kpis("plain", "report")
    totals = totals[(totals["category"] == "plan") & (totals["bucket_type"] == "total")]
    table = next(t for t in page.tables if t[0] == ["KPI", "total", "unit"])
    assert {row[0]: row[1] for row in table[1:]} == {
        m: format_value(v, u) for m, v, u in zip(totals["metric"], totals["value"], totals["unit"])}
    assert {row[0]: row[1] for row in table[1:]}["fill_rate"] == "92.5 %"
    monthly = next(t for t in page.tables if t[0][0] == "month")
    assert len(monthly) == 13  # twelve months


def test_the_scorecard_comes_first_in_display_order_then_per_family(planned, tmp_path):
    frames = gather_report_frames(planned, "plain")
    values = {k.name: 0.1 * (i + 1) for i, k in enumerate(SCORECARD_KPIS)}
    rows = [(SCORECARD_CATEGORY, k.name, "total", "total", values[k.name], k.unit) for k in SCORECARD_KPIS]
    rows += [(SCORECARD_CATEGORY, "fill_rate", "family", fam, 0.5, "ratio") for fam in ("BIKES", "LIGHTS")]
    scorecard = pd.DataFrame(rows, columns=["category", "metric", "bucket_type", "bucket_key", "value", "unit"])
    write_report(dataclasses.replace(frames, scorecard=scorecard), tmp_path)
    page = parse_page(tmp_path / REPORT_FILE)
    assert "has no scorecard KPIs" not in page.sections["kpis"]
    first = next(t for t in page.tables if t[0] == ["KPI", "total", "unit", "meaning"])
    assert [row[0] for row in first[1:]] == [k.label for k in SCORECARD_KPIS]
    assert first[1][1] == "10.0 %" and first[3][1] == "0.30"  # fill rate (ratio), backlog days (days)
    kpi_tables = [t[0] for t in page.tables]
    assert kpi_tables.index(first[0]) < kpi_tables.index(["KPI", "total", "unit"])  # the reference KPIs after
    family = next(t for t in page.tables if t[0][0] == "family" and t[0][1] == "Fill rate")
    assert family[1:] == [["BIKES", "50.0 %"], ["LIGHTS", "50.0 %"]]


def test_weeks_over_capacity_are_the_report_kpis_weeks_and_are_explained(planned, tmp_path):
    files = write_plan_report(planned, "tight", tmp_path)
    frames = gather_report_frames(planned, "tight")
    util = planned.read_kpis("tight", "report_adjusted")
    util = util[(util["category"] == "capacity") & (util["metric"] == "utilization")]
    expected = util[util["value"] > 1.0 + 1e-9]["bucket_key"].tolist()
    over = over_capacity_weeks(frames.weekly)
    assert over["week"].tolist() == expected and len(expected) == 22
    page = parse_page(files.html)
    assert f"{len(expected)} of 53 weeks are over 100 % of capacity" in page.sections["capacity"]
    assert [item.split(" ")[0] for item in page.list_items] == expected
    weekly = planned.read_series("tight", "weekly_summary_adjusted").set_index("week")
    w05 = next(item for item in page.list_items if item.startswith("2025-W05"))
    row = weekly.loc["2025-W05"]
    assert w05 == (f"2025-W05 (zone pre): leveled load {row.adjusted_load:,.0f} vs capacity {row.capacity:,.1f} = "
                   f"{100 * row.adjusted_load / row.capacity:,.1f} %, {row.adjusted_load - row.capacity:,.1f} over; "
                   f"spill in {row.spill_in:,.0f}, spill out {row.spill_out:,.1f}.")
    assert any("(zone at)" in item for item in page.list_items) and any("(zone post)" in item for item in page.list_items)


def test_an_anchored_version_shows_its_anchored_branch(planned, tmp_path):
    frames = gather_report_frames(planned, "tight")
    levels = planned.publication("tight")["levels"]
    assert final_level(levels, "det") == "det_adjusted" and final_level(levels, "aggregate") == "aggregate"
    assert frames.header.branch == "anchored" and frames.reference_level == "report_adjusted"
    weekly = planned.read_series("tight", "weekly_summary_adjusted")
    assert frames.weekly["adjusted_load"].tolist() == pytest.approx(weekly["adjusted_load"].tolist())
    assert frames.weekly["zone"].tolist() == weekly["zone"].tolist()
    html = write_plan_report(planned, "tight", tmp_path).html.read_text(encoding="utf-8")
    assert "anchored branch (adjusted levels)" in html and "<code>report_adjusted</code>" in html


def test_no_baseline_is_said_and_a_comparison_is_charted_and_listed(planned, tmp_path):
    page = parse_page(write_plan_report(planned, "plain", tmp_path / "none").html)
    assert "No baseline" in page.sections["baseline"]
    diff = pd.DataFrame({"bucket": ["BIKES", "LIGHTS", "<b>x&y</b>"], "metric": ["demand", "supply", "backlog"],
                         "baseline": [100.0, 50.0, 0.0], "value": [113.0, 45.0, 2.0], "delta": [13.0, -5.0, 2.0]})
    calls = []

    def provider(store, version):
        calls.append(version)
        return ReportComparison("plain-base", diff, by="family")

    files = write_plan_report(planned, "plain", tmp_path / "diff", comparison=provider)
    assert calls == ["plain"]
    assert [p.name for p in files.charts] == [*BASE_CHARTS, DIFF_CHART]
    assert_non_trivial_png(tmp_path / "diff" / DIFF_CHART, min_height=100)
    page = parse_page(files.html)
    assert "Baseline: plain-base" in page.sections["baseline"]
    table = next(t for t in page.tables if t[0] == ["family", "metric", "baseline", "this version", "delta"])
    assert table[1:] == [["BIKES", "demand", "100", "113", "+13.0"], ["LIGHTS", "supply", "50", "45", "-5.0"],
                         ["<b>x&y</b>", "backlog", "0", "2", "+2.0"]]
    html = files.html.read_text(encoding="utf-8")
    assert "<b>x&y</b>" not in html and "&lt;b&gt;x&amp;y&lt;/b&gt;" in html  # escaped text, not markup
    # an identical version, and the same folder again: the diff chart of the earlier report goes away
    files = write_plan_report(planned, "plain", tmp_path / "diff",
                              comparison=ReportComparison("plain-base", diff.iloc[0:0]))
    assert "No differences" in parse_page(files.html).sections["baseline"]
    assert sorted(p.name for p in (tmp_path / "diff").glob("*.png")) == sorted(BASE_CHARTS)


def test_unknown_unplanned_and_unsafe_versions_are_refused_writing_nothing(planned, report_home, tmp_path,
                                                                          monkeypatch):
    for version, message in (("nope", "unknown plan version 'nope'"),
                             ("unplanned", "has no published plan yet: materialize it first"),
                             ("../etc", "invalid version id")):
        with pytest.raises(PlanStoreError, match=re.escape(message)):
            write_plan_report(planned, version, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(PlanStoreError, match="invalid version id"):
        published_report_dir(planned, "a/../b")
    # the folder of the DuckDB file; a PostgreSQL store (no file): the project home, $PLAN_PIPELINE_HOME
    report_home.apply(monkeypatch)
    assert published_report_dir(planned, "plain") == report_home.home / "reports" / "plain"
    if not planned.is_postgres:
        assert published_report_dir(planned, "plain") == planned.path.parent / "reports" / "plain"
    assert (report_home.home / "reports" / "plain" / REPORT_FILE).is_file()  # where the plan run's asset wrote it
    report_home.check_no_duckdb_file()


def test_a_level_slice_is_the_published_level_restricted_to_its_columns_and_items(planned):
    """The report reads slices (issue 13, 50,000 SKUs): the same values, dtypes and row order as
    the whole level, restricted."""
    for version, level, item in (("plain", "det", "sku"), ("tight", "mrp_final_adjusted", "item")):
        whole = planned.read_series(version, level)
        columns = [item, "week", whole.columns[-1]]
        pd.testing.assert_frame_equal(read_series_slice(planned, version, level, columns),
                                      whole[columns].reset_index(drop=True))
        picked = sorted(whole[item].unique())[1:3]
        expected = whole.loc[whole[item].isin(picked), columns].reset_index(drop=True)
        assert len(expected) > 0
        pd.testing.assert_frame_equal(read_series_slice(planned, version, level, columns, items=picked), expected)
        assert read_series_slice(planned, version, level, columns, items=[]).empty
    with pytest.raises(PlanStoreError, match="no column"):
        read_series_slice(planned, "plain", "det", ["sku", "not_a_column"])
    with pytest.raises(PlanStoreError, match="no rows"):
        read_series_slice(planned, "unplanned", "det", ["sku"])


def test_a_level_read_in_slices_is_the_published_level_read_whole(planned):
    """The reference export reads a level slice by slice (issue 13: memory flat as plans grow): the
    slices, in order, are the whole level's rows, values and dtypes; a slice read stopped early
    leaves the store's connection usable (PostgreSQL streams one query's rows)."""
    for version, level in (("plain", "det"), ("tight", "mrp_final_adjusted"), ("tight", "det_adjusted")):
        whole = planned.read_series(version, level)
        assert len(whole) > 50
        slices = list(planned.read_series_batches(version, level, batch_rows=7))
        assert [len(s) for s in slices] == [7] * (len(whole) // 7) + ([len(whole) % 7] if len(whole) % 7 else [])
        pd.testing.assert_frame_equal(pd.concat(slices, ignore_index=True), whole)
        assert planned.level_attrs(version, level) == whole.attrs
        [single] = planned.read_series_batches(version, level, batch_rows=len(whole) + 1)
        pd.testing.assert_frame_equal(single, whole)
    det_rows = planned.series_levels("plain")["det"]
    with planned.reading():  # one connection for every call
        stopped = planned.read_series_batches("tight", "mrp_final_adjusted", batch_rows=5)
        assert len(next(stopped)) == 5
        stopped.close()
        assert len(planned.read_series("plain", "det")) == det_rows
    with pytest.raises(PlanStoreError, match="no rows"):
        next(planned.read_series_batches("unplanned", "det"))
    with pytest.raises(PlanStoreError, match="no rows"):
        planned.level_attrs("unplanned", "det")
    with pytest.raises(ValueError, match="at least 1"):
        next(planned.read_series_batches("plain", "det", batch_rows=0))
