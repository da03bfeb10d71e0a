"""Scheduled replanning: re-materialize draft versions whose plan is stale.

Two pieces, so that no schedule ever opens DuckDB:

1. ``plan_version_scan`` (job, op in pool ``duckdb``, schedule ``plan_version_scan_daily``)
   reads the store and records, for every **draft, writable** version that is a
   ``plan_version`` partition, an ``AssetObservation`` of ``planning_inputs`` for that
   partition with the version's current state: ``plan/version_state`` = ``draft``, the
   ``inputs_hash`` (input-set content hash + resolved parameters), the overrides fingerprint
   and the time of the newest override change, and ``plan/input_fingerprint`` (inputs hash +
   overrides fingerprint). Versions in any other status, and read-only (imported) versions,
   get no observation.
2. ``replan_stale_drafts`` (schedule on ``plan_job``) reads only the Dagster instance. A
   version ``V`` gets one ``RunRequest(partition_key=V)`` when all of these hold:

   * its latest state observation is at most ``PLAN_PIPELINE_REPLAN_STATE_MAX_AGE_HOURS``
     (default 12) old (so it was a draft at the last scan);
   * ``planning_inputs`` has been materialized for ``V`` before (never-planned versions are
     left to whoever created them);
   * no run for ``V`` is queued or running;
   * and the plan is stale: **code** - the code version recorded with that materialization
     (metadata ``plan/code_version``, else the run tag ``plan/code_version``; unknown counts as
     changed) differs from :func:`code_version` now; or **inputs/overrides** - the scan's
     ``plan/input_fingerprint`` differs from the one recorded as materialization metadata, or,
     when the materialization recorded none, the scan's inputs hash differs from the one
     rebuilt from the materialization's ``content_hash`` and ``parameters`` metadata, or an
     override changed after the materialization.

   The run key is ``replan:<V>:<materialization storage id>:<fingerprint>``: one request per
   (materialization, state); a failed replan is not retried until something changes. Runs
   carry ``plan/trigger=replan``, ``plan/code_version`` and ``plan/replan_reason`` tags, so
   once a replanned run has succeeded its code version is known even for versions first
   planned by a run that did not record it. A version approved between the scan and the tick
   is safe too: ``planning_inputs`` refuses approved and superseded versions.

:func:`code_version` (:mod:`plan_pipeline.orchestration.plan.code_versions`) is a hash of the source
files that decide plan numbers (``planning/``, ``orchestration/plan/assets/``,
``orchestration/plan/io_managers.py``, ``store/layouts.py``).
"""

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from plan_pipeline.orchestration.plan.code_versions import code_version
from plan_pipeline.orchestration.plan.jobs import plan_job
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_VERSION_PARTITIONS_NAME
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG, VERSION_TAG
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.store import PlanStore

PLANNING_INPUTS_KEY = dg.AssetKey("planning_inputs")
CODE_VERSION_KEY = "plan/code_version"  # run tag and (optional) materialization metadata
INPUT_FINGERPRINT_KEY = "plan/input_fingerprint"  # observation and (optional) materialization metadata
STATE_KEY = "plan/version_state"
REASON_TAG = "plan/replan_reason"
REPLAN_TRIGGER = "replan"
STATE_MAX_AGE_ENV = "PLAN_PIPELINE_REPLAN_STATE_MAX_AGE_HOURS"
DEFAULT_STATE_MAX_AGE_HOURS = 12.0


# ---------------------------------------------------------------------------------- fingerprints
def _hash(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:16]


def inputs_hash(content_hash: str | None, parameters: dict[str, Any] | None) -> str:
    """Input-set content hash + resolved parameters, as ``planning_inputs`` records them."""
    return _hash({"content_hash": content_hash, "parameters": parameters})


def input_fingerprint(inputs: str, overrides: str) -> str:
    return _hash({"inputs": inputs, "overrides": overrides})


def _epoch(moment: datetime | None) -> float | None:
    return moment.replace(tzinfo=UTC).timestamp() if moment is not None else None


def scan_version_states(store: PlanStore, version_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Per version (or just ``version_id``): status, read-only flag, inputs hash, overrides
    fingerprint and newest override change (reads the store)."""
    from plan_pipeline.planning.parameters import ParameterError, validate_parameters

    states: dict[str, dict[str, Any]] = {}
    versions = [store.get_version(version_id)] if version_id else store.list_versions()
    hashes = {s["label"]: s["content_hash"] for s in store.list_input_sets()}
    with store.snapshot() as tx:
        overrides = tx.override_states(version_id)
    for v in versions:
        try:
            params = validate_parameters(v.params).resolved().to_dict()
        except ParameterError:
            params = {"invalid": v.params.to_dict()}
        rows = overrides.get(v.version_id, [])
        overrides_fp = _hash([[r[0], r[1], bool(r[2]), r[3]] for r in rows])
        inputs = inputs_hash(hashes.get(v.input_set), params)
        states[v.version_id] = {
            "status": v.status,
            "read_only": v.read_only,
            "inputs_hash": inputs,
            "overrides_fingerprint": overrides_fp,
            "overrides_changed_at": max((t for r in rows if (t := _epoch(r[4])) is not None), default=None),
            "input_fingerprint": input_fingerprint(inputs, overrides_fp),
        }
    return states


def version_input_fingerprint(store: PlanStore, version_id: str) -> str:
    """The version's current ``plan/input_fingerprint``: record it (with :func:`code_version` under
    ``plan/code_version``) as ``planning_inputs`` materialization metadata and the replan rule
    compares exact fingerprints instead of timestamps."""
    return scan_version_states(store, version_id)[version_id]["input_fingerprint"]


# ---------------------------------------------------------------------------------- scan job
@dg.op(
    pool=DUCKDB_POOL,
    description="Record the state of every draft plan version (inputs hash, overrides fingerprint) as an "
    "observation of planning_inputs, for the replan_stale_drafts schedule.",
)
def plan_version_scan_op(context: dg.OpExecutionContext, plan_store: PlanStoreResource):
    store = plan_store.get_store()
    recorded = 0
    if store.exists():
        partitions = set(context.instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME))
        for version_id, state in scan_version_states(store).items():
            if state["status"] != "draft" or state["read_only"] or version_id not in partitions:
                continue
            yield dg.AssetObservation(
                asset_key=PLANNING_INPUTS_KEY,
                partition=version_id,
                metadata={
                    STATE_KEY: "draft",
                    "inputs_hash": state["inputs_hash"],
                    "overrides_fingerprint": state["overrides_fingerprint"],
                    "overrides_changed_at": dg.MetadataValue.float(state["overrides_changed_at"])
                    if state["overrides_changed_at"] is not None else dg.MetadataValue.null(),
                    INPUT_FINGERPRINT_KEY: state["input_fingerprint"],
                },
            )
            recorded += 1
    context.log.info(f"recorded the state of {recorded} draft version(s)")
    yield dg.Output(recorded)


@dg.job(name="plan_version_scan", description="Observe the state of draft plan versions (for scheduled replanning).")
def plan_version_scan_job():
    plan_version_scan_op()


plan_version_scan_schedule = dg.ScheduleDefinition(
    name="plan_version_scan_daily",
    job=plan_version_scan_job,
    cron_schedule="30 4 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily 04:30: record draft versions' state for replan_stale_drafts (turn both on together).",
)


# ---------------------------------------------------------------------------------- staleness
@dataclass
class ReplanDecision:
    version_id: str
    reasons: list[str] = field(default_factory=list)
    skipped: str | None = None
    run_key: str | None = None


def _value(metadata: Mapping[str, Any], key: str) -> Any:
    item = metadata.get(key)
    return getattr(item, "value", item)


def _latest_state(instance: dg.DagsterInstance, version_id: str):
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=PLANNING_INPUTS_KEY, asset_partitions=[version_id]), limit=20
    ).records
    for record in records:  # newest first
        observation = record.asset_observation
        if observation is not None and STATE_KEY in observation.metadata:
            return record
    return None


def _materialized_code_version(instance: dg.DagsterInstance, record) -> str | None:
    recorded = _value(record.asset_materialization.metadata, CODE_VERSION_KEY)
    if recorded:
        return str(recorded)
    run = instance.get_run_by_id(record.run_id)
    return run.tags.get(CODE_VERSION_KEY) if run is not None else None


def stale_draft_versions(
    instance: dg.DagsterInstance,
    *,
    now: float,
    current_code: str | None = None,
    state_max_age_hours: float | None = None,
) -> list[ReplanDecision]:
    """Decide, from the Dagster instance only, which versions to replan (see the module docstring)."""
    current_code = current_code or code_version()
    if state_max_age_hours is None:
        state_max_age_hours = float(os.environ.get(STATE_MAX_AGE_ENV) or DEFAULT_STATE_MAX_AGE_HOURS)
    running = versions_in_progress(instance)
    decisions = []
    for version_id in instance.get_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME):
        decision = ReplanDecision(version_id)
        decisions.append(decision)
        state = _latest_state(instance, version_id)
        if state is None or now - state.timestamp > state_max_age_hours * 3600:
            decision.skipped = "no recent draft state (not a draft, or plan_version_scan has not run lately)"
            continue
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=PLANNING_INPUTS_KEY, asset_partitions=[version_id]), limit=1
        ).records
        if not latest:
            decision.skipped = "never materialized"
            continue
        if version_id in running:
            decision.skipped = f"run {running[version_id]} is in progress"
            continue
        materialization = latest[0]
        recorded = materialization.asset_materialization
        meta = recorded.metadata if recorded is not None else {}
        observed = state.asset_observation.metadata
        recorded_code = _materialized_code_version(instance, materialization)
        if recorded_code != current_code:
            decision.reasons.append("code changed" if recorded_code else "code version unknown")
        recorded_fp = _value(meta, INPUT_FINGERPRINT_KEY)
        if recorded_fp:
            if recorded_fp != _value(observed, INPUT_FINGERPRINT_KEY):
                decision.reasons.append("inputs or overrides changed")
        else:
            rebuilt = inputs_hash(_value(meta, "content_hash"), _value(meta, "parameters"))
            if rebuilt != _value(observed, "inputs_hash"):
                decision.reasons.append("inputs changed")
            changed_at = _value(observed, "overrides_changed_at")
            if changed_at is not None and float(changed_at) > materialization.timestamp:
                decision.reasons.append("overrides changed")
        if not decision.reasons:
            decision.skipped = "up to date"
            continue
        token = _hash([current_code, _value(observed, INPUT_FINGERPRINT_KEY)])[:12]
        decision.run_key = f"replan:{version_id}:{materialization.storage_id}:{token}"
    return decisions


@dg.schedule(
    job=plan_job,
    cron_schedule="0 5 * * *",
    name="replan_stale_drafts",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily 05:00: one plan_job run per draft version whose plan is stale (code, inputs or overrides "
    "changed since its last materialization). Reads the Dagster instance only.",
)
def replan_stale_drafts(context: dg.ScheduleEvaluationContext):
    when = context.scheduled_execution_time or datetime.now(UTC)
    current = code_version()
    requests = []
    for decision in stale_draft_versions(context.instance, now=when.timestamp(), current_code=current):
        if decision.run_key is None:
            continue
        context.log.info(f"replanning {decision.version_id}: {', '.join(decision.reasons)}")
        requests.append(
            dg.RunRequest(
                run_key=decision.run_key,
                partition_key=decision.version_id,
                tags={
                    VERSION_TAG: decision.version_id,
                    TRIGGER_TAG: REPLAN_TRIGGER,
                    CODE_VERSION_KEY: current,
                    REASON_TAG: ", ".join(decision.reasons),
                },
            )
        )
    if not requests:
        return dg.SkipReason("no stale draft versions")
    return requests
