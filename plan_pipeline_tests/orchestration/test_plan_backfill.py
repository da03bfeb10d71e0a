"""``plan-pipeline runs backfill V1 V2 ...`` stores a Dagster partition backfill of every plan asset
for those versions (what the daemon launches; the cluster test runs one end to end), and refuses
versions that cannot be planned without submitting anything."""
from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from plan_pipeline.cli.main import main
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.code_location import reconstructable_job
from plan_pipeline.orchestration.plan.partitions import PLAN_VERSION_PARTITIONS_NAME
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres


def test_runs_backfill_submits_a_partition_backfill_of_the_plan_assets(plan_env, capsys):
    store = plan_env.store
    import_input_dir(store, BUNDLED_SAMPLE, "sample")
    for version in ("b1", "b2"):
        store.create_version(version, "sample", PlanningParameters())
    assert main(["runs", "backfill", "b2", "b1", "b2", "--title", "two"]) == 0
    backfill_id = capsys.readouterr().out.strip()
    instance = dg.DagsterInstance.get()
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None and backfill.is_asset_backfill and backfill.title == "two"
    assert backfill.status == BulkActionStatus.REQUESTED
    target = backfill.asset_backfill_data.target_subset
    plan_assets = set(reconstructable_job("plan_job").get_definition().asset_layer.executable_asset_keys)
    assert set(target.asset_keys) == plan_assets and len(plan_assets) >= 15
    assert {p for key in plan_assets for p in target.get_partitions_subset(key).get_partition_keys()} == {"b1", "b2"}
    assert set(instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME)) >= {"b1", "b2"}


def test_runs_backfill_refuses_an_unknown_version_and_submits_nothing(plan_env, capsys):
    store = plan_env.store
    import_input_dir(store, BUNDLED_SAMPLE, "sample")
    store.create_version("b1", "sample", PlanningParameters())
    assert main(["runs", "backfill", "b1", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert dg.DagsterInstance.get().get_backfills() == []


def test_runs_backfill_refuses_a_frozen_version_with_the_store_rule(plan_env, capsys):
    store = plan_env.store
    import_input_dir(store, BUNDLED_SAMPLE, "sample")
    for version in ("b1", "b2"):
        store.create_version(version, "sample", PlanningParameters())
    store.transition_status("b2", "submitted", actor="ann")
    store.transition_status("b2", "approved", actor="bob")
    assert main(["runs", "backfill", "b1", "b2"]) == 1
    err = capsys.readouterr().err
    assert "'b2' is approved: its plan is frozen and cannot be backfilled" in err and "no backfill submitted" in err
    assert dg.DagsterInstance.get().get_backfills() == []
