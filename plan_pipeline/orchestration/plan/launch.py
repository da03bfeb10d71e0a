"""Launch plan runs on the shared Dagster instance and the project's code location: in-process and
waited for (the CLI, tests), in a background thread of this process (the Plans API without a
daemon), or submitted to the instance's run queue (the Plans API while a Dagster daemon runs)."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.execution.api import execute_run

from plan_pipeline.orchestration.code_location import (
    create_run_on_code_location,
    execute_on_code_location,
    require_code_location_store,
)

# re-exported: callers and tests get the instance from here (its home is the light instance module)
from plan_pipeline.orchestration.instance import get_instance as get_instance
from plan_pipeline.orchestration.instance import prepare_dagster_home as prepare_dagster_home
from plan_pipeline.orchestration.plan.jobs import PLAN_JOB_NAME
from plan_pipeline.orchestration.plan.partitions import register_version_partition
from plan_pipeline.orchestration.plan.run_ledger import (
    LEDGER_INLINE,
    LEDGER_TAG,
    PARTITION_TAG,
    TERMINAL,
    TRIGGER_TAG,
    VERSION_TAG,
    error_text,
    sync_run_ledger,
)
from plan_pipeline.orchestration.plan.run_ledger_hooks import plan_shape
from plan_pipeline.orchestration.plan.run_recovery import (
    close_orphaned_runs,
    free_slots_of_finished_runs,
    launcher_tags,
    orphan_reason,
    pool_holders,
    recover_orphaned_runs,
    waiting_steps,
)
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.store import PlanStore


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    errors: list[str]


class RunAborted(Exception):
    """A run launched in this process was given up (pool wait too long, Ctrl-C).

    The run has already been closed in the Dagster instance (failed or canceled, with the
    reason) and its pool claims freed; its staged rows are never published. Its steps may still
    be executing in a worker thread: the CLI ends the process (``exit_code``) after reporting.
    """

    def __init__(self, run_id: str | None, message: str, exit_code: int):
        super().__init__(message)
        self.run_id = run_id
        self.exit_code = exit_code


POOL_WAIT_ENV = "PLAN_PIPELINE_POOL_WAIT_SECONDS"
DEFAULT_POOL_WAIT_SECONDS = 900.0
LAUNCH_TAG = "plan/launch"
#: How often a run launched in this process says how far it is (the first time after this long):
#: a 5,000-SKU run passes quietly, a 50,000-SKU one (~2 min) says every 15 s how many of its
#: steps are done and which one runs.
PROGRESS_EVERY_SECONDS = 15.0
_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def pool_wait_seconds() -> float:
    """How long an in-process run waits for the ``duckdb`` pool (or for another run of the same
    version) before it gives up: ``$PLAN_PIPELINE_POOL_WAIT_SECONDS``, default 900."""
    raw = os.environ.get(POOL_WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_POOL_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise RuntimeError(f"{POOL_WAIT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def wait_for_version(instance: dg.DagsterInstance, version_id: str, *, progress=None,
                     wait_seconds: float | None = None) -> None:
    """Wait (bounded, Ctrl-C-able, saying why) while another run of ``version_id`` is in progress:
    two runs of one version never compute side by side."""
    limit = pool_wait_seconds() if wait_seconds is None else wait_seconds
    started = time.monotonic()
    said = -1e9
    while True:
        other = versions_in_progress(instance).get(version_id)
        if other is None:
            return
        waited = time.monotonic() - started
        if waited >= limit:
            raise RunAborted(None, f"gave up after {waited:.0f}s: run {other} of plan version {version_id!r} is "
                             "still in progress (a version is planned by one run at a time; "
                             f"raise {POOL_WAIT_ENV} to wait longer)", 1)
        if waited - said >= 10:
            _say(progress, f"waiting for run {other} of plan version {version_id!r} to finish "
                           f"(waited {waited:.0f}s, gives up after {limit:.0f}s; Ctrl-C to stop)")
            said = waited
        recover_orphaned_runs(instance, log=progress)
        time.sleep(1.0)


@dataclass
class StepProgress:
    """The steps of one run seen so far in its event log (read on from a cursor)."""

    planned: int | None = None
    started: dict[str, float] = field(default_factory=dict)  # step -> start timestamp
    finished: dict[str, float] = field(default_factory=dict)  # step -> seconds it took
    cursor: str | None = None

    def read(self, instance: dg.DagsterInstance, run_id: str) -> None:
        while True:
            page = instance.get_records_for_run(run_id, cursor=self.cursor, of_type=_STEP_EVENTS, limit=1000)
            for record in page.records:
                event = record.event_log_entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    self.started[event.step_key] = record.event_log_entry.timestamp
                else:
                    began = self.started.get(event.step_key, record.event_log_entry.timestamp)
                    self.finished[event.step_key] = record.event_log_entry.timestamp - began
            self.cursor = page.cursor
            if not page.has_more:
                return

    def line(self, run_id: str, elapsed: float) -> str:
        running = [step for step in self.started if step not in self.finished]
        slowest = max(self.finished.items(), key=lambda item: item[1]) if self.finished else None
        of = f" of {self.planned}" if self.planned else ""
        return (f"run {run_id}: {len(self.finished)}{of} steps done after {elapsed:.0f}s"
                + (f", running {', '.join(running)}" if running else "")
                + (f" (slowest so far: {slowest[0]} {slowest[1]:.1f}s)" if slowest else ""))


class RunWatcher:
    """Watches an in-process run from the main thread: says how far a long run is, reports
    waits on the ``duckdb`` pool, frees claims left by crashed runs, and gives up after a
    bounded wait."""

    def __init__(self, instance: dg.DagsterInstance, token: str, store: PlanStore | None,
                 progress: Callable[[str], None] | None, wait_seconds: float):
        self.instance, self.token, self.store = instance, token, store
        self.progress, self.wait_seconds = progress, wait_seconds
        self.run_id: str | None = None
        self._said = -1e9
        self._began = time.monotonic()
        self._reported = self._began
        self._steps = StepProgress()

    def _find_run(self) -> str | None:
        if self.run_id is None:
            records = self.instance.get_run_records(filters=dg.RunsFilter(tags={LAUNCH_TAG: self.token}), limit=1)
            self.run_id = records[0].dagster_run.run_id if records else None
        return self.run_id

    def report_steps(self, run_id: str) -> None:
        """Every :data:`PROGRESS_EVERY_SECONDS`: the steps done, the one(s) running, the slowest."""
        now = time.monotonic()
        if self.progress is None or now - self._reported < PROGRESS_EVERY_SECONDS:
            return
        self._reported = now
        if self._steps.planned is None:
            run = self.instance.get_run_by_id(run_id)
            shape = plan_shape(self.instance, run.execution_plan_snapshot_id if run else None)
            self._steps.planned = len(shape.planned) if shape else 0
        self._steps.read(self.instance, run_id)
        _say(self.progress, self._steps.line(run_id, now - self._began))

    def poll(self) -> None:
        run_id = self._find_run()
        if run_id is None:
            return
        self.report_steps(run_id)
        waiting = waiting_steps(self.instance, run_id)
        if not waiting:
            return
        step, waited = max(waiting, key=lambda w: w[1])
        # claims or reservations left by runs that have ended (e.g. a run canceled while its
        # process was still asking for a slot) would block the pool for good
        free_slots_of_finished_runs(self.instance)
        every_holder = pool_holders(self.instance)
        holders = [h for h in every_holder if h[0] != run_id]
        if every_holder and not holders:
            # only this run's own steps hold the pool (steps executed side by side: the Celery
            # executor): the run is making progress, nothing to report or give up on
            return
        others = sorted({h[0] for h in holders})
        for record in self.instance.get_run_records(filters=dg.RunsFilter(run_ids=others)) if others else []:
            reason = orphan_reason(self.instance, record)
            if reason:
                for item in close_orphaned_runs(self.instance, [(record, reason)]):
                    _say(self.progress, item.line())
        held = ", ".join(f"run {r} (step {s})" for r, s in holders) or "another run"
        if waited >= self.wait_seconds:
            self.abort(f"gave up after {waited:.0f}s waiting for the 'duckdb' pool held by {held} "
                       f"(raise {POOL_WAIT_ENV} to wait longer)", canceled=False)
        if waited - self._said >= 10 or (self._said < 0 and waited >= 2):
            _say(self.progress, f"step {step} is waiting for the 'duckdb' pool held by {held} "
                                f"(waited {waited:.0f}s, gives up after {self.wait_seconds:.0f}s; Ctrl-C to stop)")
            self._said = waited

    def abort(self, message: str, *, canceled: bool) -> None:
        """Close the run in the instance (failed / canceled), free its claims, raise RunAborted."""
        run_id = self._find_run()
        if run_id is not None:
            run = self.instance.get_run_by_id(run_id)
            if run is not None and run.status not in TERMINAL:
                if canceled:
                    self.instance.report_run_canceled(run, message)
                else:
                    self.instance.report_run_failed(run, message)
            self.instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            if self.store is not None:
                try:
                    sync_run_ledger(self.instance, self.store, run_ids=[run_id])
                except Exception as exc:  # the next command's recovery records it
                    _say(self.progress, f"could not record run {run_id} in the run ledger (plan_jobs) now ({exc}); "
                                        "the next plan-pipeline command will")
        raise RunAborted(run_id, message, 130 if canceled else 1)


def execute_watched(instance: dg.DagsterInstance, execute: Callable[[dict[str, str]], Any], *,
                    store: PlanStore | None = None, progress: Callable[[str], None] | None = None,
                    wait_seconds: float | None = None) -> Any:
    """Run ``execute(tags)`` (which executes one run in this process with those tags) in a worker
    thread while the main thread watches it (:class:`RunWatcher`) and stays responsive to Ctrl-C.

    Dagster's in-process executor waits for a pool slot in a loop that neither reports nor
    gives up nor reacts to Ctrl-C; watching from the main thread adds all three. The tags name
    this process as the run's worker (crash recovery) and carry a token to find the run.
    """
    token = uuid.uuid4().hex
    tags = {**launcher_tags(), LAUNCH_TAG: token}
    watcher = RunWatcher(instance, token, store, progress,
                         pool_wait_seconds() if wait_seconds is None else wait_seconds)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = execute(tags)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="plan-pipeline-run", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(1.0)
            if worker.is_alive():
                watcher.poll()
    except KeyboardInterrupt:
        watcher.abort("interrupted by the user (Ctrl-C)", canceled=True)
    if "error" in box:
        raise box["error"]
    return box["result"]


def materialize_version(
    instance: dg.DagsterInstance,
    store: PlanStore,
    version_id: str,
    *,
    trigger: str = "cli",
    log_level: str = "WARNING",
    extra_tags: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run ``plan_job`` for one version in this process, then record the run in the run ledger.

    Before launching: runs whose process is gone are recovered (their pool claims freed), and
    a run of the same version still in progress is waited for. The run is created on the code
    location's origin (the UI lists it with the job's runs and can re-execute it) and executed
    in a watched worker thread (:func:`execute_watched`) through Dagster's ``execute_run`` on
    the code location's reconstructable ``plan_job``
    (:func:`plan_pipeline.orchestration.code_location.execute_on_code_location`).
    ``JobDefinition.execute_in_process`` would keep every step output in memory until the run
    ends (for ``output_for_node``), which at 5,000 SKUs kept ~230 MB of frames the run had
    finished with (docs/performance.md). Steps still run in this process (in-process
    executor), so the IO managers' run-local frame cache works the same. ``store`` must be the
    code location's store (``$PLAN_PIPELINE_DB`` or the project home), which its steps resolve.
    """
    require_code_location_store(store)
    store.get_version(version_id)  # clear error for an unknown version
    recover_orphaned_runs(instance, store, log=progress)
    register_version_partition(instance, version_id)
    wait_for_version(instance, version_id, progress=progress)
    tags = {VERSION_TAG: version_id, TRIGGER_TAG: trigger, LEDGER_TAG: LEDGER_INLINE, **(extra_tags or {}),
            PARTITION_TAG: version_id}
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    def execute(launch_tags: dict[str, str]):
        result = execute_on_code_location(instance, PLAN_JOB_NAME, run_config=run_config,
                                          tags={**tags, **launch_tags})
        return result.run_id, result.success, list(result.all_events)

    run_id, success, events = execute_watched(instance, execute, store=store, progress=progress)
    return _finish_run(instance, store, run_id, success, events)


def _finish_run(instance: dg.DagsterInstance, store: PlanStore, run_id: str, success: bool, events) -> RunOutcome:
    """Collect the run's errors and failed checks, record the run in the run ledger."""
    errors = []
    for event in events:
        if event.is_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                errors.append(f"{event.step_key or 'run'}: {error_text(error)}")
            failure = getattr(event.event_specific_data, "user_failure_data", None)
            if error is None and failure is not None and failure.description:
                errors.append(f"{event.step_key or 'run'}: {failure.description}")
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if data is not None and not data.passed:
                errors.append(f"check {data.check_name} failed on {data.asset_key.to_user_string()}")
    sync_run_ledger(instance, store, run_ids=[run_id])
    return RunOutcome(run_id, success, errors)


#: The daemon that launches queued runs, and how recent its heartbeat must be to count as running.
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
DAEMON_HEARTBEAT_SECONDS = 120.0


def queue_daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a Dagster daemon dequeues runs of this instance (a heartbeat in the last 2 minutes)."""
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return beat is not None and time.time() - beat.timestamp <= DAEMON_HEARTBEAT_SECONDS


def create_version_run(instance: dg.DagsterInstance, store: PlanStore, version_id: str, *, trigger: str,
                       extra_tags: dict[str, str] | None = None, inline: bool = False,
                       log_level: str = "WARNING"):
    """Create (not start) the ``plan_job`` run of one version on the code location's origin, with the
    tags every plan run carries; ``inline``: executed by this process (its worker tags, the
    ``plan/ledger`` inline mark). Returns (the reconstructable job, the run)."""
    require_code_location_store(store)
    register_version_partition(instance, version_id)
    tags = {VERSION_TAG: version_id, TRIGGER_TAG: trigger, **(extra_tags or {}), PARTITION_TAG: version_id}
    if inline:
        tags.update({LEDGER_TAG: LEDGER_INLINE, **launcher_tags()})
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    return create_run_on_code_location(instance, PLAN_JOB_NAME, run_config=run_config, tags=tags)


def queue_version_run(instance: dg.DagsterInstance, store: PlanStore, version_id: str, *, trigger: str,
                      extra_tags: dict[str, str] | None = None) -> str:
    """Submit the version's plan run to the instance's run queue (the daemon launches it, within the
    queue's limits: one run per version); its ``plan_jobs`` row is written ``queued``. Returns its id."""
    _, run = create_version_run(instance, store, version_id, trigger=trigger, extra_tags=extra_tags)
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]  # the queue needs no workspace
    sync_run_ledger(instance, store, run_ids=[run.run_id])
    return run.run_id


def start_version_run(instance: dg.DagsterInstance, store: PlanStore, version_id: str, *, trigger: str,
                      extra_tags: dict[str, str] | None = None,
                      on_finish: Callable[[RunOutcome], None] | None = None) -> tuple[str, threading.Thread]:
    """Create the version's plan run and execute it in a background thread of this process (no
    daemon needed; the run shows in the UI like any other). Its ``plan_jobs`` row is written
    ``queued`` before this returns, then by the run itself, and once more when it ends. ``store``
    is used from the thread: give it a store object of its own (not a request's session).
    Returns (run id, thread)."""
    recon, run = create_version_run(instance, store, version_id, trigger=trigger, extra_tags=extra_tags,
                                    inline=True)
    sync_run_ledger(instance, store, run_ids=[run.run_id])

    def work() -> None:
        try:
            result = execute_run(recon, run, instance)
            outcome = _finish_run(instance, store, run.run_id, result.success, list(result.all_events))
        except Exception as exc:  # the run's own failure is in the instance; record what we know
            outcome = RunOutcome(run.run_id, False, [f"{type(exc).__name__}: {exc}"])
            # if this fails too, the ledger repair sensor or 'plan-pipeline runs sync' records the run
            with contextlib.suppress(Exception):
                sync_run_ledger(instance, store, run_ids=[run.run_id])
        if on_finish is not None:
            on_finish(outcome)

    thread = threading.Thread(target=work, name=f"plan-run-{run.run_id[:8]}", daemon=True)
    thread.start()
    return run.run_id, thread
