"""The launchpads of the code location: every config field is described, every job opens with a
config that runs as is, and what runs as is is safe (trim is a dry run; the legacy import uses
the configured source and says so in one line when there is none)."""
from __future__ import annotations

from datetime import datetime

import dagster as dg
import pytest
from dagster._config import ConfigTypeKind

from plan_pipeline.definitions import defs
from plan_pipeline.operations.legacy_backfill import LEGACY_SOURCE_ENV
from plan_pipeline.orchestration.legacy_import.jobs import LEGACY_IMPORT_JOB_NAME, LEGACY_IMPORT_OP_NAME
from plan_pipeline.orchestration.maintenance.jobs import plan_store_trim_schedule
from plan_pipeline_tests.operations.legacy_helpers import legacy_dir
from plan_pipeline_tests.operations.ops_helpers import make_version, set_created_at

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres

# Jobs whose config names the one thing they act on, so there is no sensible default: the inbox
# folder (filled in by inbox_sensor), the input set of a new version, the version to duplicate.
NAMES_ITS_SUBJECT = {"inbox_import": {"folder", "fingerprint", "label", "version_id"},
                     "create_plan_version": {"input_set"}, "duplicate_plan_version": {"source_version"}}


def _jobs() -> list[dg.JobDefinition]:
    return [job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]


def _undescribed(config_type, path: str) -> list[str]:
    """Paths of fields under ``config_type`` (recursively) without a description."""
    missing = []
    kind = config_type.kind
    if kind in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE, ConfigTypeKind.SELECTOR):
        for name, field in config_type.fields.items():
            if not (field.description or "").strip():
                missing.append(f"{path}.{name}")
            missing += _undescribed(field.config_type, f"{path}.{name}")
    elif kind in (ConfigTypeKind.ARRAY, ConfigTypeKind.NONEABLE, ConfigTypeKind.MAP):
        missing += _undescribed(config_type.inner_type, path)
    # a SCALAR_UNION is Dagster's "value or {env: VAR}" source type of a scalar field: nothing of ours below
    return missing


def test_every_config_field_of_every_job_has_a_description():
    missing, fields = [], 0
    for job in _jobs():
        ops = job.run_config_schema.config_type.fields.get("ops")
        if ops is None:
            continue
        for node_name, node_field in ops.config_type.fields.items():
            config = node_field.config_type.fields.get("config")
            if config is None:
                continue
            fields += len(getattr(config.config_type, "fields", {}))
            missing += _undescribed(config.config_type, f"{job.name}:{node_name}")
    assert fields >= 15  # the walk reaches the config classes (trim 6, backup 2, dwh 2, legacy 3, inbox, ...)
    assert missing == []


def _required_fields(job: dg.JobDefinition) -> set[str]:
    required = set()
    ops = job.run_config_schema.config_type.fields.get("ops")
    for node_field in (ops.config_type.fields.values() if ops else []):
        config = node_field.config_type.fields.get("config")
        if config is not None:
            required |= {name for name, f in getattr(config.config_type, "fields", {}).items() if f.is_required}
    return required


def test_every_other_launchpad_runs_as_it_opens():
    required = {job.name: _required_fields(job) for job in _jobs()}
    assert {name: fields for name, fields in required.items() if fields} == NAMES_ITS_SUBJECT
    for job in _jobs():
        if job.name not in NAMES_ITS_SUBJECT:
            dg.validate_run_config(job, {})  # raises on a missing field


def test_trim_defaults_to_a_dry_run_and_its_schedule_really_trims(plan_env, sample_dir):
    job = defs.resolve_job_def("plan_store_trim")
    defaults = dg.validate_run_config(job, {})["ops"]["plan_store_trim_op"]["config"]
    assert defaults["dry_run"] is True
    store = plan_env.store
    make_version(store, sample_dir, "ancient")
    make_version(store, sample_dir, "fresh")
    set_created_at(store, "ancient", datetime(2020, 1, 1))  # an old version
    instance = plan_env.instance()

    dry = job.execute_in_process(instance=instance)  # the launchpad as it opens
    assert dry.success
    assert {v.version_id for v in store.list_versions()} == {"ancient", "fresh"}
    metadata = next(e for e in dry.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert metadata["dry_run"].value is True and metadata["would_remove_versions_count"].value == 1
    assert [v["version_id"] for v in metadata["would_remove_versions"].value] == ["ancient"]
    assert not {"versions_removed", "versions_removed_count", "rows_removed"} & set(metadata)

    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 1, 1, 2, 30))
    requests = plan_store_trim_schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    real = job.execute_in_process(instance=instance, run_config=requests[0].run_config)
    assert real.success
    assert {v.version_id for v in store.list_versions()} == {"fresh"}
    metadata = next(e for e in real.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert metadata["dry_run"].value is False and metadata["versions_removed_count"].value == 1


def test_legacy_import_launchpad_uses_the_configured_source(reference_dir, plan_env, monkeypatch):
    monkeypatch.setenv(LEGACY_SOURCE_ENV, str(legacy_dir()))
    job = defs.resolve_job_def(LEGACY_IMPORT_JOB_NAME)
    config = dg.validate_run_config(job, {})["ops"][LEGACY_IMPORT_OP_NAME]["config"]
    assert (config["source"], config["dry_run"], config["force"]) == (None, False, False)
    result = job.execute_in_process(instance=plan_env.instance(), run_config={
        "ops": {LEGACY_IMPORT_OP_NAME: {"config": {"dry_run": True}}}})
    assert result.success
    summary = result.output_for_node(LEGACY_IMPORT_OP_NAME)
    assert summary["source"] == str(legacy_dir().resolve()) and summary["would_import_versions"] == 4
    assert plan_env.store.list_versions() == []


def test_legacy_import_without_a_configured_source_fails_in_one_line_naming_the_setting(plan_env, monkeypatch):
    monkeypatch.delenv(LEGACY_SOURCE_ENV, raising=False)
    job = defs.resolve_job_def(LEGACY_IMPORT_JOB_NAME)
    result = job.execute_in_process(instance=plan_env.instance(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.event_specific_data.user_failure_data.description
    assert description == (f"no legacy source: set {LEGACY_SOURCE_ENV} (or give `source` in the launchpad config)")
