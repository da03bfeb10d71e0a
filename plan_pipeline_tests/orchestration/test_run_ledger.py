"""Every run of the code location records itself in the run ledger (``plan_jobs``), from within the
run; the repair sensor requests a recording run only for runs that could not."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.definitions import build_definitions
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.instance import POSTGRES_STORE_POOL_LIMIT
from plan_pipeline.orchestration.plan.run_ledger import (
    LEDGER_REPAIR_JOB_NAME,
    LEDGER_TAG,
    TRIGGER_TAG,
    VERSION_TAG,
    needs_recording,
)
from plan_pipeline.orchestration.plan.run_ledger_hooks import RUN_LEDGER_HOOKS, PoolBusy, pool_slot, with_run_ledger
from plan_pipeline.orchestration.plan.sensors import ledger_mismatches, run_ledger_repair_sensor
from plan_pipeline.planning.types import PlanningParameters

pytestmark = pytest.mark.both_backends  # store / plan_env: DuckDB, or PostgreSQL with --store-backend=postgres

TRIM_DRY_RUN = {"ops": {"plan_store_trim_op": {"config": {"dry_run": True}}}}


@pytest.fixture
def ledger(store, sample_dir):
    """A plan store with version v1 over the sample, the code location bound to it, a test instance."""
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    defs = build_definitions(store_url=store.location.url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("plan_version", ["v1"])
        yield store, defs, instance


def _tags(instance, run_id):
    return dict(instance.get_run_by_id(run_id).tags)


def test_a_ui_plan_run_records_success_and_gets_its_version_and_trigger_tags(ledger):
    store, defs, instance = ledger
    result = defs.resolve_job_def("plan_job").execute_in_process(partition_key="v1", instance=instance)
    assert result.success
    row = store.get_job(result.run_id)
    assert (row["version_id"], row["job_name"], row["status"], row["trigger"]) == ("v1", "plan_job", "success", "ui")
    assert row["error"] is None and row["started_at"] <= row["finished_at"] and row["duration_ms"] >= 0
    tags = _tags(instance, result.run_id)
    assert (tags[VERSION_TAG], tags[TRIGGER_TAG], tags[LEDGER_TAG]) == ("v1", "ui", "success")
    # the run recorded itself: the repair sensor has nothing to do
    assert not needs_recording(instance, instance.get_run_record_by_id(result.run_id))
    assert len(store.list_jobs()) == 1


def test_a_failed_step_records_failure_with_the_error_text(ledger):
    store, defs, instance = ledger
    with store.connect() as con:  # corrupt a parameter behind the store's back
        con.execute("UPDATE plan_versions SET round_mode = ? WHERE version_id = ?", ["bogus", "v1"])
    result = defs.resolve_job_def("plan_job").execute_in_process(
        partition_key="v1", instance=instance, raise_on_error=False)
    assert not result.success
    row = store.get_job(result.run_id)
    assert row["status"] == "failure" and row["version_id"] == "v1"
    assert "[planning_inputs]" in row["error"]
    assert "round_mode: 'bogus' is not one of none, int, dec1, dec2" in row["error"]
    assert row["finished_at"] is not None
    assert _tags(instance, result.run_id)[LEDGER_TAG] == "failure"
    assert not needs_recording(instance, instance.get_run_record_by_id(result.run_id))


def test_a_run_of_a_partition_with_no_version_is_refused_and_still_recorded(ledger):
    store, defs, instance = ledger
    instance.add_dynamic_partitions("plan_version", ["q3-promo"])
    result = defs.resolve_job_def("plan_job").execute_in_process(
        partition_key="q3-promo", instance=instance, raise_on_error=False)
    assert not result.success
    assert store.find_version("q3-promo") is None
    row = store.get_job(result.run_id)
    assert (row["version_id"], row["status"], row["trigger"]) == ("q3-promo", "failure", "ui")
    assert "'q3-promo'" in row["error"] and "Traceback" not in row["error"]
    assert _tags(instance, result.run_id)[VERSION_TAG] == "q3-promo"


def test_a_subset_run_records_success_after_its_own_last_step(ledger):
    store, defs, instance = ledger
    result = defs.resolve_job_def("plan_job").execute_in_process(
        partition_key="v1", instance=instance,
        asset_selection=[dg.AssetKey("planning_inputs"), dg.AssetKey("aggregate_plan")])
    assert result.success
    assert {e.step_key for e in result.all_events if e.is_step_success} == {"planning_inputs", "aggregate_plan"}
    row = store.get_job(result.run_id)
    assert (row["status"], row["version_id"]) == ("success", "v1")


def test_an_asset_backfill_run_gets_version_and_trigger_tags(ledger):
    store, defs, instance = ledger
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.name == "__ASSET_JOB"
    result = job.execute_in_process(
        partition_key="v1", instance=instance, tags={"dagster/backfill": "bkfl1"},
        asset_selection=[dg.AssetKey("planning_inputs"), dg.AssetKey("aggregate_plan")])
    assert result.success
    tags = _tags(instance, result.run_id)
    assert (tags[VERSION_TAG], tags[TRIGGER_TAG], tags[LEDGER_TAG]) == ("v1", "backfill", "success")
    row = store.get_job(result.run_id)
    assert (row["job_name"], row["trigger"], row["status"], row["version_id"]) == (
        "__ASSET_JOB", "backfill", "success", "v1")


def test_an_op_job_run_has_a_row_without_version(ledger):
    store, defs, instance = ledger
    result = defs.resolve_job_def("plan_store_trim").execute_in_process(run_config=TRIM_DRY_RUN, instance=instance)
    assert result.success
    row = store.get_job(result.run_id)
    assert (row["job_name"], row["version_id"], row["status"], row["trigger"]) == (
        "plan_store_trim", None, "success", "ui")
    tags = _tags(instance, result.run_id)
    assert VERSION_TAG not in tags and tags[TRIGGER_TAG] == "ui"
    assert store.find_version("v1") is not None  # the dry run removed nothing


def test_a_run_canceled_before_it_started_is_recorded_by_one_repair_run(ledger):
    store, defs, instance = ledger
    trim = defs.resolve_job_def("plan_store_trim")
    done = trim.execute_in_process(run_config=TRIM_DRY_RUN, instance=instance)  # records itself
    canceled = instance.create_run_for_job(trim, run_config=TRIM_DRY_RUN)
    instance.report_run_canceled(canceled, "canceled from the Runs page")
    assert store.get_job(canceled.run_id) is None
    context = dg.build_sensor_context(instance=instance)
    request = run_ledger_repair_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["repair_run_ledger_op"]["config"]["run_ids"] == [canceled.run_id]
    repair = defs.resolve_job_def(LEDGER_REPAIR_JOB_NAME).execute_in_process(
        run_config=request.run_config, instance=instance, tags={"dagster/sensor_name": "run_ledger_repair_sensor"})
    assert repair.success
    row = store.get_job(canceled.run_id)
    assert (row["status"], row["job_name"], row["version_id"]) == ("canceled", "plan_store_trim", None)
    assert store.get_job(done.run_id)["status"] == "success"
    # the repair run records itself; the next evaluations find nothing to request
    assert (store.get_job(repair.run_id)["status"], store.get_job(repair.run_id)["trigger"]) == ("success", "sensor")
    again = run_ledger_repair_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(again, dg.SkipReason)
    assert ledger_mismatches(instance, None)[0] == []


def test_a_run_whose_final_status_was_not_recorded_is_a_mismatch(ledger):
    _store, defs, instance = ledger
    result = defs.resolve_job_def("plan_store_trim").execute_in_process(run_config=TRIM_DRY_RUN, instance=instance)
    instance.add_run_tags(result.run_id, {LEDGER_TAG: "started"})  # as if the last hook never wrote
    assert ledger_mismatches(instance, None)[0] == [result.run_id]


def test_the_hooks_hold_a_duckdb_pool_slot_and_wait_for_it(plan_env, store_backend):
    # the project's instance: pool 'duckdb' limit 1 (one DuckDB writer), 8 for a PostgreSQL plan store
    instance = plan_env.instance()
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("duckdb")
    limit = storage.get_concurrency_info("duckdb").slot_count
    assert limit == (POSTGRES_STORE_POOL_LIMIT if store_backend == "postgres" else 1)
    others = [(f"other-run-{i}", "mrp_plan") for i in range(limit)]  # every slot held by other runs' steps
    for run_id, step in others:
        assert storage.claim_concurrency_slot("duckdb", run_id, step).is_claimed
    with pytest.raises(PoolBusy), pool_slot(instance, "my-run", "step:run_ledger", wait_seconds=0):
        pass
    for run_id, step in others:
        storage.free_concurrency_slot_for_step(run_id, step)
    with pool_slot(instance, "my-run", "step:run_ledger", wait_seconds=0) as claimed:
        assert claimed
        holders = {(s.run_id, s.step_key) for s in storage.get_concurrency_info("duckdb").claimed_slots}
        assert holders == {("my-run", "step:run_ledger")}
    assert not storage.get_concurrency_info("duckdb").claimed_slots


def test_every_step_of_every_job_carries_the_hooks_also_for_jobs_added_later():
    @dg.op
    def later_op():
        return 1

    @dg.job(name="added_later")
    def added_later():
        later_op()

    schedule = dg.ScheduleDefinition(name="later_daily", job=added_later, cron_schedule="0 1 * * *")
    defs = with_run_ledger(dg.Definitions.merge(
        build_definitions("unused.duckdb"), dg.Definitions(jobs=[added_later], schedules=[schedule])))
    from dagster._core.definitions.dependency import NodeHandle

    names = set()
    for job in defs.resolve_all_job_defs():
        names.add(job.name)
        for node in job.graph.node_dict:
            hooks = set(job.get_all_hooks_for_handle(NodeHandle(node, None)) or ())
            assert hooks >= RUN_LEDGER_HOOKS, (job.name, node)
    assert {"added_later", "plan_job", "__ASSET_JOB", "plan_store_trim"} <= names
    assert defs.resolve_schedule_def("later_daily").job_name == "added_later"
