"""IO manager round trips through Dagster, and run ids mapped onto plan_jobs."""
from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from plan_pipeline.definitions import defs
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.io_managers import PLAN_LEVEL, PlanSeriesIOManager
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.orchestration.plan.partitions import plan_version_partitions, register_version_partition
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStoreError

pytestmark = pytest.mark.both_backends  # plan_env / store: DuckDB, or PostgreSQL with --store-backend=postgres


def test_definitions_load_with_partitions_pools_and_in_process_executor():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"planning_inputs", "aggregate_plan"} <= keys
    for key in repo.asset_graph.get_all_asset_keys():
        assert repo.asset_graph.get(key).partitions_def == plan_version_partitions
    job = defs.resolve_job_def("plan_job")
    pools = {node.name: node.definition.pool for node in job.graph.nodes}
    assert pools and all(pool == "duckdb" for pool in pools.values()), pools
    assert job.executor_def.name == "in_process"
    repair = defs.resolve_job_def("run_ledger_repair")
    assert {node.definition.pool for node in repair.graph.nodes} == {"duckdb"}


def test_io_manager_round_trip_keeps_dtypes(store):
    store_resource = PlanStoreResource(store_url=store.location.url)
    store = store_resource.get_store()
    store.create_version("v1", None, PlanningParameters())

    frame = pd.DataFrame({
        "week": ["2025-W01", "2025-W02", "2025-W03"],
        "capacity": [116.35944700460829, 100.0, 0.1 + 0.2],
        "original_load": [10.0, 20.0, 30.0],
        "carried_slack_in": [0.0, 1.5, 2.25],
        "spill_in": [0.0, 0.0, 1 / 3],
        "adjusted_load": [10.0, 20.0, 29.0],
        "spill_out": [0.0, 0.0, 1.0],
        "slack_carry_out": [0.0, 0.0, 0.0],
        "boundary_period": pd.array([None, True, True], dtype="boolean"),
        "boundary_index": pd.array([None, 1, 2], dtype="Int64"),
        "zone": ["pre", "at", "at"],
    })

    @dg.asset(partitions_def=plan_version_partitions, metadata={PLAN_LEVEL: "weekly_summary"},
              io_manager_key="plan_series_io_manager")
    def weekly() -> pd.DataFrame:
        return frame

    seen = {}

    @dg.asset(partitions_def=plan_version_partitions, io_manager_key="plan_series_io_manager",
              metadata={PLAN_LEVEL: "aggregate"})
    def downstream(weekly: pd.DataFrame) -> pd.DataFrame:
        seen["frame"] = weekly
        return pd.DataFrame({"family": ["F"], "period": ["2025-01"], "demand": [1.0], "supply": [1.0],
                             "backlog": [0.0], "capacity_total": [2.0]})

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("plan_version", ["v1"])
        result = dg.materialize(
            [weekly, downstream], partition_key="v1", instance=instance,
            resources={"plan_series_io_manager": PlanSeriesIOManager(plan_store=store_resource)},
        )
        assert result.success
        meta = result.asset_materializations_for_node("weekly")[0].metadata
        assert meta["dagster/row_count"].value == 3
        assert meta["plan_level"].value == "weekly_summary"
        assert [record.data["week"] for record in meta["preview"].records] == frame["week"].tolist()
        assert meta["dagster/column_schema"].schema.columns[0].name == "week"
        pd.testing.assert_frame_equal(seen.pop("frame"), frame)
        # the run staged its level: readers see nothing until the run is published
        assert store.level_state("v1", "weekly_summary", result.run_id) == "staged"
        with pytest.raises(PlanStoreError, match="no rows at level 'weekly_summary' in its published plan"):
            store.read_series("v1", "weekly_summary")
        pd.testing.assert_frame_equal(store.read_series("v1", "weekly_summary", run_id=result.run_id), frame)
        store.publish_run("v1", [result.run_id], ["weekly_summary", "aggregate"])
        # a later run that materializes only the downstream asset reads the published frame from the store
        again = dg.materialize(
            [weekly, downstream], selection=[downstream], partition_key="v1", instance=instance,
            resources={"plan_series_io_manager": PlanSeriesIOManager(plan_store=store_resource)},
        )
        assert again.success
    pd.testing.assert_frame_equal(seen["frame"], frame)
    pd.testing.assert_frame_equal(store.read_series("v1", "weekly_summary"), frame)
    rows = store.read_series_rows("v1", "weekly_summary")
    assert set(rows["source_run_id"]) == {result.run_id}
    assert rows["boundary_zone"].tolist() == ["pre", "at", "at"]


def _make_version(env, sample_dir, version_id="v1", **params):
    store = env.store
    if store.get_input_set("sample") is None:
        import_input_dir(store, sample_dir, "sample")
    store.create_version(version_id, "sample", PlanningParameters(**params))
    return store


def test_successful_run_is_a_plan_jobs_row_keyed_by_run_id(plan_env, sample_dir):
    store = _make_version(plan_env, sample_dir)
    instance = plan_env.instance()
    outcome = materialize_version(instance, store, "v1", trigger="cli")
    assert outcome.success, outcome.errors
    job = store.get_job(outcome.run_id)
    assert job is not None
    assert job["job_id"] == outcome.run_id and instance.get_run_by_id(outcome.run_id) is not None
    assert job["version_id"] == "v1" and job["status"] == "success" and job["trigger"] == "cli"
    assert job["started_at"] <= job["finished_at"] and job["duration_ms"] >= 0 and job["error"] is None
    assert job["job_name"] == "plan_job"
    # the rows written by the run carry its id
    assert set(store.read_series_rows("v1", "aggregate")["source_run_id"]) == {outcome.run_id}
    # the partition is registered in the instance, so the UI lists it
    assert "v1" in instance.get_dynamic_partitions("plan_version")


def test_failed_run_is_recorded_with_its_error(plan_env, sample_dir):
    store = _make_version(plan_env, sample_dir)
    with store.connect() as con:  # corrupt a parameter behind the store's back
        con.execute("UPDATE plan_versions SET round_mode = ? WHERE version_id = ?", ["bogus", "v1"])
    outcome = materialize_version(plan_env.instance(), store, "v1", trigger="cli")
    assert not outcome.success
    job = store.get_job(outcome.run_id)
    assert job["status"] == "failure"
    assert "round_mode: 'bogus' is not one of none, int, dec1, dec2" in job["error"]
    assert job["finished_at"] is not None


def test_trigger_comes_from_tags():
    from plan_pipeline.orchestration.plan.run_ledger import trigger_from_tags

    assert trigger_from_tags({"dagster/backfill": "abc", "plan/trigger": "x"}) == "x"
    assert trigger_from_tags({"dagster/backfill": "abc"}) == "backfill"
    assert trigger_from_tags({"dagster/schedule_name": "s"}) == "schedule"
    assert trigger_from_tags({"dagster/sensor_name": "s"}) == "sensor"
    assert trigger_from_tags({}) == "ui"
    # a re-execution copies its parent's tags: the copied trigger must not claim the new run
    assert trigger_from_tags({"dagster/parent_run_id": "p", "plan/trigger": "cli"}) == "reexecution"


def test_missing_run_tags_replace_a_copied_trigger():
    from plan_pipeline.orchestration.plan.run_ledger import missing_run_tags

    assert missing_run_tags({"dagster/partition": "v1"}) == {"plan/version": "v1", "plan/trigger": "ui"}
    assert missing_run_tags({"plan/version": "v1", "plan/trigger": "cli"}) == {}
    assert missing_run_tags({"plan/version": "v1", "plan/trigger": "cli", "dagster/parent_run_id": "p"}) == {
        "plan/trigger": "reexecution"}


def test_runs_record_themselves_so_the_repair_sensor_requests_nothing(plan_env, sample_dir):
    from plan_pipeline.definitions import build_definitions
    from plan_pipeline.orchestration.plan.sensors import run_ledger_repair_sensor

    store = _make_version(plan_env, sample_dir)
    instance = plan_env.instance()
    register_version_partition(instance, "v1")
    # a CLI run and a run launched elsewhere (UI, backfill, schedule) both record their final status
    cli = materialize_version(instance, store, "v1")
    job = build_definitions(store_url=store.location.url).resolve_job_def("plan_job")
    other = job.execute_in_process(partition_key="v1", instance=instance, tags={"plan/version": "v1"})
    assert store.get_job(cli.run_id)["status"] == "success" and store.get_job(cli.run_id)["trigger"] == "cli"
    row = store.get_job(other.run_id)
    assert row["status"] == "success" and row["trigger"] == "ui"
    request = run_ledger_repair_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(request, dg.SkipReason)
    assert not instance.get_run_records(filters=dg.RunsFilter(job_name="run_ledger_repair"))


def _check_evaluations(instance, run_id):
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return {r.event_log_entry.dagster_event.event_specific_data.check_name:
            r.event_log_entry.dagster_event.event_specific_data for r in records}


def test_every_asset_check_runs_and_every_error_check_passes_on_the_sample(plan_env, sample_dir):
    store = _make_version(plan_env, sample_dir, "full", preset="det_near", cutover_date="2025-03-12",
                          apply_adjusted=True)
    instance = plan_env.instance()
    outcome = materialize_version(instance, store, "full")
    assert outcome.success, outcome.errors
    evaluations = _check_evaluations(instance, outcome.run_id)
    declared = {key.name for key in defs.get_repository_def().asset_graph.asset_check_keys}
    assert set(evaluations) == declared
    failed = {name: e.metadata for name, e in evaluations.items()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert not failed
    # the plan misses its business targets on the sample: only the WARN checks say so
    warned = {name for name, e in evaluations.items() if not e.passed}
    assert warned == {"fill_rate_meets_target", "backlog_not_growing", "leveled_utilization_within_capacity"}
    assert {evaluations[name].severity for name in warned} == {dg.AssetCheckSeverity.WARN}
    # every level of the anchor branch was written
    assert {"det_adjusted", "carryover", "mrp_adjusted", "mrp_final_adjusted", "weekly_summary_adjusted",
            "level_reconciliation_adjusted"} <= set(store.series_levels("full"))
    assert store.has_kpis("full", "report_adjusted")


def test_anchor_branch_is_skipped_cleanly_for_a_plain_version(plan_env, sample_dir):
    store = _make_version(plan_env, sample_dir, "plain")
    instance = plan_env.instance()
    outcome = materialize_version(instance, store, "plain")
    assert outcome.success, outcome.errors
    assert set(store.series_levels("plain")) == {"aggregate", "det", "mrp", "mrp_final", "weekly_summary",
                                                  "level_reconciliation"}
    assert store.has_kpis("plain", "report") and not store.has_kpis("plain", "report_adjusted")
    evaluations = _check_evaluations(instance, outcome.run_id)
    assert all(e.passed for e in evaluations.values() if e.severity == dg.AssetCheckSeverity.ERROR)
    declared = {key.name for key in defs.get_repository_def().asset_graph.asset_check_keys}
    assert set(evaluations) == declared  # every check reports, the branch's as "not applicable"
    assert evaluations["anchored_locks_respected"].description.startswith("not applicable")
    # no step failed or was skipped: the branch materialized "not applicable" with no rows
    for kind in (dg.DagsterEventType.STEP_SKIPPED, dg.DagsterEventType.STEP_FAILURE):
        assert not instance.get_records_for_run(outcome.run_id, of_type=kind).records
    materializations = instance.get_records_for_run(
        outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    meta = {r.event_log_entry.dagster_event.asset_key.to_user_string():
            r.event_log_entry.dagster_event.event_specific_data.materialization.metadata for r in materializations}
    for key in ("anchored_detail_plan", "anchor_carryover", "anchored_level_reconciliation", "adjusted_mrp_plan",
                "adjusted_capacity_plan", "adjusted_weekly_summary", "adjusted_plan_report"):
        assert meta[key]["applicable"].value is False, key
        assert meta[key]["dagster/row_count"].value == 0
    assert all(e.partition == "plain" for e in evaluations.values())
