"""What a planner reads in the Dagster UI: percent and unit metadata, table previews with a column
schema on every plan table, per-family summaries, owners/tags/code versions on every asset, and the
WARN business checks with their thresholds (``plan_targets``).

One plan run of the bundled sample (anchor branch on, so every stage writes rows) is shared by the
module; the expected values are computed here from the rows the store published, not taken from
the code under test.
"""
from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from plan_pipeline.definitions import build_definitions
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.common import PLAN_OWNERS
from plan_pipeline.orchestration.plan.assets.stages import stage_level_keys
from plan_pipeline.orchestration.plan.code_versions import code_version, planning_closure, planning_code_version
from plan_pipeline.orchestration.plan.planner_metadata import PREVIEW_ROWS
from plan_pipeline.orchestration.plan.targets import PlanTargets
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import COLUMN_DESCRIPTIONS, SCORECARD_LEVEL
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE

pytestmark = pytest.mark.both_backends  # a home on DuckDB, or PostgreSQL with --store-backend=postgres

VERSION = "anchored"
WARN_CHECKS = {"fill_rate_meets_target", "backlog_not_growing", "leveled_utilization_within_capacity"}
RELAXED = {"fill_rate_target": 0.9, "max_utilization": 1.4, "backlog_growth_periods": 4}


@pytest.fixture(scope="module")
def planned(homes, tmp_path_factory):
    """The sample planned twice (default targets, then relaxed targets given as launchpad config),
    in a home of the session (only read by the tests; on PostgreSQL dropped at the session's end)."""
    store = homes.new(tmp_path_factory.mktemp("planner_metadata") / "home").store
    import_input_dir(store, BUNDLED_SAMPLE, "sample")
    params = PlanningParameters(preset="det_near", cutover_date="2025-03-12", apply_adjusted=True)
    store.create_version(VERSION, "sample", params)
    store.create_version("relaxed", "sample", params)
    job = build_definitions(store_url=store.location.url).resolve_job_def("plan_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("plan_version", [VERSION, "relaxed"])
        default = job.execute_in_process(partition_key=VERSION, instance=instance)
        relaxed = job.execute_in_process(
            partition_key="relaxed", instance=instance,
            run_config={"resources": {"plan_targets": {"config": RELAXED}}})
        assert default.success and relaxed.success
        yield store, instance, default, relaxed


def _metadata(instance, asset: str, version: str = VERSION) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[version]), limit=1).records
    return records[0].asset_materialization.metadata


def _checks(result, asset: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey(asset)}


def _rows(table_value) -> pd.DataFrame:
    return pd.DataFrame([record.data for record in table_value.records])


# ------------------------------------------------------------------------------------ percent and units
def test_report_kpis_read_as_percent_and_units(planned):
    store, instance, _, _ = planned
    kpis = store.read_kpis(VERSION, "report")
    total = kpis[(kpis["category"] == "plan") & (kpis["bucket_type"] == "total")].set_index("metric")["value"]
    capacity = kpis[(kpis["category"] == "capacity") & (kpis["metric"] == "utilization")]
    meta = _metadata(instance, "plan_report")
    fill = total["fill_rate"]
    assert 0.9 < fill < 0.95  # the sample misses 95 %
    assert meta["kpi/fill_rate_percent"].value == pytest.approx(round(100 * fill, 2))
    assert meta["kpi/fill_rate"].value == f"{100 * fill:.1f} %" == "92.5 %"
    assert meta["kpi/backlog_total_units"].value == total["backlog_total"]
    assert meta["kpi/demand_total_units"].value == total["demand_total"]
    peak = capacity["value"].max()
    assert meta["max_utilization_percent"].value == pytest.approx(round(100 * peak, 2))
    assert meta["max_utilization"].value == f"{100 * peak:.1f} %"
    assert meta["max_utilization_week"].value == capacity.loc[capacity["value"].idxmax(), "bucket_key"]
    assert meta["weeks_over_100_percent"].value == int((capacity["value"] > 1).sum()) > 0
    # the monthly table: fill rate in percent, backlog in units
    months = _rows(meta["by_month"]).set_index("period")
    stored = kpis[(kpis["category"] == "plan") & (kpis["bucket_type"] == "month")]
    for metric, column, scale in (("fill_rate", "fill_rate_percent", 100.0), ("backlog_total", "backlog_units", 1.0)):
        expected = stored[stored["metric"] == metric].set_index("bucket_key")["value"]
        assert months[column].to_dict() == pytest.approx((scale * expected).round(6 if scale == 1 else 2).to_dict())
    # the published plan repeats the headline KPIs
    published = _metadata(instance, "published_plan")
    assert published["kpi/fill_rate"].value == "92.5 %"
    assert published["kpi/backlog_total_units"].value == total["backlog_total"]


def test_capacity_summary_reads_as_units_and_percent(planned):
    store, instance, _, _ = planned
    weekly = store.read_series(VERSION, "weekly_summary")
    meta = _metadata(instance, "capacity_weekly_summary")
    assert meta["capacity_total_units"].value == pytest.approx(weekly["capacity"].sum())
    assert meta["leveled_load_total_units"].value == pytest.approx(weekly["adjusted_load"].sum())
    utilization = weekly["adjusted_load"].sum() / weekly["capacity"].sum()
    assert meta["horizon_utilization_percent"].value == pytest.approx(round(100 * utilization, 2))
    assert meta["horizon_utilization"].value == f"{100 * utilization:.1f} %"
    assert meta["weeks_over_capacity"].value == int((weekly["adjusted_load"] > weekly["capacity"]).sum())
    assert meta["horizon_weeks"].value == len(weekly)
    inputs = store.load_input_set("sample")
    by_resource = _rows(meta["capacity_by_resource"]).set_index("workcenter")["capacity_units"]
    assert by_resource.to_dict() == pytest.approx(inputs.capacity.groupby("workcenter")["capacity"].sum().to_dict())


# ------------------------------------------------------------------------------------ tables
def test_every_plan_table_has_a_preview_and_a_column_schema(planned):
    store, instance, _, _ = planned
    levels = stage_level_keys()
    assert len(levels) == 15
    for level, key in levels.items():
        frame = (store.read_kpis(VERSION, level).drop(columns=["level", "source", "source_run_id"])
                 if level.startswith("report") or level == SCORECARD_LEVEL else store.read_series(VERSION, level))
        meta = _metadata(instance, key.to_user_string())
        schema = meta["dagster/column_schema"].schema
        assert [c.name for c in schema.columns] == list(frame.columns), level
        assert all(c.description == COLUMN_DESCRIPTIONS[c.name] for c in schema.columns), level
        types = {c.name: c.type for c in schema.columns}
        for column in frame.columns:
            if pd.api.types.is_float_dtype(frame[column]):
                assert types[column] == "float", (level, column)
        preview = meta["preview"]
        assert isinstance(preview, dg.TableMetadataValue)
        assert len(preview.records) == min(PREVIEW_ROWS, len(frame)), level
        if not len(frame):  # the anchor carryover of the sample moves nothing: a schema, no rows
            assert level == "carryover"
            continue
        first = preview.records[0].data
        for column, value in frame.iloc[0].items():
            if isinstance(value, float) and not np.isnan(value):
                assert first[column] == pytest.approx(value, abs=1e-6), (level, column)
            elif value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
                assert first[column] is None, (level, column)
            else:
                assert str(first[column]) == str(value), (level, column)
    published = _metadata(instance, "published_plan")
    listed = _rows(published["published_levels"]).set_index("level")
    assert listed["rows"].to_dict() == published["levels"].value
    assert set(listed["asset"]) == {key.to_user_string() for key in levels.values()}
    assert [c.name for c in published["dagster/column_schema"].schema.columns] == ["level", "asset", "rows", "state"]


def test_family_summaries_add_up_to_the_stored_rows(planned):
    store, instance, _, _ = planned
    aggregate = store.read_series(VERSION, "aggregate")
    by_family = _rows(_metadata(instance, "aggregate_plan")["by_family"]).set_index("family")
    sums = aggregate.groupby("family")[["demand", "supply", "backlog"]].sum()
    for column in ("demand", "supply", "backlog"):
        assert by_family[f"{column}_units"].to_dict() == pytest.approx(sums[column].to_dict())
    expected_fill = (100 * np.minimum(1, sums["supply"] / sums["demand"])).round(2)
    assert by_family["fill_rate_percent"].to_dict() == pytest.approx(expected_fill.to_dict())
    rows = store.read_series(VERSION, "mrp_final")
    inputs = store.load_input_set("sample")
    family_of = dict(zip(inputs.mix_share["sku"], inputs.mix_share["family"]))
    fg = rows[rows["item"].isin(family_of)]
    load = fg.groupby(fg["item"].map(family_of))[["planned_order_release", "planned_order_release_adj"]].sum()
    by_family_load = _rows(_metadata(instance, "capacity_plan")["load_by_family"]).set_index("family")
    assert by_family_load["original_load_units"].to_dict() == pytest.approx(load["planned_order_release"].to_dict())
    assert by_family_load["leveled_load_units"].to_dict() == pytest.approx(load["planned_order_release_adj"].to_dict())
    assert by_family_load["load_share_percent"].sum() == pytest.approx(100, abs=0.05)


# ------------------------------------------------------------------------------------ owners, tags, code versions
def test_every_asset_has_owners_tags_and_a_code_version():
    graph = build_definitions(None).resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    assert len(keys) == 19
    versions = {}
    for key in keys:
        node = graph.get(key)
        assert list(node.owners) == PLAN_OWNERS, key
        assert node.tags["domain"] == "planning" and node.tags["stage"], key
        assert node.code_version, key
        versions[key.to_user_string()] = node.code_version
    # one stage, one version; a stage's version is its planning modules' hash (with what they import)
    assert versions["capacity_plan"] == versions["capacity_weekly_summary"] == versions["adjusted_capacity_plan"]
    assert versions["capacity_plan"] == planning_code_version("capacity", "frames")
    # the aggregate stage applies the aggregate-grain edits (planning/overrides.py) too
    assert versions["aggregate_plan"] == planning_code_version("aggregate", "overrides") != versions["capacity_plan"]
    assert versions["published_plan"] == code_version()
    assert graph.get(dg.AssetKey("adjusted_mrp_plan")).tags["chain"] == "anchored"
    assert graph.get(dg.AssetKey("mrp_plan")).tags["chain"] == "plain"
    assert versions["plan_scorecard"] == planning_code_version("kpis")
    assert "chain" not in graph.get(dg.AssetKey("plan_scorecard")).tags  # it reads whichever chain is final


def test_a_stage_code_version_follows_the_planning_modules_it_imports():
    assert "calendar" in planning_closure(("capacity",)) and "rounding" in planning_closure(("capacity",))
    assert "mrp" not in planning_closure(("aggregate",)) and "capacity" not in planning_closure(("aggregate",))


# ------------------------------------------------------------------------------------ WARN checks
def test_warn_checks_fire_on_the_sample_with_the_numbers(planned):
    store, _, default, _ = planned
    aggregate = store.read_series(VERSION, "aggregate")
    checks = _checks(default, "aggregate_plan")
    assert checks["aggregate_conserves_capacity"].passed
    # fill rate below the 95 % target
    fill = checks["fill_rate_meets_target"]
    rate = aggregate["supply"].sum() / aggregate["demand"].sum()
    periods = aggregate.groupby("period")[["demand", "supply", "backlog"]].sum()
    below = sorted(periods.index[periods["supply"] / periods["demand"] < 0.95])
    assert fill.severity == dg.AssetCheckSeverity.WARN and not fill.passed
    assert fill.metadata["fill_rate_percent"].value == pytest.approx(round(100 * rate, 2))
    assert fill.metadata["target"].value == "95.0 %"
    assert fill.metadata["periods_below_target"].value == len(below) == 5
    assert _rows(fill.metadata["periods_below_target_table"])["period"].tolist() == below
    assert "92.5 % is below the target 95.0 %" in fill.description
    # backlog growing: the longest run of consecutive rises of the total backlog per period
    backlog = periods["backlog"].to_numpy()
    run, longest, end = 0, 0, 0
    for i in range(1, len(backlog)):
        run = run + 1 if backlog[i] > backlog[i - 1] else 0
        if run > longest:
            longest, end = run, i
    growth = checks["backlog_not_growing"]
    assert growth.severity == dg.AssetCheckSeverity.WARN and not growth.passed
    assert growth.metadata["longest_growth_periods"].value == longest == 3
    assert growth.metadata["growth_span"].value == f"{periods.index[end - longest]} -> {periods.index[end]}"
    assert growth.metadata["backlog_growth_units"].value == backlog[end] - backlog[end - longest]
    assert growth.metadata["threshold_periods"].value == 3


@pytest.mark.parametrize(("asset", "level"), [("capacity_weekly_summary", "weekly_summary"),
                                               ("adjusted_weekly_summary", "weekly_summary_adjusted")])
def test_utilization_warning_names_the_weeks_and_why(planned, asset, level):
    store, _, default, _ = planned
    weekly = store.read_series(VERSION, level)
    checks = _checks(default, asset)
    assert checks["leveling_conserves_load"].passed and checks["capacity_respected"].passed
    util = np.round(weekly["adjusted_load"] / weekly["capacity"], 6)
    over = weekly[util > 1.0]
    result = checks["leveled_utilization_within_capacity"]
    assert result.severity == dg.AssetCheckSeverity.WARN and not result.passed
    table = _rows(result.metadata["weeks_over_target_table"])
    assert table["week"].tolist() == over["week"].tolist() and len(over) >= 15
    assert result.metadata["weeks_over_target"].value == len(over)
    assert result.metadata["max_utilization_percent"].value == pytest.approx(round(100 * util.max(), 2))
    assert result.metadata["max_utilization_week"].value == weekly.loc[util.idxmax(), "week"]
    assert result.metadata["threshold_utilization"].value == "100.0 %"
    # the reason, in numbers: the excess over the week's own capacity is carried slack, the rest rounding
    excess = (over["adjusted_load"] - over["capacity"]).to_numpy()
    by_slack = np.minimum(excess, over["carried_slack_in"].to_numpy())
    assert table["over_capacity_units"].to_numpy() == pytest.approx(excess, abs=1e-6)
    assert table["covered_by_slack_units"].to_numpy() == pytest.approx(by_slack, abs=1e-6)
    assert table["covered_by_rounding_units"].to_numpy() == pytest.approx(excess - by_slack, abs=1e-6)
    # rounding never adds more than half a unit per finished good released that week (int rounding)
    assert (table["covered_by_rounding_units"] <= 0.5 * table["fg_items_released"] + 1e-6).all()
    slack_weeks = table[table["covered_by_slack_units"] > 1e-6]
    assert len(slack_weeks) and slack_weeks["reason"].str.startswith("slack carried from earlier weeks").all()
    assert f"{len(over)} week(s) over 100.0 % utilization" in result.description
    assert "carries unused capacity of earlier weeks forward" in result.description


def test_warn_checks_pass_with_relaxed_targets_from_the_launchpad(planned):
    store, _, _, relaxed = planned
    aggregate = _checks(relaxed, "aggregate_plan")
    capacity = _checks(relaxed, "capacity_weekly_summary")
    for check in (aggregate["fill_rate_meets_target"], aggregate["backlog_not_growing"],
                  capacity["leveled_utilization_within_capacity"]):
        assert check.passed and check.severity == dg.AssetCheckSeverity.WARN, check.check_name
    assert aggregate["fill_rate_meets_target"].metadata["target"].value == "90.0 %"
    assert aggregate["backlog_not_growing"].metadata["threshold_periods"].value == 4
    assert capacity["leveled_utilization_within_capacity"].metadata["threshold_utilization"].value == "140.0 %"
    assert capacity["leveled_utilization_within_capacity"].metadata["weeks_over_target"].value == 0
    # the same numbers as the default run: targets judge a plan, they never change it
    pd.testing.assert_frame_equal(store.read_series("relaxed", "mrp_final"), store.read_series(VERSION, "mrp_final"))


def test_plan_targets_are_described_in_the_launchpad():
    job = build_definitions(None).resolve_job_def("plan_job")
    resources = job.run_config_schema.config_type.fields["resources"].config_type
    fields = resources.fields["plan_targets"].config_type.fields["config"].config_type.fields
    defaults = PlanTargets()
    for name in ("fill_rate_target", "max_utilization", "backlog_growth_periods"):
        assert fields[name].description, name
        assert fields[name].default_value == getattr(defaults, name)
    assert (defaults.fill_rate_target, defaults.max_utilization, defaults.backlog_growth_periods) == (0.95, 1.0, 3)
    with pytest.raises(Exception, match="fill_rate_target"):
        PlanTargets(fill_rate_target=1.5)


def test_materializations_record_the_code_version_the_ui_compares(planned):
    _, instance, _, _ = planned
    graph = build_definitions(None).resolve_asset_graph()
    for key in (dg.AssetKey("aggregate_plan"), dg.AssetKey("capacity_weekly_summary"), dg.AssetKey("published_plan")):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[VERSION]), limit=1).records
        assert records[0].asset_materialization.tags["dagster/code_version"] == graph.get(key).code_version
