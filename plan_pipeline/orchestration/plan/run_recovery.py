"""Crash recovery: a run whose process is gone never blocks the runs after it.

A plan run executes in one process (the in-process executor): the CLI's own process for
``plan-pipeline materialize`` / ``backfill``, a run worker started by the code server for runs
launched from the UI, a schedule or a sensor. When that process dies without finishing (kill -9,
an OOM kill, a power cut), Dagster still shows the run ``STARTED`` and keeps its claim on the
``duckdb`` pool, so every later store-touching step would wait forever.

:func:`find_orphaned_runs` finds such runs on this machine: the process that executes the run
is known (the ``plan/pid`` tag the CLI sets when it launches a run, or the pid Dagster records
in the run's "Executing steps in process" event) and no longer exists, or the pid now belongs to
a process started after the run (pid reuse). :func:`recover_orphaned_runs` marks each one
failed with the reason, frees its pool claims and pending steps, and, when given the plan
store, closes what the store still shows as running: the run's run ledger row (``plan_jobs``) and, for a
legacy backfill, its ``plan_backfill_runs`` row. The levels such a run staged stay invisible
(only a complete run is ever published) and are removed at the version's next publication.

Runs are judged only on the machine that runs them (``plan/host``): this project's DuckDB
store is a single-machine store. Queued runs are the run queue's business, not judged here.

Called before the CLI launches runs or maintenance, by the ``run_ledger_repair`` job, while the
CLI waits for the pool, and by the ``orphaned_runs_sensor`` (which only touches the Dagster
instance, never the plan store).
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

from plan_pipeline.operations.legacy_backfill import close_backfill_runs, running_backfill_runs
from plan_pipeline.orchestration.plan.run_ledger import TERMINAL, sync_run_ledger
from plan_pipeline.timeutil import utc_now_text as _stamp

PID_TAG = "plan/pid"
PID_START_TAG = "plan/pid_started"
HOST_TAG = "plan/host"
# A run worker starts a moment after its run is created; a process that started later than
# the run's start plus this slack cannot be the run's worker (its pid was reused).
PID_REUSE_SLACK_SECONDS = 5.0
JUDGED = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def this_host() -> str:
    return socket.gethostname()


def process_started_at(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid``; ``None`` if there is no such process.

    Reads ``/proc`` (Linux); elsewhere only tells whether the pid exists (start time 0.0).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        stat = None
    if stat is None or not os.path.exists("/proc/stat"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    if fields and fields[0] == "Z":  # a zombie has exited; it only waits for its parent
        return None
    ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
    with open("/proc/stat", encoding="ascii") as handle:
        boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def launcher_tags() -> dict[str, str]:
    """Tags naming this process as the one that executes a run it launches in-process."""
    started = process_started_at(os.getpid())
    return {
        PID_TAG: str(os.getpid()),
        PID_START_TAG: f"{started:.2f}" if started else "",
        HOST_TAG: this_host(),
    }


def _worker_from_events(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=50).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) if event is not None else None
        pid = (metadata or {}).get("pid")
        if pid is not None:
            try:
                return int(getattr(pid, "value", pid))
            except (TypeError, ValueError):
                return None
    return None


def _launcher_tags_inherited(instance: dg.DagsterInstance, tags: dict[str, str]) -> bool:
    """A re-execution (UI "Re-execute", a retry) copies its parent's tags, launcher tags included:
    they then name the parent's launcher (a CLI process long gone), not this run's worker."""
    parent_id = tags.get("dagster/parent_run_id")
    if not parent_id:
        return False
    parent = instance.get_run_by_id(parent_id)
    return parent is None or all(parent.tags.get(tag) == tags.get(tag) for tag in (PID_TAG, PID_START_TAG, HOST_TAG))


def orphan_reason(instance: dg.DagsterInstance, record) -> str | None:
    """Why the run's process is gone, or ``None`` while it may still be running (or cannot be judged)."""
    run = record.dagster_run
    if run.status not in JUDGED:
        return None
    tags = dict(run.tags)
    if tags.get(HOST_TAG) and tags[HOST_TAG] != this_host():
        return None
    pid: int | None = None
    not_after: float | None = None
    if tags.get(PID_TAG, "").isdigit() and not _launcher_tags_inherited(instance, tags):
        pid = int(tags[PID_TAG])
        started = tags.get(PID_START_TAG)
        not_after = float(started) + 1.0 if started else None
    elif run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING):
        pid = _worker_from_events(instance, run.run_id)
        if record.start_time:
            not_after = record.start_time + PID_REUSE_SLACK_SECONDS
    if pid is None:
        return None
    started_at = process_started_at(pid)
    if started_at is None:
        return f"its process (pid {pid}) is gone: killed or crashed"
    if not_after is not None and started_at and started_at > not_after:
        return f"its process (pid {pid}) is gone: the pid now belongs to a process started later"
    return None


def find_orphaned_runs(instance: dg.DagsterInstance) -> list[tuple[dg.RunRecord, str]]:
    """(run record, reason) for every run of this machine whose process is gone."""
    found = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(JUDGED))):
        reason = orphan_reason(instance, record)
        if reason:
            found.append((record, reason))
    return found


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    job_name: str
    reason: str

    def line(self) -> str:
        return f"recovered run {self.run_id} ({self.job_name}): {self.reason}; marked failed, its pool claims freed"


def close_orphaned_runs(instance: dg.DagsterInstance, found: Iterable[tuple[dg.RunRecord, str]]) -> list[RecoveredRun]:
    """Mark each run failed (with the reason) and free its ``duckdb`` pool claims (instance only)."""
    recovered = []
    for record, reason in found:
        run = record.dagster_run
        message = f"plan-pipeline crash recovery ({_stamp()}): {reason}; the run was marked failed"
        fresh = instance.get_run_by_id(run.run_id)
        if fresh is not None and fresh.status not in TERMINAL:
            instance.report_run_failed(fresh, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(RecoveredRun(run.run_id, run.job_name, reason))
    return recovered


def free_slots_of_finished_runs(instance: dg.DagsterInstance, pools: Iterable[str] = ("duckdb",)) -> list[str]:
    """Free pool claims still held by runs that have ended (or no longer exist)."""
    freed = []
    for pool in pools:
        info = instance.event_log_storage.get_concurrency_info(pool)
        holders = {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}
        for run_id in sorted(holders):
            run = instance.get_run_by_id(run_id)
            if run is None or run.status in TERMINAL:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
                freed.append(run_id)
    return freed


def reconcile_store(instance: dg.DagsterInstance, store) -> list[str]:
    """Close what the plan store still shows as running although the Dagster run has ended.

    ``plan_jobs`` rows that are queued/started get the run's final status from the instance
    (or ``failure`` when the instance no longer knows the run); ``plan_backfill_runs`` rows
    that are ``running`` become ``failed`` with the reason. Returns the run ids closed.
    """
    if not store.exists():
        return []
    closed: list[str] = []
    open_jobs = store.open_jobs()
    runs = {job: instance.get_run_by_id(job) for job in open_jobs}
    finished = [job for job, run in runs.items() if run is None or run.status in TERMINAL]
    known = [job for job in finished if runs[job] is not None]
    if known:
        sync_run_ledger(instance, store, run_ids=known)
    unknown = [job for job in finished if job not in known]
    if unknown:
        store.close_jobs(unknown, "failure", "the Dagster instance has no record of this run any more")
    closed += finished
    stale_backfills = {}
    for run_id in running_backfill_runs(store):
        run = instance.get_run_by_id(run_id)
        if run is None or run.status in TERMINAL:
            status = run.status.value.lower() if run is not None else "unknown"
            stale_backfills[run_id] = f"the backfill run ended ({status}) before it recorded its result"
    if stale_backfills:
        close_backfill_runs(store, stale_backfills)
        closed += list(stale_backfills)
    return closed


def recover_orphaned_runs(
    instance: dg.DagsterInstance, store=None, log: Callable[[str], None] | None = None
) -> list[RecoveredRun]:
    """Find runs whose process is gone, close them and free their claims; with ``store``, also
    close their ``plan_jobs`` / ``plan_backfill_runs`` rows. ``log`` gets one line per run."""
    recovered = close_orphaned_runs(instance, find_orphaned_runs(instance))
    free_slots_of_finished_runs(instance)
    if store is not None and store.exists():
        if recovered:
            sync_run_ledger(instance, store, run_ids=[item.run_id for item in recovered])
        reconcile_store(instance, store)
    for item in recovered:
        if log is not None:
            log(item.line())
    return recovered


def pool_holders(instance: dg.DagsterInstance, pool: str = "duckdb") -> list[tuple[str, str]]:
    """(run id, step key) of the steps holding ``pool`` now, or that a slot is reserved for."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    held = [(slot.run_id, slot.step_key) for slot in info.claimed_slots]
    held += [(step.run_id, step.step_key) for step in info.pending_steps
             if step.assigned_timestamp is not None and (step.run_id, step.step_key) not in held]
    return held


def waiting_steps(instance: dg.DagsterInstance, run_id: str, pool: str = "duckdb") -> list[tuple[str, float]]:
    """(step key, seconds waited) of ``run_id``'s steps waiting for a slot of ``pool``."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    now = time.time()
    return [
        (step.step_key, now - step.enqueued_timestamp.timestamp())
        for step in info.pending_steps
        if step.run_id == run_id and step.assigned_timestamp is None
    ]
