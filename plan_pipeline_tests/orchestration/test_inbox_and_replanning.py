"""Inbox sensor (validate -> import job -> plan run) and scheduled replanning of stale drafts."""
from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime

import dagster as dg
import pytest

from plan_pipeline.orchestration.inbox.sensor import ERRORS_FILE, inbox_sensor
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.orchestration.replanning.stale_drafts import (
    CODE_VERSION_KEY,
    code_version,
    replan_stale_drafts,
    stale_draft_versions,
)
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline_tests.operations.ops_helpers import make_version, operations_defs

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every store connection opened in this process (the store's location), in order."""
    connections: list[str] = []
    original = PlanStoreBase.connect

    def connect(self, *args, **kwargs):
        connections.append(self.location.url)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PlanStoreBase, "connect", connect)
    return connections


@pytest.fixture
def inbox(plan_env, monkeypatch):
    monkeypatch.setenv("PLAN_PIPELINE_INBOX_SETTLE_SECONDS", "0")
    folder = plan_env.home / "inbox"
    folder.mkdir(parents=True)
    return folder


def _evaluate(instance, defs, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
    result = inbox_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_valid_folder_is_imported_then_planned(plan_env, inbox, sample_dir, opened):
    folder = inbox / "april-plan"
    shutil.copytree(sample_dir, folder)
    (folder / "plan_parameters.json").write_text(json.dumps({"round": "dec1", "note": "from the inbox"}))
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)

    first = _evaluate(instance, defs)
    assert opened == [], "the sensor never opens the store"
    (request,) = first.run_requests
    assert request.job_name == "inbox_import"
    config = request.run_config["ops"]["inbox_import_op"]["config"]
    version = config["version_id"]
    assert version.startswith("april-plan-") and config["label"].startswith("april-plan-")
    assert request.tags["plan/trigger"] == "inbox" and request.tags["plan/version"] == version
    assert not plan_env.db_path.exists(), "the sensor never opens the store"

    waiting = _evaluate(instance, defs, first.cursor)  # the import has not run yet
    assert waiting.run_requests == []

    imported = defs.resolve_job_def("inbox_import").execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags)
    assert imported.success
    record = plan_env.store.get_version(version)
    assert record.params.round_mode == "dec1" and record.source == "inbox" and record.note == "from the inbox"
    assert record.input_set == config["label"]
    assert version in instance.get_dynamic_partitions("plan_version")

    follow = _evaluate(instance, defs, waiting.cursor)
    (plan_request,) = follow.run_requests
    assert plan_request.job_name == "plan_job" and plan_request.partition_key == version
    planned = defs.resolve_job_def("plan_job").execute_in_process(
        partition_key=version, instance=instance, tags=plan_request.tags)
    assert planned.success
    assert "aggregate" in plan_env.store.series_levels(version)

    done = _evaluate(instance, defs, follow.cursor)
    assert done.run_requests == [] and "nothing new" in done.skip_reason.skip_message
    assert not (folder / ERRORS_FILE).exists()


def test_invalid_folder_is_reported_once_and_rechecked_when_it_changes(plan_env, inbox, sample_dir):
    folder = inbox / "broken"
    shutil.copytree(sample_dir, folder)
    capacity = (folder / "capacity.csv").read_bytes()
    (folder / "capacity.csv").unlink()
    (folder / "plan_parameters.json").write_text(json.dumps({"round": "sometimes", "colour": "red"}))
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)

    first = _evaluate(instance, defs)
    assert first.run_requests == []
    report = (folder / ERRORS_FILE).read_text()
    assert "capacity.csv: required file is missing [missing_file]" in report
    assert "plan_parameters.json: unknown parameter 'colour'" in report

    (folder / ERRORS_FILE).unlink()
    second = _evaluate(instance, defs, first.cursor)
    assert second.run_requests == [] and not (folder / ERRORS_FILE).exists(), "not retried while unchanged"

    (folder / "capacity.csv").write_bytes(capacity)
    (folder / "plan_parameters.json").write_text(json.dumps({"round_mode": "sometimes"}))
    third = _evaluate(instance, defs, second.cursor)
    assert third.run_requests == []
    assert "round_mode" in (folder / ERRORS_FILE).read_text()

    (folder / "plan_parameters.json").unlink()
    fourth = _evaluate(instance, defs, third.cursor)
    (request,) = fourth.run_requests
    assert request.job_name == "inbox_import" and not (folder / ERRORS_FILE).exists()


def test_folder_names_hidden_folders_and_settle_time(plan_env, inbox, sample_dir, monkeypatch):
    shutil.copytree(sample_dir, inbox / "bad name")
    shutil.copytree(sample_dir, inbox / ".partial-copy")
    for path in [inbox / "bad name", *(inbox / "bad name").iterdir()]:
        os.utime(path)  # copytree keeps the repository files' mtimes: make the folder "just written"
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)
    monkeypatch.setenv("PLAN_PIPELINE_INBOX_SETTLE_SECONDS", "3600")
    deferred = _evaluate(instance, defs)
    assert deferred.run_requests == [] and "1 folder(s) still changing" in deferred.skip_reason.skip_message
    monkeypatch.setenv("PLAN_PIPELINE_INBOX_SETTLE_SECONDS", "0")
    judged = _evaluate(instance, defs, deferred.cursor)
    assert judged.run_requests == []
    assert "cannot become an input-set label" in (inbox / "bad name" / ERRORS_FILE).read_text()
    assert not (inbox / ".partial-copy" / ERRORS_FILE).exists()


def test_failed_import_is_written_beside_the_files(plan_env, inbox, sample_dir):
    make_version(plan_env.store, sample_dir, "taken", round_mode="dec2")
    folder = inbox / "clash"
    shutil.copytree(sample_dir, folder)
    (folder / "plan_parameters.json").write_text(json.dumps({"version_id": "taken"}))
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)
    first = _evaluate(instance, defs)
    (request,) = first.run_requests
    run = defs.resolve_job_def("inbox_import").execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False)
    assert not run.success
    second = _evaluate(instance, defs, first.cursor)
    assert second.run_requests == []
    assert "already exists with another input set or other parameters" in (folder / ERRORS_FILE).read_text()
    assert _evaluate(instance, defs, second.cursor).run_requests == []


def test_inbox_without_folder_skips(plan_env):
    result = _evaluate(plan_env.instance(), operations_defs(plan_env.store))
    assert result.run_requests == [] and "does not exist" in result.skip_reason.skip_message


# ---------------------------------------------------------------------------------- replanning
def _tick(instance, defs):
    context = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                        scheduled_execution_time=datetime.now(UTC))
    return replan_stale_drafts(context)


def _scan(instance, defs):
    assert defs.resolve_job_def("plan_version_scan").execute_in_process(instance=instance).success


def test_replan_schedule_requests_one_run_per_stale_draft(plan_env, sample_dir):
    store = plan_env.store
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)
    for vid in ("draft", "approved"):
        make_version(store, sample_dir, vid)
        assert materialize_version(instance, store, vid).success  # records code version + input fingerprint
    store.transition_status("approved", "submitted")
    store.transition_status("approved", "approved")
    make_version(store, sample_dir, "never")
    instance.add_dynamic_partitions("plan_version", ["never"])

    assert isinstance(_tick(instance, defs), dg.SkipReason), "no state observed yet: nothing is replanned"
    _scan(instance, defs)
    assert isinstance(_tick(instance, defs), dg.SkipReason), "fingerprints recorded by the run match: up to date"

    # an override changes the plan's inputs
    store.record_override("draft", "det", "det:week=2025-W02,sku=A1", {"demand": 9.0})
    _scan(instance, defs)
    (request,) = _tick(instance, defs)
    # the exact fingerprint recorded with the materialization tells "inputs or overrides" apart from code
    assert request.partition_key == "draft" and request.tags["plan/replan_reason"] == "inputs or overrides changed"

    # a code change is seen without any scan
    decisions = {d.version_id: d for d in stale_draft_versions(
        instance, now=datetime.now(UTC).timestamp(), current_code="0" * 16)}
    assert decisions["draft"].reasons[0] == "code changed"
    assert decisions["approved"].run_key is None and "no recent draft state" in decisions["approved"].skipped
    assert decisions["never"].skipped == "never materialized"

    # never while a run of the version is queued or running
    instance.add_run(dg.DagsterRun(job_name="plan_job", run_id="running-draft", status=dg.DagsterRunStatus.STARTED,
                                   tags={"plan/version": "draft"}))
    assert isinstance(_tick(instance, defs), dg.SkipReason)


def test_stale_state_observations_expire(plan_env, sample_dir):
    store = plan_env.store
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)
    make_version(store, sample_dir, "draft")
    assert materialize_version(instance, store, "draft").success
    _scan(instance, defs)
    later = datetime.now(UTC).timestamp() + 13 * 3600
    (decision,) = stale_draft_versions(instance, now=later)
    assert decision.run_key is None and "no recent draft state" in decision.skipped


def test_fingerprints_recorded_with_the_materialization_are_compared_exactly(plan_env, sample_dir):
    """The rule when planning_inputs records plan/code_version and plan/input_fingerprint itself."""
    from plan_pipeline.orchestration.replanning.stale_drafts import INPUT_FINGERPRINT_KEY, version_input_fingerprint

    store = plan_env.store
    instance = plan_env.instance()
    defs = operations_defs(plan_env.store)
    make_version(store, sample_dir, "draft")
    instance.add_dynamic_partitions("plan_version", ["draft"])

    def materialized():
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key="planning_inputs", partition="draft",
            metadata={CODE_VERSION_KEY: code_version(), INPUT_FINGERPRINT_KEY: version_input_fingerprint(store, "draft")},
        ))

    materialized()
    _scan(instance, defs)
    assert isinstance(_tick(instance, defs), dg.SkipReason)
    store.record_override("draft", "det", "det:week=2025-W02,sku=A1", {}, lock=True)
    _scan(instance, defs)
    (request,) = _tick(instance, defs)
    assert request.tags["plan/replan_reason"] == "inputs or overrides changed"
    materialized()
    assert isinstance(_tick(instance, defs), dg.SkipReason)


def test_parameters_file_with_a_byte_order_mark_reads_like_the_inputs(tmp_path):
    from plan_pipeline.orchestration.inbox.sensor import read_plan_parameters

    (tmp_path / "plan_parameters.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"round": "dec1"}).encode())
    params, _, _ = read_plan_parameters(tmp_path)
    assert params.round_mode == "dec1"
