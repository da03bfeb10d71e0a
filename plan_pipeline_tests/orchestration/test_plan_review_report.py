"""The ``plan_review_report`` asset: written after ``published_plan`` under the store's home with
its path and chart count in the metadata; a frozen version's run skips it and stays green."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.definitions import build_definitions
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline_tests.exports.report_helpers import assert_non_trivial_png, embedded_png, parse_page

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres

KEY = dg.AssetKey("plan_review_report")


def _materializations(instance, version):
    return [r.asset_materialization for r in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=[version]), limit=10).records]


def test_the_report_asset_writes_under_the_store_home_and_a_frozen_run_keeps_it(plan_env, sample_dir):
    store = plan_env.store
    instance = plan_env.instance()
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    outcome = materialize_version(instance, store, "v1")
    assert outcome.success, outcome.errors

    (materialization,) = _materializations(instance, "v1")
    meta = materialization.metadata
    report = store.files_home / "reports" / "v1" / "report.html"  # the DuckDB file's folder, or the home on PostgreSQL
    assert store.files_home == plan_env.home.resolve()
    assert isinstance(meta["report_path"], dg.PathMetadataValue) and meta["report_path"].value == str(report)
    assert meta["charts"].value == 3
    assert meta["chart_files"].value == ["family_month.png", "weekly_load.png", "inventory_top_skus.png"]
    page = parse_page(report)
    assert f"<dd>{outcome.run_id}</dd>" in report.read_text(encoding="utf-8")
    for image in page.images:
        assert embedded_png(image) == (report.parent / image["data-file"]).read_bytes()
        assert_non_trivial_png(report.parent / image["data-file"])

    # approved: the plan run over it ends green, skips the report step, and leaves the report as it was
    before = {p.name: p.read_bytes() for p in report.parent.iterdir()}
    store.transition_status("v1", "submitted")
    store.transition_status("v1", "approved")
    result = build_definitions(store_url=store.location.url).resolve_job_def("plan_job").execute_in_process(
        partition_key="v1", instance=instance, raise_on_error=False)
    assert result.success
    skipped = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED}
    assert "plan_review_report" in skipped and "published_plan" in skipped
    assert {p.name: p.read_bytes() for p in report.parent.iterdir()} == before
    latest = _materializations(instance, "v1")[0]
    assert latest.metadata["plan_state"].value.startswith("frozen (status approved)")
