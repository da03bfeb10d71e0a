"""Plan runs launched over HTTP (``POST /plans/{v}/runs``, the web view's re-plan button).

A run goes through the Dagster instance at ``settings.dagster_home``, so it is listed in the
Dagster UI like any other run and records itself in the run ledger (``plan_jobs``). While a
Dagster daemon runs (its heartbeat is recent) the run is submitted to the instance's run queue
and the daemon launches it; otherwise this server executes it in a background thread. Either
way the caller gets the run id at once; ``GET /runs/{run_id}`` follows it.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dagster as dg

from plan_pipeline.api.errors import ApiError
from plan_pipeline.orchestration.instance import prepare_dagster_home
from plan_pipeline.orchestration.plan.launch import queue_daemon_running, queue_version_run, start_version_run
from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.store import PlanConflictError, PlanStore

#: The tag naming the API key that asked for a run (the run ledger keeps every tag).
REQUESTED_BY_TAG = "plan/requested_by"

_instances: dict[Path, dg.DagsterInstance] = {}
_instances_lock = threading.Lock()
# one launch at a time in this process: the in-progress check and the run's creation go together
_launch_lock = threading.Lock()
_background: dict[str, threading.Thread] = {}


def dagster_instance(dagster_home: Path | None) -> dg.DagsterInstance:
    """The Dagster instance at ``dagster_home`` (its home prepared with the project's dagster.yaml),
    one per home for the life of the server."""
    if dagster_home is None:
        raise ApiError("bad_request", "this server has no Dagster instance to launch runs on "
                       "(start it with plan-pipeline serve, which sets the Dagster home)")
    home = Path(dagster_home).resolve()
    with _instances_lock:
        if home not in _instances:
            prepare_dagster_home(home)
            _instances[home] = dg.DagsterInstance.from_config(str(home))
        return _instances[home]


def launch_plan_run(store: Any, version_id: str, *, actor: str, dagster_home: Path | None,
                    trigger: str = "api") -> str:
    """Launch the plan run of ``version_id``; returns its Dagster run id (its ``plan_jobs`` row exists).

    Refused: an unknown version (PlanNotFoundError, 404), a frozen or read-only one (the store's
    re-plan rule, PlanConflictError, 409), a version with a run queued or in progress (409; runs
    whose process died are recovered first, so they do not block).
    """
    store.require_replannable(version_id)
    instance = dagster_instance(dagster_home)
    run_store = PlanStore(location=store.location)  # the run's own store object: a request's session ends with it
    tags = {REQUESTED_BY_TAG: actor}
    with _launch_lock:
        recover_orphaned_runs(instance, store)
        running = versions_in_progress(instance).get(version_id) or next(iter(store.active_jobs(version_id)), None)
        if running:
            raise PlanConflictError(
                f"plan version {version_id!r} has a run in progress ({running}); wait for it to finish "
                f"(GET /runs/{running}) before launching another")
        if queue_daemon_running(instance):
            return queue_version_run(instance, run_store, version_id, trigger=trigger, extra_tags=tags)
        run_id, thread = start_version_run(instance, run_store, version_id, trigger=trigger, extra_tags=tags)
        _background[run_id] = thread
        return run_id


def wait_for_background_run(run_id: str, timeout: float | None = None) -> bool:
    """Wait for a run this server executes in a background thread; True once it has ended (or when
    it is not one of this server's background runs)."""
    thread = _background.get(run_id)
    if thread is None:
        return True
    thread.join(timeout)
    if thread.is_alive():
        return False
    _background.pop(run_id, None)
    return True
