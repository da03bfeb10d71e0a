"""The legacy_import Dagster job, its schedule and the ``plan-pipeline legacy-import`` command
(old spelling ``backfill``, kept as an alias)."""
from __future__ import annotations

import argparse

import dagster as dg
import pytest

from plan_pipeline.cli.commands_legacy_import import register_legacy_import_commands
from plan_pipeline.operations.legacy_backfill import get_backfill_run, list_backfill_runs
from plan_pipeline.orchestration.legacy_import.jobs import (
    LEGACY_IMPORT_JOB_NAME,
    LEGACY_IMPORT_JOBS,
    LEGACY_IMPORT_OP_NAME,
    LEGACY_IMPORT_SCHEDULES,
    LEGACY_SOURCE_ENV,
    legacy_import_schedule,
)
from plan_pipeline.orchestration.legacy_import.launch import run_legacy_import_in_process
from plan_pipeline.orchestration.plan.assets.stages import stage_level_keys
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.orchestration.plan.partitions import PLAN_VERSION_PARTITIONS_NAME
from plan_pipeline_tests.operations.legacy_helpers import (
    LEGACY_VERSIONS,
    legacy_db,
    legacy_dir,
    sqlite_exec,
    writable_db_copy,
)

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres


def materializations(instance, asset: str, version: str):
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[version]), limit=100)
    return [r.asset_materialization for r in result.records]


def test_job_and_schedule_load_beside_the_plan_assets():
    from plan_pipeline.definitions import PLAN_ASSETS, build_resources

    defs = dg.Definitions(assets=PLAN_ASSETS, jobs=LEGACY_IMPORT_JOBS, schedules=LEGACY_IMPORT_SCHEDULES,
                          resources=build_resources(None))
    job = defs.resolve_job_def(LEGACY_IMPORT_JOB_NAME)
    assert {node.definition.pool for node in job.graph.nodes} == {"duckdb"}
    schedule = defs.resolve_schedule_def(legacy_import_schedule.name)
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == LEGACY_IMPORT_JOB_NAME
    keys = stage_level_keys()
    assert keys["aggregate"] == dg.AssetKey("aggregate_plan") and keys["report"] == dg.AssetKey("plan_report")
    assert keys["weekly_summary"] == dg.AssetKey("capacity_weekly_summary")


def test_job_registers_partitions_and_records_imported_materializations(reference_dir, plan_env):
    instance = plan_env.instance()
    result = run_legacy_import_in_process(instance, plan_env.store, str(legacy_dir()))
    assert result.success
    summary = result.summary
    assert (summary["status"], summary["versions_imported"]) == ("success", 4)
    assert set(instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME)) == set(LEGACY_VERSIONS)

    store = plan_env.store
    row = get_backfill_run(store, result.run_id)  # run_id = the Dagster run id
    assert (row["status"], row["versions_imported"], bool(row["dry_run"])) == ("success", 4, False)

    for asset in ("aggregate_plan", "detail_plan", "mrp_plan", "capacity_plan", "capacity_weekly_summary",
                  "level_reconciliation", "plan_report"):
        assert set(LEGACY_VERSIONS) <= instance.get_materialized_partitions(dg.AssetKey(asset)), asset
    mats = materializations(instance, "aggregate_plan", "legacy-dec2")
    assert len(mats) == 1
    meta = mats[0].metadata
    assert meta["imported"].value is True
    assert meta["source"].value == f"legacy:{legacy_db()}"
    assert meta["dagster/row_count"].value == store.series_levels("legacy-dec2")["aggregate"] == 24
    assert meta["plan_level"].value == "aggregate" and meta["legacy_origin"].value == "aggregate.json"
    report_meta = materializations(instance, "plan_report", "legacy-default")[0].metadata
    assert report_meta["plan_table"].value == "plan_kpis"
    assert report_meta["dagster/row_count"].value == len(store.read_kpis("legacy-default", "report"))
    # the anchor branch of the det_near version is marked too; versions without it are not
    assert materializations(instance, "anchored_detail_plan", "legacy-tight-detnear")
    assert materializations(instance, "adjusted_plan_report", "legacy-tight-detnear")
    assert not materializations(instance, "anchored_detail_plan", "legacy-dec2")
    assert "legacy-dec2" not in instance.get_materialized_partitions(dg.AssetKey("planning_inputs"))
    # each import is the version's published plan
    published = materializations(instance, "published_plan", "legacy-dec2")[0].metadata
    publication = store.publication("legacy-dec2")
    assert published["imported"].value is True and published["published_runs"].value == publication["runs"]
    assert published["levels"].value == {**publication["levels"], **publication["kpi_levels"]}

    # a second run is a no-op: nothing imported, no new materializations
    again = run_legacy_import_in_process(instance, plan_env.store, str(legacy_dir()))
    assert again.success
    assert again.summary["versions_skipped"] == 4
    assert len(materializations(instance, "aggregate_plan", "legacy-dec2")) == 1
    assert len(list_backfill_runs(store)) == 2


def test_dry_run_job_registers_and_marks_nothing(reference_dir, plan_env):
    instance = plan_env.instance()
    result = run_legacy_import_in_process(instance, plan_env.store, str(legacy_db()), dry_run=True)
    assert result.success
    summary = result.summary
    # what a dry run would do is reported under names that cannot be taken for work done
    assert summary["dry_run"] and summary["would_import_versions"] == 4 and summary["would_write_rows"] > 0
    assert (summary["versions_imported"], summary["rows_written"]) == (0, 0)
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    meta = output.event_specific_data.metadata  # the op output metadata reports the counts
    assert meta["dry_run"].value is True and meta["would_import_versions"].value == 4
    assert meta["would_write_rows"].value == summary["would_write_rows"] and meta["status"].value == "success"
    assert "versions_imported" not in meta and "rows_written" not in meta
    assert instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME) == []
    assert not materializations(instance, "aggregate_plan", "legacy-dec2")
    assert plan_env.store.list_versions() == []


def test_job_fails_when_nothing_could_be_imported(reference_dir, plan_env, tmp_path):
    db = writable_db_copy(tmp_path / "scpln_legacy.db")
    sqlite_exec(db, "DROP TABLE plan_versions")
    result = run_legacy_import_in_process(plan_env.instance(), plan_env.store, str(db))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "table plan_versions is missing" in failure.event_specific_data.user_failure_data.description
    assert get_backfill_run(plan_env.store, result.run_id)["status"] == "failed"


def test_a_partial_run_succeeds_and_marks_only_the_imported_versions(reference_dir, plan_env, tmp_path):
    db = writable_db_copy(tmp_path / "scpln_legacy.db")
    sqlite_exec(db, "UPDATE plan_artifacts SET json_text = 'oops' WHERE version_id = 'legacy-dec2' "
                    "AND name = 'aggregate.json'")
    instance = plan_env.instance()
    result = run_legacy_import_in_process(instance, plan_env.store, str(db))
    assert result.success
    summary = result.summary
    assert (summary["status"], summary["versions_imported"], summary["versions_failed"]) == ("partial", 3, 1)
    assert "legacy-dec2" not in instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME)
    assert not materializations(instance, "aggregate_plan", "legacy-dec2")


def test_schedule_skips_without_the_env_var_and_requests_a_run_with_it(homes, monkeypatch, tmp_path, request):
    from plan_pipeline.store.base import PlanStoreBase

    home = homes.new(tmp_path / "home", request.addfinalizer)
    home.apply(monkeypatch)
    opened = []  # every store connection this process opens (none: the store is never touched)
    original_connect = PlanStoreBase.connect

    def connect(store, *args, **kwargs):
        opened.append(store.location.url)
        return original_connect(store, *args, **kwargs)

    monkeypatch.setattr(PlanStoreBase, "connect", connect)
    monkeypatch.delenv(LEGACY_SOURCE_ENV, raising=False)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        skip = legacy_import_schedule(context)
        assert isinstance(skip, dg.SkipReason) and LEGACY_SOURCE_ENV in skip.skip_message

        monkeypatch.setenv(LEGACY_SOURCE_ENV, str(tmp_path / "missing"))
        skip = legacy_import_schedule(context)
        assert isinstance(skip, dg.SkipReason) and "does not exist" in skip.skip_message

        source = tmp_path / "legacy"
        source.mkdir()
        (source / "scpln_legacy.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
        monkeypatch.setenv(LEGACY_SOURCE_ENV, str(source))
        request = legacy_import_schedule(context)
        assert isinstance(request, dg.RunRequest)
        assert request.run_config == {"ops": {LEGACY_IMPORT_OP_NAME: {"config": {
            "source": str(source), "dry_run": False, "force": False}}}}
        assert request.tags["plan/trigger"] == "schedule"
        assert legacy_import_schedule(context).run_key == request.run_key  # unchanged source: same key
        (source / "scpln_legacy.db").write_bytes(b"SQLite format 3\x00" + b"\x01" * 200)
        assert legacy_import_schedule(context).run_key != request.run_key
    assert opened == [] and not home.db_path.exists()  # evaluating the schedule never opened the store


def cli(argv: list[str]):
    parser = argparse.ArgumentParser(prog="plan-pipeline")
    register_legacy_import_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_backfill_command_prints_a_summary(reference_dir, plan_env, capsys):
    args = cli(["legacy-import", "--source", str(legacy_dir()), "--dry-run"])
    assert args.func(plan_env, args) == 0
    text = capsys.readouterr().out
    assert "(dry run: nothing written)" in text and "would import  legacy-weekly" in text
    assert ("dry run, nothing written: would import 4 version(s) / 7191 rows; skipped 0, failed 0; "
            "status success") in text

    args = cli(["legacy-import", "--source", str(legacy_dir())])
    assert args.func(plan_env, args) == 0
    text = capsys.readouterr().out
    assert "imported 4 version(s) / 7191 rows; skipped 0, failed 0; status success" in text
    assert "also in folder" in text and "run " in text.splitlines()[0]

    assert args.func(plan_env, args) == 0
    text = capsys.readouterr().out
    assert "nothing to import" in text and "skipped       legacy-dec2" in text

    args = cli(["legacy-import", "--source", str(legacy_dir()), "--force", "--json"])
    assert args.func(plan_env, args) == 0
    assert '"versions_imported": 4' in capsys.readouterr().out

    args = cli(["legacy-import-runs"])
    assert args.func(plan_env, args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[0].startswith("run id")


def test_cli_backfill_failures_exit_1(reference_dir, plan_env, tmp_path, capsys, monkeypatch):
    args = cli(["legacy-import", "--source", str(tmp_path / "nope")])
    assert args.func(plan_env, args) == 1
    captured = capsys.readouterr()
    assert "does not exist" in captured.out and "failed" in captured.err
    monkeypatch.delenv(LEGACY_SOURCE_ENV, raising=False)
    from plan_pipeline.cli.main import CliError

    args = cli(["legacy-import"])
    with pytest.raises(CliError, match=LEGACY_SOURCE_ENV):
        args.func(plan_env, args)


def test_plan_pipeline_main_runs_the_legacy_import(reference_dir, plan_env, capsys):
    from plan_pipeline.cli.main import main

    assert main(["legacy-import", "--source", str(legacy_db()), "--dry-run"]) == 0
    assert "would import 4" in capsys.readouterr().out
    assert main(["legacy-import-runs"]) == 0
    # the old spellings stay as aliases
    assert main(["backfill", "--source", str(legacy_db()), "--dry-run"]) == 0
    assert "would import 4" in capsys.readouterr().out
    assert main(["backfill-runs"]) == 0


def test_an_imported_version_cannot_be_materialized(reference_dir, plan_env):
    """A run over an imported (frozen) version recomputes nothing and, since issue 11, ends green
    (a UI backfill over it must not mark the version failed): planning_inputs says it is frozen."""
    instance = plan_env.instance()
    assert run_legacy_import_in_process(instance, plan_env.store, str(legacy_db())).success
    store = plan_env.store
    before = store.read_series("legacy-dec2", "aggregate")

    def latest(asset: str):
        return instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=["legacy-dec2"]), limit=1).records[0]

    imported = latest("aggregate_plan").storage_id  # the legacy import reports the imported levels
    outcome = materialize_version(instance, store, "legacy-dec2")
    assert outcome.success, outcome.errors
    metadata = latest("planning_inputs").asset_materialization.metadata
    assert metadata["plan_state"].value == "frozen (status imported): nothing to do, stored rows unchanged"
    # the stage was skipped; its partition is recorded as frozen, the imported plan still published
    stage = latest("aggregate_plan")
    assert stage.storage_id != imported and stage.run_id == outcome.run_id
    assert stage.asset_materialization.metadata["plan_state"].value == metadata["plan_state"].value
    assert store.read_series("legacy-dec2", "aggregate").equals(before)
    assert store.series_levels("legacy-dec2")["aggregate"] == 24
