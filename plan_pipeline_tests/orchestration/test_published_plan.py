"""The ``published_plan`` asset: publication metadata, and the row guard applied after it."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres


def _published(instance, version):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("published_plan"), asset_partitions=[version]), limit=1).records
    return records[0].asset_materialization.metadata


def test_publication_metadata_names_the_run_and_the_levels(plan_env, sample_dir):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    outcome = materialize_version(plan_env.instance(), store, "v1")
    assert outcome.success, outcome.errors
    meta = _published(plan_env.instance(), "v1")
    assert meta["published_runs"].value == [outcome.run_id]
    assert meta["levels"].value == store.series_levels("v1") | store.publication("v1")["kpi_levels"]
    assert meta["dagster/row_count"].value == sum(meta["levels"].value.values())
    assert sorted(meta["not_applicable"].value) == sorted(store.publication("v1")["not_applicable"]) != []
    assert "row_guard" not in meta  # PLANS_DB_MAX_ROWS unset: the guard is off


def test_row_guard_runs_after_a_publication(plan_env, sample_dir, monkeypatch, tmp_path):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    for vid in ("old", "kept", "new"):
        store.create_version(vid, "sample", PlanningParameters())
    assert materialize_version(plan_env.instance(), store, "old").success
    assert materialize_version(plan_env.instance(), store, "kept").success
    store.transition_status("kept", "submitted")
    store.transition_status("kept", "approved")
    per_plan = sum(store.series_levels("old").values())
    monkeypatch.setenv("PLANS_DB_MAX_ROWS", str(2 * per_plan))
    monkeypatch.setenv("PLAN_PIPELINE_HOME", str(tmp_path / "home"))
    outcome = materialize_version(plan_env.instance(), store, "new")
    assert outcome.success, outcome.errors
    # 'old' was archived then removed; the approved 'kept' and the just-published 'new' stay
    assert {v.version_id for v in store.list_versions()} == {"kept", "new"}
    assert store.tombstone("old")["reason"]
    meta = _published(plan_env.instance(), "new")
    assert [v["version_id"] for v in meta["row_guard_versions_removed"].value] == ["old"]
    assert meta["row_guard_rows_after"].value == 2 * per_plan and meta["row_guard_within_limit"].value
    assert "old" not in plan_env.instance().get_dynamic_partitions("plan_version")
