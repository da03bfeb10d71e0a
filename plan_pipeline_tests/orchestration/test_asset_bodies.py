"""The plan stage assets called directly (no run, no IO manager): what each body returns and the
check results it yields, on the bundled sample in a real plan store (DuckDB, or PostgreSQL with --store-backend=postgres).

Runs test the wiring (plan_pipeline_tests/orchestration/test_published_plan.py, e2e); these pin
what the bodies themselves do with their inputs, so a change inside one shows up here first.
"""
from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.aggregate_plan import aggregate_plan
from plan_pipeline.orchestration.plan.assets.detail_plan import detail_plan
from plan_pipeline.orchestration.plan.assets.planning_inputs import planning_inputs
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.targets import PlanTargets
from plan_pipeline.orchestration.replanning.stale_drafts import CODE_VERSION_KEY, INPUT_FINGERPRINT_KEY
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.overrides import aggregate_key, detail_key
from plan_pipeline.planning.parameters import PlanningParameters

pytestmark = pytest.mark.both_backends  # the store fixture: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def sample_version(store, sample_dir):
    import_input_dir(store, sample_dir, "s")
    store.create_version("v1", "s", PlanningParameters(round_mode="int"))
    return PlanStoreResource(store_url=store.location.url)


def _outputs_and_checks(events) -> tuple[list[dg.Output], dict[str, dg.AssetCheckResult]]:
    events = list(events)
    outputs = [e for e in events if isinstance(e, dg.Output)]
    checks = {e.check_name: e for e in events if isinstance(e, dg.AssetCheckResult)}
    assert len(outputs) + len(checks) == len(events), events
    return outputs, checks


def _planning_inputs(context) -> VersionPlanInputs:
    """The body's one output (it is a generator: a frozen version yields no output)."""
    events = list(planning_inputs(context))
    assert len(events) == 1 and isinstance(events[0], dg.Output), events
    return events[0].value


def _inputs(resource: PlanStoreResource) -> VersionPlanInputs:
    context = dg.build_asset_context(partition_key="v1", resources={"plan_store": resource})
    return _planning_inputs(context)


def test_planning_inputs_reads_the_version_and_describes_it(sample_version, sample_dir):
    context = dg.build_asset_context(partition_key="v1", resources={"plan_store": sample_version})
    loaded = _planning_inputs(context)
    assert loaded.version_id == "v1" and loaded.input_set == "s"
    assert loaded.params == PlanningParameters(round_mode="int")
    assert len(loaded.inputs.demand_family) == len(pd.read_csv(sample_dir / "demand_family.csv"))
    metadata = context.get_output_metadata("result")
    assert metadata["input_set"] == "s"
    assert metadata["rows"].value["demand_family"] == len(loaded.inputs.demand_family)
    assert metadata["parameters"].value == PlanningParameters(round_mode="int").to_dict()
    assert metadata[CODE_VERSION_KEY] and metadata[INPUT_FINGERPRINT_KEY]


def test_planning_inputs_names_a_version_the_store_does_not_know(sample_version):
    context = dg.build_asset_context(partition_key="nope", resources={"plan_store": sample_version})
    with pytest.raises(dg.Failure, match="nope") as raised:
        list(planning_inputs(context))
    assert raised.value.description == (
        "plan version 'nope' is not recorded in the plan store: create it with the create_plan_version job "
        "(Launchpad) or `plan-pipeline version create --version-id nope --input-set LABEL`")
    assert raised.value.allow_retries is False


def test_planning_inputs_of_a_frozen_version_records_it_and_yields_no_output(sample_version):
    store = sample_version.get_store()
    store.transition_status("v1", "submitted")
    store.transition_status("v1", "approved")
    context = dg.build_asset_context(partition_key="v1", resources={"plan_store": sample_version})
    (event,) = list(planning_inputs(context))  # no Output: Dagster skips every stage downstream
    assert isinstance(event, dg.AssetMaterialization)
    assert event.asset_key == dg.AssetKey("planning_inputs") and event.partition == "v1"
    assert event.metadata["plan_state"].value == "frozen (status approved): nothing to do, stored rows unchanged"
    assert event.metadata["plan/version_status"].value == "approved" and event.metadata["input_set"].value == "s"


def test_aggregate_plan_returns_the_stage_frame_and_a_passing_check(sample_version):
    loaded = _inputs(sample_version)
    outputs, checks = _outputs_and_checks(
        aggregate_plan(planning_inputs=loaded, plan_targets=PlanTargets(), plan_store=sample_version))
    assert len(outputs) == 1
    pd.testing.assert_frame_equal(outputs[0].value, plan_aggregate(loaded.inputs, loaded.params))
    check = checks["aggregate_conserves_capacity"]
    assert check.passed
    assert check.metadata["periods"].value == outputs[0].value["period"].nunique() > 0


def test_aggregate_plan_applies_an_aggregate_demand_edit_and_a_pinned_supply(sample_version):
    store = sample_version.get_store()
    loaded = _inputs(sample_version)
    computed = plan_aggregate(loaded.inputs, loaded.params)
    first, second = computed.iloc[0], computed.iloc[1]
    store.record_override("v1", "agg", aggregate_key(first["period"], first["family"]),
                          {"demand": float(first["demand"]) + 40.0})
    store.record_override("v1", "agg", aggregate_key(second["period"], second["family"]), {"supply": 0.0}, lock=True)
    outputs, checks = _outputs_and_checks(
        aggregate_plan(planning_inputs=loaded, plan_targets=PlanTargets(), plan_store=sample_version))
    frame = outputs[0].value
    assert frame["demand"].iat[0] == float(first["demand"]) + 40.0
    assert frame["backlog"].iat[0] == max(0.0, frame["demand"].iat[0] - frame["supply"].iat[0])
    assert (frame["supply"].iat[1], frame["backlog"].iat[1]) == (0.0, float(second["demand"]))
    assert outputs[0].metadata["overrides"].value == 2 and outputs[0].metadata["edited_rows"].value == 1
    assert outputs[0].metadata["locked_rows"].value == 1
    check = checks["aggregate_conserves_capacity"]
    assert check.passed and check.metadata["pinned_periods"].value == 1


def test_detail_plan_applies_a_planner_edit_and_keeps_its_checks_green(sample_version):
    store = sample_version.get_store()
    loaded = _inputs(sample_version)
    aggregate = plan_aggregate(loaded.inputs, loaded.params)
    computed = plan_detail(aggregate, loaded.inputs, loaded.params)
    row = computed.iloc[0]
    store.record_override("v1", "det", detail_key(row["week"], row["sku"], row["period"]),
                          {"demand": float(row["demand"]) + 13.0}, lock=True)

    outputs, checks = _outputs_and_checks(
        detail_plan(aggregate_plan=aggregate, planning_inputs=loaded, plan_store=sample_version))
    frame = outputs[0].value
    edited = frame[(frame["week"] == row["week"]) & (frame["sku"] == row["sku"]) & (frame["period"] == row["period"])]
    assert edited["demand"].tolist() == [float(row["demand"]) + 13.0]
    # every other row is the stage's own result
    others = frame.drop(edited.index)
    expected = computed.drop(computed.index[0])
    assert others["demand"].tolist() == expected["demand"].tolist()
    assert outputs[0].metadata["overrides"].value == 1 and outputs[0].metadata["edited_rows"].value == 1
    assert checks["detail_conserves_aggregate"].passed
    assert checks["detail_conserves_aggregate"].metadata["edited_groups"].value == 1
    assert checks["detail_locks_respected"].passed
    assert checks["detail_locks_respected"].metadata["locked_rows"].value == 1
