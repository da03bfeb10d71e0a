"""Runs record themselves in the run ledger (``plan_jobs``): hooks on every step of the code location.

:func:`with_run_ledger` puts :data:`RUN_LEDGER_HOOKS` on every executable asset and asset check
(so ``plan_job``, UI "Materialize" runs and asset backfills, which run as ``__ASSET_JOB``, are
covered) and on every op job, re-pointing the schedules and sensors that target those jobs. The
code location's root applies it to the merged definitions, so a job a domain adds later is
covered without touching this module.

After each step (success or failure) the hook

1. gives the run its ``plan/version`` / ``plan/trigger`` tags where they are missing (a UI launch,
   an asset backfill, a schedule or sensor sets only Dagster's own tags);
2. works out what the run ledger should say: ``failure`` when a step of the run failed (with the
   error text: a raised error, a failed blocking check, a refused version), ``success`` when every
   step the run executes has finished (read from the run's execution plan snapshot and step stats
   in the instance, so subset runs and re-executions work too), otherwise ``started`` if the run
   has no row yet;
3. writes that row in one short store transaction while holding a slot of the ``duckdb`` pool
   (the step's own slot is released before hooks run, so the hook claims one like a step does,
   ahead of waiting steps) and tags the run ``plan/ledger=<status>``.

A hook never fails the run: an error is logged and left to the ``run_ledger_repair_sensor``.

Cost per step (issue 13, docs/performance.md): the success and failure work run as **one** hook
(Dagster writes a HOOK_COMPLETED or HOOK_SKIPPED event per hook and step), the execution plan
snapshot is decoded once per snapshot id, and a step that a step of the run still waits for
returns at once when the run's row exists (the run cannot be done yet).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL
from plan_pipeline.orchestration.plan.run_ledger import (
    LEDGER_TAG,
    missing_run_tags,
    record_run,
)

PLAN_STORE_KEY = "plan_store"
# A hook's store write is tiny: it goes ahead of steps waiting for the pool.
LEDGER_CLAIM_PRIORITY = 1_000_000
# How long a hook waits for the pool before it leaves the recording to the repair sensor.
LEDGER_POOL_WAIT_SECONDS = 900.0
_DONE = ("SUCCESS", "FAILURE", "SKIPPED")


class PoolBusy(Exception):
    """No slot of the pool became free within the wait."""


@contextmanager
def pool_slot(instance: dg.DagsterInstance, run_id: str, key: str, pool: str = DUCKDB_POOL,
              wait_seconds: float = LEDGER_POOL_WAIT_SECONDS, step_key: str | None = None) -> Iterator[bool]:
    """Hold one slot of ``pool`` for (run, ``key``) while the block runs, the way Dagster's step
    executor claims one (op-granularity pools; no limit = nothing to claim). Yields whether a
    slot was claimed; raises :class:`PoolBusy` after ``wait_seconds``.

    A slot that ``step_key`` (the step whose hook this is) still holds covers the block: the
    Celery executor frees a step's claim only once the worker has returned the step's events,
    hooks included, so claiming a second slot there would wait for itself. (The in-process
    executor frees the claim at the step's success, before its hooks run.)"""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        yield False
        return
    config = storage.get_pool_config()
    if str(getattr(config.pool_granularity, "value", config.pool_granularity)) == "run":
        yield False  # the run holds the pool as a whole
        return
    if pool not in {limit.name for limit in storage.get_pool_limits()}:
        if config.default_pool_limit is None:
            yield False  # no limit on this pool
            return
        storage.initialize_concurrency_limit_to_default(pool)
    if step_key is not None and storage.check_concurrency_claim(pool, run_id, step_key).is_claimed:
        yield True  # the step's own slot, held for it by the executor
        return
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            status = storage.claim_concurrency_slot(pool, run_id, key, LEDGER_CLAIM_PRIORITY)
            if status.is_claimed:
                break
            if time.monotonic() >= deadline:
                raise PoolBusy(f"no slot of pool {pool!r} within {wait_seconds:.0f}s")
            time.sleep(min(max(status.sleep_interval or 0.5, 0.2), 5.0))
        yield True
    finally:
        storage.free_concurrency_slot_for_step(run_id, key)


@dataclass(frozen=True)
class PlanShape:
    """What the hooks need of a run's execution plan snapshot: the steps it executes and, per
    step, the steps that take one of its outputs (ordering-only ``deps`` edges included)."""

    planned: tuple[str, ...]
    consumers: Mapping[str, frozenset[str]]


#: Shapes by execution plan snapshot id. The id is a hash of the snapshot's content, so an entry
#: never goes stale; without it every step's hook fetched and decoded the whole snapshot again.
_PLAN_SHAPES: dict[str, PlanShape] = {}
_MAX_PLAN_SHAPES = 64


def plan_shape(instance: dg.DagsterInstance, snapshot_id: str | None) -> PlanShape | None:
    if not snapshot_id:
        return None
    shape = _PLAN_SHAPES.get(snapshot_id)
    if shape is None:
        snapshot = instance.get_execution_plan_snapshot(snapshot_id)
        consumers: dict[str, set[str]] = {}
        for step in snapshot.steps:
            for step_input in step.inputs:
                for handle in step_input.upstream_output_handles:
                    consumers.setdefault(handle.step_key, set()).add(step.key)
        shape = PlanShape(tuple(snapshot.step_keys_to_execute or ()),
                          {key: frozenset(found) for key, found in consumers.items()})
        if len(_PLAN_SHAPES) >= _MAX_PLAN_SHAPES:
            _PLAN_SHAPES.clear()
        _PLAN_SHAPES[snapshot_id] = shape
    return shape


def _downstream_steps(shape: PlanShape, step_key: str) -> set[str]:
    """The steps of an execution plan that depend, directly or not, on ``step_key``."""
    found: set[str] = set()
    todo = [step_key]
    while todo:
        for consumer in shape.consumers.get(todo.pop(), ()):
            if consumer not in found:
                found.add(consumer)
                todo.append(consumer)
    return found


def run_outcome(instance: dg.DagsterInstance, run: dg.DagsterRun, yielded_nothing: str | None = None) -> str | None:
    """``failure`` if a step of the run failed, ``success`` if every step it executes is done,
    else None (still running). Steps: the run's execution plan snapshot (a subset or
    re-execution lists only its own), their state: the run's step stats.

    ``yielded_nothing``: a step that just succeeded without yielding any output (``planning_inputs``
    of a frozen version): every step downstream of it is about to be skipped, so it counts as done
    (skipped steps run no hook that could record the run later)."""
    stats = {stat.step_key: stat.status.value if stat.status else None
             for stat in instance.get_run_step_stats(run.run_id)}
    if "FAILURE" in stats.values():
        return "failure"
    shape = plan_shape(instance, run.execution_plan_snapshot_id)
    planned: Iterable[str] | None = shape.planned if shape is not None else None
    if not planned:
        planned = list(run.step_keys_to_execute or stats)
    skipped = _downstream_steps(shape, yielded_nothing) if shape is not None and yielded_nothing else set()
    return "success" if all(stats.get(key) in _DONE or key in skipped for key in planned) else None


def waited_for(instance: dg.DagsterInstance, run: dg.DagsterRun, step_key: str) -> bool:
    """Whether a step this run executes takes an output of ``step_key`` (so the run is not done)."""
    shape = plan_shape(instance, run.execution_plan_snapshot_id)
    if shape is None or not shape.planned:
        return False
    return bool(shape.consumers.get(step_key, frozenset()) & set(shape.planned))


def record_from_hook(context: dg.HookContext, failed: bool, yielded_nothing: bool = False) -> str | None:
    """The hooks' work (see the module docstring); returns the status written, if any."""
    instance, run_id = context.instance, context.run_id
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    tags = dict(record.dagster_run.tags)
    missing = missing_run_tags(tags)
    if missing:
        instance.add_run_tags(run_id, missing)
        record = instance.get_run_record_by_id(run_id) or record
    recorded = tags.get(LEDGER_TAG) in ("started", "success", "failure")
    if recorded and not failed and not yielded_nothing and waited_for(instance, record.dagster_run, context.step_key):
        # the run's row exists and a step of this run waits for this one: the run is not done,
        # no need to read every step's state (a failure elsewhere was recorded by its own hook,
        # else by the last step's hook or the repair sensor)
        return None
    status = "failure" if failed else run_outcome(
        instance, record.dagster_run, context.step_key if yielded_nothing else None)
    if status is None:
        if recorded:
            return None  # this run's row exists (an earlier step recorded it)
        status = "started"
    store = getattr(context.resources, PLAN_STORE_KEY).get_store()
    with pool_slot(instance, run_id, f"{context.step_key}:run_ledger", step_key=context.step_key):
        return record_run(instance, store, record, status)


def _safely(context: dg.HookContext, failed: bool) -> None:
    try:
        # what was written shows as the run's plan/ledger tag (no log line: each is an event log write)
        record_from_hook(context, failed, yielded_nothing=not failed and not context.op_output_values)
    except Exception as exc:  # the run's work is done; the repair sensor records the run later
        context.log.warning(f"run ledger (plan_jobs): could not record this run now ({type(exc).__name__}: "
                            f"{exc}); run_ledger_repair_sensor records it when the run has ended")


@dg.success_hook(name="run_ledger_on_success", required_resource_keys={PLAN_STORE_KEY})
def run_ledger_on_success(context: dg.HookContext) -> None:
    """Record the run as started (first step) or success (its last step) in ``plan_jobs``."""
    _safely(context, failed=False)


@dg.failure_hook(name="run_ledger_on_failure", required_resource_keys={PLAN_STORE_KEY})
def run_ledger_on_failure(context: dg.HookContext) -> None:
    """Record the run as failed, with the error text, in ``plan_jobs``."""
    _safely(context, failed=True)


RUN_LEDGER_HOOK_NAME = "run_ledger"


def _run_ledger_hook_fn(context: dg.HookContext, event_list) -> Any:
    """Both hooks' work in one hook: Dagster writes one event per hook and step (HOOK_COMPLETED or
    HOOK_SKIPPED), so a success hook plus a failure hook cost two event log writes per step."""
    assert HookExecutionResult is not None
    failed = any(event.is_step_failure for event in event_list)
    if not failed and not any(event.is_step_success for event in event_list):
        return HookExecutionResult(hook_name=RUN_LEDGER_HOOK_NAME, is_skipped=True)
    _safely(context, failed=failed)
    return HookExecutionResult(hook_name=RUN_LEDGER_HOOK_NAME, is_skipped=False)


HookExecutionResult: Any
try:  # what @success_hook and @failure_hook return: Dagster's generic hook result (not exported)
    from dagster._core.definitions.events import HookExecutionResult as _HookExecutionResult
    HookExecutionResult = _HookExecutionResult
except ImportError:  # the internals moved: the two public hooks, one event more per step
    HookExecutionResult = None

#: The hooks every step carries: one hook on Dagster's generic hook API (:func:`_run_ledger_hook_fn`),
#: else the public success and failure hooks.
RUN_LEDGER_HOOKS: frozenset[dg.HookDefinition] = frozenset(
    {dg.HookDefinition(name=RUN_LEDGER_HOOK_NAME, hook_fn=_run_ledger_hook_fn,
                       required_resource_keys={PLAN_STORE_KEY})}
    if HookExecutionResult is not None else {run_ledger_on_success, run_ledger_on_failure})


def _hooked_job(job, hooked: dict[str, dg.JobDefinition]):
    if isinstance(job, dg.JobDefinition):
        if job.name not in hooked:
            hooked[job.name] = job.with_hooks(set(RUN_LEDGER_HOOKS))
        return hooked[job.name]
    return job  # an asset job: its assets carry the hooks


def with_run_ledger(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with the run ledger hooks on every executable asset, asset check and op job."""
    assets = [a.with_hooks(set(RUN_LEDGER_HOOKS)) if isinstance(a, dg.AssetsDefinition) and a.is_executable
              else a for a in (defs.assets or [])]
    checks = [c.with_hooks(set(RUN_LEDGER_HOOKS)) for c in (defs.asset_checks or [])]
    hooked: dict[str, dg.JobDefinition] = {}
    jobs = [_hooked_job(job, hooked) for job in (defs.jobs or [])]
    schedules = []
    for schedule in defs.schedules or []:
        if isinstance(schedule, dg.ScheduleDefinition):
            target = schedule.target
            if target.has_job_def and isinstance(target.job_def, dg.JobDefinition):
                schedule = schedule.with_updated_job(_hooked_job(target.job_def, hooked))
        schedules.append(schedule)
    sensors = []
    for sensor in defs.sensors or []:
        targets = list(sensor.targets) if isinstance(sensor, dg.SensorDefinition) else []
        if any(t.has_job_def and isinstance(t.job_def, dg.JobDefinition) for t in targets):
            if not all(t.has_job_def for t in targets):
                raise dg.DagsterInvalidDefinitionError(
                    f"sensor {sensor.name!r} targets an op job and an asset selection: the run ledger hooks cannot "
                    "re-point it; give the asset selection its own sensor or an asset job")
            sensor = sensor.with_updated_jobs([_hooked_job(t.job_def, hooked) for t in targets])
        sensors.append(sensor)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
    )
