"""Plan versions from the Dagster UI: the create / duplicate jobs, the sensor that plans the new
version, the refusal of a partition without a version, and frozen versions whose runs end green
without touching their data or check history. Real runs on a real (temporary) Dagster instance."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import dagster as dg
import pytest

from plan_pipeline.definitions import build_definitions
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.planning_inputs import FROZEN_STATE, VERSION_STATUS_KEY
from plan_pipeline.orchestration.plan.assets.stages import STAGE_ASSET_KEYS
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.orchestration.plan.partitions import PLAN_VERSION_PARTITIONS_NAME, plan_version_partitions
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG, VERSION_TAG
from plan_pipeline.orchestration.versions.sensors import plan_created_versions
from plan_pipeline.planning.overrides import detail_key
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline_tests.reliability.cli_process import assert_same_plan, plan_snapshot

pytestmark = pytest.mark.both_backends  # a home on DuckDB, or PostgreSQL with --store-backend=postgres

PLANNING_INPUTS = dg.AssetKey("planning_inputs")
ALL_PLAN_KEYS = [PLANNING_INPUTS, *STAGE_ASSET_KEYS, dg.AssetKey("published_plan"), dg.AssetKey("baseline_comparison")]


@pytest.fixture
def location(homes, tmp_path, sample_dir, monkeypatch, request):
    home = homes.new(tmp_path / "home", request.addfinalizer)
    home.apply(monkeypatch)  # the code location's store (CLI runs use it)
    store = home.store
    import_input_dir(store, sample_dir, "sample")
    defs = build_definitions(store_url=store.location.url)
    with dg.instance_for_test() as instance:
        yield SimpleNamespace(store=store, defs=defs, instance=instance)


def _launch(location, job: str, config: dict) -> dg.ExecuteInProcessResult:
    op = f"{job}_op"
    return location.defs.resolve_job_def(job).execute_in_process(
        run_config={"ops": {op: {"config": config}}}, instance=location.instance, raise_on_error=False)


def _plan(location, version: str) -> dg.ExecuteInProcessResult:
    return location.defs.resolve_job_def("plan_job").execute_in_process(
        partition_key=version, instance=location.instance, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult, step: str):
    """The step's ``dg.Failure`` as recorded (description, metadata)."""
    (event,) = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    return event.step_failure_data.user_failure_data


def _partitions(location) -> list[str]:
    return location.instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME)


# ------------------------------------------------------------------------------------------ create
def test_create_plan_version_records_the_version_registers_the_partition_and_tags_its_run(location):
    result = _launch(location, "create_plan_version", {
        "input_set": "sample", "version_id": "q3-promo", "note": "promo",
        "parameters": {"round_mode": "int", "fallback_weeks": 6}})
    assert result.success
    record = location.store.get_version("q3-promo")
    assert (record.input_set, record.status, record.source, record.note) == ("sample", "draft", "ui", "promo")
    assert record.params == PlanningParameters(round_mode="int", fallback_weeks=6)
    assert _partitions(location) == ["q3-promo"]
    run = location.instance.get_run_by_id(result.run_id)
    assert run.tags[VERSION_TAG] == "q3-promo"
    (materialization,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = materialization.step_output_data.metadata
    assert meta["plan_version"].value == "q3-promo" and meta["input_set"].value == "sample"
    assert meta["status"].value == "draft" and "plan run follows" in meta["next"].value
    table = {r.data["parameter"]: r.data["value"] for r in meta["parameters"].value.records}
    assert table["round_mode"] == "int" and table["fallback_weeks"] == "6"


def test_a_blank_version_id_is_generated_like_the_cli_does(location, monkeypatch):
    from plan_pipeline.store import versions

    monkeypatch.setattr(versions, "generated_version_id", lambda: "v20250101-000000")
    location.store.create_version("v20250101-000000", "sample", PlanningParameters())
    result = _launch(location, "create_plan_version", {"input_set": "sample"})
    assert result.success
    assert result.output_for_node("create_plan_version_op") == "v20250101-000000-2"
    assert location.store.get_version("v20250101-000000-2").params == PlanningParameters()


@pytest.mark.parametrize(("config", "message"), [
    ({"input_set": "sample", "version_id": "bad", "parameters": {"week_days": 0}},
     "plan version not created: invalid parameters, nothing was written: week_days"),
    ({"input_set": "nope", "version_id": "bad"},
     "plan version not created, nothing was written: unknown input set 'nope'; import it first"),
    ({"input_set": "sample", "version_id": "../etc"},
     "plan version not created, nothing was written: invalid version id '../etc'"),
])
def test_bad_config_is_refused_in_one_line_and_nothing_is_written(location, config, message):
    result = _launch(location, "create_plan_version", config)
    assert not result.success
    failure = _failure(result, "create_plan_version_op")
    assert failure.description.startswith(message) and "\n" not in failure.description
    assert location.store.list_versions() == [] and _partitions(location) == []
    assert VERSION_TAG not in location.instance.get_run_by_id(result.run_id).tags


def test_an_invalid_choice_is_refused_by_the_launchpad_config_itself(location):
    with pytest.raises(dg.DagsterInvalidConfigError, match="round_mode"):
        _launch(location, "create_plan_version", {"input_set": "sample", "parameters": {"round_mode": "up"}})
    assert location.store.list_versions() == []


# ------------------------------------------------------------------------------------------ duplicate
def test_duplicate_carries_input_set_parameters_and_planner_edits_with_overrides(location):
    store = location.store
    store.create_version("base", "sample", PlanningParameters(round_mode="int", fallback_weeks=6))
    key = detail_key("2025-W02", "BK-100", None)
    store.record_override("base", "det", key, {"demand": 3.0}, lock=True, actor="ana")
    store.transition_status("base", "submitted")
    store.transition_status("base", "approved")  # duplicating an approved plan is how it is re-planned
    result = _launch(location, "duplicate_plan_version", {
        "source_version": "base", "version_id": "base-v2", "parameter_overrides": {"round_mode": "dec1"}})
    assert result.success
    copy = store.get_version("base-v2")
    assert (copy.input_set, copy.status, copy.read_only) == ("sample", "draft", False)
    assert copy.params == PlanningParameters(round_mode="dec1", fallback_weeks=6)
    assert store.detail_overrides("base-v2") == store.detail_overrides("base") == [
        {"key": key, "payload": {"demand": 3.0}, "locked": True}]
    events = store.read_override_events("base-v2")
    assert events["event_type"].tolist() == ["duplicate"]
    assert location.instance.get_run_by_id(result.run_id).tags[VERSION_TAG] == "base-v2"
    assert "base-v2" in _partitions(location)
    assert store.get_version("base").status == "approved"  # the source is untouched


def test_duplicate_refuses_an_unknown_source_and_bad_overrides_writing_nothing(location):
    location.store.create_version("base", "sample", PlanningParameters())
    result = _launch(location, "duplicate_plan_version", {"source_version": "ghost"})
    assert _failure(result, "duplicate_plan_version_op").description == (
        "plan version not duplicated, nothing was written: unknown plan version 'ghost'")
    result = _launch(location, "duplicate_plan_version",
                     {"source_version": "base", "version_id": "b2", "parameter_overrides": {"week_days": 9}})
    assert _failure(result, "duplicate_plan_version_op").description.startswith(
        "plan version not duplicated: invalid parameters, nothing was written: week_days")
    assert [v.version_id for v in location.store.list_versions()] == ["base"]


# ------------------------------------------------------------------------------------------ sensor
def test_the_sensor_requests_the_plan_run_of_the_new_version_from_the_run_tags(location):
    result = _launch(location, "create_plan_version", {"input_set": "sample", "version_id": "q3"})
    run = location.instance.get_run_by_id(result.run_id)
    context = dg.build_run_status_sensor_context(
        sensor_name="plan_created_versions", dagster_instance=location.instance, dagster_run=run,
        dagster_event=location.instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records[0].event_log_entry.dagster_event,
    )
    request = plan_created_versions(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "q3"
    assert request.tags == {VERSION_TAG: "q3", TRIGGER_TAG: "create_plan_version"}
    assert request.run_key == f"create_plan_version:{result.run_id}"
    assert plan_created_versions.job_name == "plan_job"
    assert plan_created_versions.default_status == dg.DefaultSensorStatus.RUNNING


# ------------------------------------------------------------------------------------------ unknown partition
def test_a_partition_added_by_hand_is_refused_in_one_line_naming_the_create_job(location):
    location.instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, ["q3-promo"])
    result = _plan(location, "q3-promo")
    assert not result.success
    failure = _failure(result, "planning_inputs")
    assert failure.description == (
        "plan version 'q3-promo' is not recorded in the plan store: create it with the create_plan_version job "
        "(Launchpad) or `plan-pipeline version create --version-id q3-promo --input-set LABEL`")
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert failed == ["planning_inputs"]


# ------------------------------------------------------------------------------------------ frozen
def _check_evaluations(instance, run_id: str) -> int:
    return len(instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records)


def _statuses(instance, version: str) -> dict[str, object]:
    return {key.to_user_string(): instance.get_status_by_partition(key, [version], plan_version_partitions)[version]
            for key in ALL_PLAN_KEYS}


def _latest_planning_inputs(instance, version: str):
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PLANNING_INPUTS, asset_partitions=[version]), limit=1,
    ).records[0].asset_materialization.metadata


def test_runs_over_approved_and_imported_versions_end_green_and_change_nothing(location):
    store, instance = location.store, location.instance
    for version in ("gold", "old"):
        store.create_version(version, "sample", PlanningParameters())
        first = materialize_version(instance, store, version)  # records the run's end in the run ledger
        assert first.success and _check_evaluations(instance, first.run_id) > 0
    store.transition_status("gold", "submitted")
    store.transition_status("gold", "approved")
    with store.connect() as con:  # what a legacy import leaves: imported, read-only, no input set
        con.execute("UPDATE plan_versions SET status = ?, read_only = TRUE, input_set = NULL WHERE version_id = ?",
                    ["imported", "old"])
    before = {v: (plan_snapshot(store, v), store.publication(v), store.series_levels(v)) for v in ("gold", "old")}
    statuses = {v: _statuses(instance, v) for v in ("gold", "old")}
    assert all(s == dg.AssetPartitionStatus.MATERIALIZED for v in statuses.values() for s in v.values())

    for version, status in (("gold", "approved"), ("old", "imported"), ("gold", "superseded")):
        if status == "superseded":
            store.transition_status("gold", "superseded")
        result = _plan(location, version)
        assert result.success, version
        executed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
        assert executed == {"planning_inputs"}
        assert "published_plan" in skipped and "detail_plan" in skipped and "anchored_detail_plan" in skipped
        assert "baseline_comparison" in skipped
        assert not [e for e in result.all_events if e.is_step_failure]
        assert _check_evaluations(instance, result.run_id) == 0
        # the run records itself as finished although its last steps were skipped (no hook runs for
        # a skipped step): no repair run is needed for it
        assert store.get_job(result.run_id)["status"] == "success"
        assert instance.get_run_by_id(result.run_id).tags["plan/ledger"] == "success"
        meta = _latest_planning_inputs(instance, version)
        assert meta["plan_state"].value == FROZEN_STATE.format(status=status)
        assert meta[VERSION_STATUS_KEY].value == status
        assert _statuses(instance, version) == statuses[version]  # never FAILED, still materialized
        for key in ALL_PLAN_KEYS[1:]:  # each stage: "frozen: nothing to do", naming the plan that stays
            stage = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[version]), limit=1).records[0]
            assert stage.run_id == result.run_id
            assert stage.asset_materialization.metadata["plan_state"].value == FROZEN_STATE.format(status=status)
            assert stage.asset_materialization.metadata["published_by_runs"].value == before[version][1]["runs"]

    for version, (snapshot, publication, levels) in before.items():
        assert_same_plan(store, version, snapshot)
        assert store.publication(version) == publication
        assert store.series_levels(version) == levels
    gold_meta = _latest_planning_inputs(instance, "gold")
    assert gold_meta["input_set"].value == "sample" and gold_meta["content_hash"].value
    table = {r.data["parameter"]: r.data["value"] for r in gold_meta["parameter_table"].value.records}
    assert table["round_mode"] == PlanningParameters().round_mode


def test_every_plan_run_shows_the_version_status_input_set_and_parameters(location):
    location.store.create_version("d1", "sample", PlanningParameters(round_mode="int"))
    location.instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, ["d1"])
    assert _plan(location, "d1").success
    meta = _latest_planning_inputs(location.instance, "d1")
    assert meta[VERSION_STATUS_KEY].value == "draft"
    assert meta["plan_state"].value == "draft: planned by this run"
    assert meta["input_set"].value == "sample"
    assert meta["content_hash"].value == location.store.get_input_set("sample")["content_hash"]
    assert meta["parameters"].value == PlanningParameters(round_mode="int").to_dict()
    table = {r.data["parameter"]: r.data["value"] for r in meta["parameter_table"].value.records}
    assert table["round_mode"] == "int"


def test_an_all_partitions_backfill_over_frozen_and_draft_versions_completes_green(homes, tmp_path, sample_dir,
                                                                                    monkeypatch, request):
    """What the UI's "Materialize" of every plan asset over every partition does: an asset backfill,
    run here by the backfill daemon's own iteration on a real instance and code location."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.backfill import execute_backfill_iteration

    home = homes.new(tmp_path / "home", request.addfinalizer)
    home.apply(monkeypatch)  # the code location below resolves its store from the environment
    store = home.store
    import_input_dir(store, sample_dir, "sample")
    overrides = {
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        for version in ("gold", "old", "d1"):
            store.create_version(version, "sample", PlanningParameters())
        instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, ["d1"])
        for version in ("gold", "old"):
            assert materialize_version(instance, store, version).success
        store.transition_status("gold", "submitted")
        store.transition_status("gold", "approved")
        with store.connect() as con:
            con.execute("UPDATE plan_versions SET status = ?, read_only = TRUE, input_set = NULL WHERE version_id = ?",
                        ["imported", "old"])
        before = {v: plan_snapshot(store, v) for v in ("gold", "old")}
        target = ModuleTarget(module_name="plan_pipeline.definitions", attribute="defs",
                              working_directory=str(tmp_path), location_name="plan_pipeline")
        with create_test_daemon_workspace_context(target, instance) as workspace:
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id="all-versions", asset_graph=workspace.create_request_context().asset_graph,
                backfill_timestamp=0.0, tags={}, asset_selection=ALL_PLAN_KEYS,
                partition_names=["gold", "old", "d1"], dynamic_partitions_store=instance, all_partitions=False,
                title=None, description=None, run_config=None)
            instance.add_backfill(backfill)
            for _ in range(10):
                list(execute_backfill_iteration(workspace, logging.getLogger("backfill")))
                if instance.get_backfill("all-versions").status != BulkActionStatus.REQUESTED:
                    break
        assert instance.get_backfill("all-versions").status == BulkActionStatus.COMPLETED_SUCCESS
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": "all-versions"}))
        assert sorted((r.tags["dagster/partition"], r.status) for r in runs) == [
            (v, dg.DagsterRunStatus.SUCCESS) for v in ("d1", "gold", "old")]
        for version in ("gold", "old", "d1"):
            statuses = _statuses(instance, version)
            assert set(statuses.values()) == {dg.AssetPartitionStatus.MATERIALIZED}, (version, statuses)
        for version, snapshot in before.items():
            assert_same_plan(store, version, snapshot)
        assert store.publication("d1")["complete"]
