"""Runs the CLI launches belong to the code location ``dagster dev -w workspace.yaml`` serves:
they carry its origin, show up with the job's runs, and re-execute from it as the UI does it
(the code location loaded from workspace.yaml, a re-executed run launched by the instance's run
launcher in a fresh process that resolves the store from the environment)."""
from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from plan_pipeline.cli.main import main
from plan_pipeline.operations.legacy_backfill import list_backfill_runs
from plan_pipeline.orchestration.code_location import (
    CODE_LOCATION_MODULE,
    CODE_LOCATION_NAME,
    REPOSITORY_NAME,
    remote_job_origin,
)
from plan_pipeline.orchestration.legacy_import.jobs import LEGACY_IMPORT_JOB_NAME
from plan_pipeline.orchestration.plan.jobs import PLAN_JOB_NAME
from plan_pipeline_tests.conftest import PROJECT_ROOT
from plan_pipeline_tests.operations.legacy_helpers import legacy_dir

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres (the re-executed run's process too)

WORKSPACE = PROJECT_ROOT / "workspace.yaml"
REPOSITORY_LABEL = f"{REPOSITORY_NAME}@{CODE_LOCATION_NAME}"
RUN_WAIT_SECONDS = 600  # a bound on waiting for the re-executed run, not a timing assertion


def test_the_origin_is_the_one_workspace_yaml_gives():
    origins = WorkspaceFileTarget(paths=[str(WORKSPACE)]).create_origins()
    assert [(o.location_name, o.loadable_target_origin.module_name) for o in origins] == [
        (CODE_LOCATION_NAME, CODE_LOCATION_MODULE)]
    from plan_pipeline.definitions import defs

    assert defs.get_repository_def().name == REPOSITORY_NAME
    origin = remote_job_origin(PLAN_JOB_NAME)
    assert origin.location_name == CODE_LOCATION_NAME and origin.job_name == PLAN_JOB_NAME
    assert origin.repository_origin.get_label() == REPOSITORY_LABEL


def test_ui_outside_the_repository_serves_the_same_code_location(plan_env, tmp_path, monkeypatch):
    """``plan-pipeline ui`` without a workspace.yaml at hand writes one into $DAGSTER_HOME that
    loads the same code location under the same name (CLI runs stay on it)."""
    launched = {}

    def fake_exec(path, argv, environ):
        launched["argv"] = argv

    monkeypatch.setattr("os.execvpe", fake_exec)
    assert main(["ui", "--workspace", str(tmp_path / "absent.yaml")]) == 0
    argv = launched["argv"]
    written = Path(argv[argv.index("-w") + 1])
    assert written == plan_env.dagster_home / "workspace.yaml"
    ours = WorkspaceFileTarget(paths=[str(written)]).create_origins()
    repo = WorkspaceFileTarget(paths=[str(WORKSPACE)]).create_origins()
    assert [(o.location_name, o.loadable_target_origin.module_name) for o in ours] == [
        (o.location_name, o.loadable_target_origin.module_name) for o in repo]


def _only_run_on_location(instance: dg.DagsterInstance, job_name: str) -> dg.DagsterRun:
    """The one run of ``job_name`` in the job's Runs tab (the UI filters by the repository label)."""
    records = instance.get_run_records(dg.RunsFilter(job_name=job_name, tags={REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}))
    assert len(records) == 1, [r.dagster_run.run_id for r in records]
    assert len(instance.get_run_records(dg.RunsFilter(job_name=job_name))) == 1  # no run off the location
    run = records[0].dagster_run
    origin = run.remote_job_origin
    assert origin is not None
    assert (origin.location_name, origin.repository_origin.repository_name, origin.job_name) == (
        CODE_LOCATION_NAME, REPOSITORY_NAME, job_name)
    assert run.tags["dagster/code_location"] == CODE_LOCATION_NAME
    return run


def _reexecute_from_workspace(instance: dg.DagsterInstance, parent: dg.DagsterRun) -> dg.DagsterRun:
    """Re-execute ``parent`` the way the UI's "Re-execute all" does: from the code location loaded
    from workspace.yaml, launched by the instance's run launcher (a run worker process)."""
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)])) as workspace:
        context = workspace.create_request_context()
        name = parent.remote_job_origin.location_name
        assert context.get_code_location_error(name) is None, context.get_code_location_error(name)
        location = context.get_code_location(name)
        repository = location.get_repository(parent.remote_job_origin.repository_origin.repository_name)
        remote_job = repository.get_full_job(parent.job_name)
        child = instance.create_reexecuted_run(
            request_context=context, parent_run=parent, code_location=location, remote_job=remote_job,
            strategy=ReexecutionStrategy.ALL_STEPS, use_parent_run_tags=True,
        )
        instance.launch_run(child.run_id, context)
        deadline = time.monotonic() + RUN_WAIT_SECONDS
        run = instance.get_run_by_id(child.run_id)
        while not run.is_finished:
            assert time.monotonic() < deadline, f"re-executed run {child.run_id} still {run.status}"
            time.sleep(1.0)
            run = instance.get_run_by_id(child.run_id)
    return run


def _failure_text(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                            dg.DagsterEventType.RUN_FAILURE}).records
    return "\n".join(r.event_log_entry.message or "" for r in records)


def test_cli_plan_run_is_on_the_code_location_and_re_executes_from_it(plan_env, sample_dir: Path, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "sample"]) == 0
    assert main(["version", "create", "--input-set", "sample", "--version-id", "v1"]) == 0
    assert main(["materialize", "v1"]) == 0
    instance = plan_env.instance()
    parent = _only_run_on_location(instance, PLAN_JOB_NAME)
    assert parent.status == dg.DagsterRunStatus.SUCCESS
    assert (parent.tags["plan/version"], parent.tags["plan/trigger"], parent.tags["dagster/partition"]) == (
        "v1", "cli", "v1")
    assert "resources" not in parent.run_config  # the store is the code location's, never pinned in config
    store = plan_env.store
    assert set(store.read_series_rows("v1", "aggregate")["source_run_id"]) == {parent.run_id}

    child = _reexecute_from_workspace(instance, parent)
    assert child.status == dg.DagsterRunStatus.SUCCESS, _failure_text(instance, child.run_id)
    assert child.parent_run_id == parent.run_id
    assert child.remote_job_origin.location_name == CODE_LOCATION_NAME
    assert child.tags["plan/version"] == "v1" and child.tags["dagster/partition"] == "v1"
    # the re-executed run, in its own process, planned v1 again in the same store
    assert set(store.read_series_rows("v1", "aggregate")["source_run_id"]) == {child.run_id}
    runs = instance.get_run_records(dg.RunsFilter(job_name=PLAN_JOB_NAME, tags={REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}))
    assert {r.dagster_run.run_id for r in runs} == {parent.run_id, child.run_id}


def test_cli_legacy_import_run_is_on_the_code_location_and_re_executes_from_it(reference_dir, plan_env, capsys):
    assert main(["legacy-import", "--source", str(legacy_dir())]) == 0
    instance = plan_env.instance()
    parent = _only_run_on_location(instance, LEGACY_IMPORT_JOB_NAME)
    assert parent.status == dg.DagsterRunStatus.SUCCESS and parent.tags["plan/trigger"] == "cli"
    store = plan_env.store
    imported = {v.version_id for v in store.list_versions()}
    assert len(imported) == 4

    child = _reexecute_from_workspace(instance, parent)
    assert child.status == dg.DagsterRunStatus.SUCCESS, _failure_text(instance, child.run_id)
    assert child.parent_run_id == parent.run_id
    # the re-execution ran the same import on the same store: everything is already there
    runs = list_backfill_runs(store).set_index("run_id")
    assert runs.loc[child.run_id, "status"] == "success"
    assert (runs.loc[child.run_id, "versions_imported"], runs.loc[child.run_id, "versions_skipped"]) == (0, 4)
    assert {v.version_id for v in store.list_versions()} == imported
