"""IO managers: plan asset outputs live in DuckDB tables, keyed by (plan version, level, run).

* :class:`PlanSeriesIOManager` *stages* a stage's DataFrame in ``plan_series`` (or
  ``plan_kpis``) for (version = partition key, level = the asset's ``plan_level``
  metadata, run = the Dagster run id) in one transaction. Staged rows are invisible to
  readers until the ``published_plan`` asset publishes the whole run (``PlanStore.publish_run``), so a run that fails or dies
  half-way never leaves a mixed plan. A stage that does not apply to a version (``None``)
  is staged as "not applicable". ``load_input`` reads the frame back with its original
  columns, dtypes and row order: the level as the upstream run wrote it (this run, or the
  run a re-execution continues), else the version's published level.
* :class:`PlanInputsIOManager` serves the version's immutable input set and parameters:
  nothing is copied on output, the input rows are read from the store on load.

A stage may declare a plan-frame input *deferred* (:data:`DeferredPlanFrame`): it receives a
:class:`DeferredFrame` and loads the frame only if it uses it (``plan_scorecard`` reads the plain
chain only when the version has no anchored plan). A cached frame whose remaining readers are all
deferred is dropped from memory once the run's cached frames exceed the run cache budget
(:func:`run_cache_budget_bytes`); a deferred reader then reads it back from the store.

What a run keeps in memory belongs to the run: Dagster initializes each IO manager once per
run (the in-process executor runs every step of a run in one process) and calls
``setup_for_execution`` / ``teardown_after_execution`` around it, so the frame cache lives
exactly as long as the run, with no module-level state. (The run's ``plan_jobs`` row is written
by the run ledger hooks, :mod:`.run_ledger_hooks`.)
"""

import copy
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import PrivateAttr

from plan_pipeline.orchestration.plan.planner_metadata import table_preview
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.parameters import validate_parameters
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters

PLAN_LEVEL = "plan_level"
PLAN_TABLE = "plan_table"
OPTIONAL_LEVEL = "plan_optional_level"
NOT_APPLICABLE = object()  # cache marker: the stage did not apply to this version

#: Op tag of a step with deferred inputs (:data:`DeferredPlanFrame`): the asset whose being applicable
#: means the step will not load them (``plan_scorecard`` reads the plain chain only where the
#: version has no adjusted plan). Once that asset is staged with rows, the run cache stops keeping
#: frames for those readers, so an anchored version does not hold the plain chain's frames through
#: its anchored chain. (Should the step load one all the same, it reads it from the store.)
DEFERRED_UNLESS_TAG = "plan/deferred_inputs_unused_once"

#: The run cache budget (MB): beyond it, frames that only deferred readers still need are dropped.
RUN_CACHE_BUDGET_ENV = "PLAN_PIPELINE_RUN_CACHE_MB"
DEFAULT_RUN_CACHE_BUDGET_MB = 1024


#: Frames the run cache has let go of are still alive until Python's cyclic garbage collector runs
#: a full collection: Dagster keeps each step's outputs on the step's context for the run's hooks
#: (``step_output_capture``; the run ledger hooks are on every step) and a finished step's context
#: sits in reference cycles. A full collection is rare on its own (at 50,000 SKUs the plain chain's
#: frames, ~2 GB, outlived their last reader by several steps), so once the cache has let go of
#: this much, the next step collects before it loads its inputs (docs/performance.md): four
#: collections of 3-9 ms each in a 5,000-SKU anchored run (see PlanSeriesIOManager), one per large
#: frame let go of at 50,000.
COLLECT_AFTER_RELEASED_BYTES = 64 * 2**20


def run_cache_budget_bytes() -> int:
    """``$PLAN_PIPELINE_RUN_CACHE_MB`` (default 1024) in bytes: how much of the run's cached frames
    may be held for deferred readers only (at 20,000 SKUs a run caches about 1 GB; at 50,000 SKUs
    x 104 weeks one capacity frame alone is about 2 GB)."""
    raw = os.environ.get(RUN_CACHE_BUDGET_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else float(DEFAULT_RUN_CACHE_BUDGET_MB)
    except ValueError:
        raise ValueError(f"{RUN_CACHE_BUDGET_ENV}={raw!r}: expected a number of megabytes") from None
    return max(0, int(megabytes * 2**20))


def frame_bytes(value: Any) -> int:
    """Memory of a cached value's column arrays (object columns count their pointers only)."""
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=False, deep=False).sum())
    return 0


class DeferredFrame:
    """A plan frame a step loads only if it uses it (:meth:`load`); see :data:`DeferredPlanFrame`."""

    def __init__(self, loader: Callable[[], pd.DataFrame | None]):
        self._loader: Callable[[], pd.DataFrame | None] | None = loader
        self._value: pd.DataFrame | None = None

    def load(self) -> pd.DataFrame | None:
        """The frame (None: its stage did not apply to the version); read once, then kept."""
        loader, self._loader = self._loader, None
        if loader is not None:
            self._value = loader()
        return self._value


def resolve_frame(value: Any) -> Any:
    """A deferred input's frame (loaded now), anything else as it is."""
    return value.load() if isinstance(value, DeferredFrame) else value


#: The Dagster type of a deferred plan-frame input (``dg.AssetIn(key=..., dagster_type=DeferredPlanFrame)``):
#: the IO manager hands the step a :class:`DeferredFrame` instead of the frame, and the input does
#: not keep the frame in the run cache (:class:`RunLocalCache`).
DeferredPlanFrame = dg.DagsterType(
    name="DeferredPlanFrame",
    type_check_fn=lambda _context, value: value is None or isinstance(value, DeferredFrame | pd.DataFrame),
    description="A plan frame loaded only if the step uses it (DeferredFrame.load()).",
)


class RunLocalCache:
    """Values written during the current run, handed to downstream steps of the same process.

    With the in-process executor every step of a run shares this process, so a stage can
    take its upstream frame from memory instead of reading it back from DuckDB. The store
    round trip is exact (same columns, dtypes, order, attrs), so this changes speed, not
    results. Each IO manager owns one per run (created in ``setup_for_execution``, cleared in
    ``teardown_after_execution``); values of another run id are never handed out.

    Memory: a consumer gets a *shallow* copy (its own column list and ``attrs``, the same
    column arrays), so a 795k-row MRP frame is not duplicated per consumer; stages never
    modify their input frames in place (``plan_pipeline_tests/planning/test_inputs_unchanged``
    pins that). An entry whose number of consumers in the run's plan is known is dropped
    after its last consumer has loaded it, so a run holds only the frames still ahead of it.
    Readers of a *deferred* input (:data:`DeferredPlanFrame`) are counted apart: an entry that
    only they still need is kept while the cache holds at most ``budget_bytes`` of frames, and
    dropped (largest first) beyond it; :meth:`take_deferred` then finds nothing and the reader
    goes to the store.

    A deferred reader may give up its claim before it runs (``superseded_by``: the asset whose being
    staged with rows means it will not load the frame, :meth:`supersede`).

    ``released_bytes`` adds up the frames the cache has let go of since :meth:`take_released`, so the
    IO manager can have them freed before the next step (:data:`COLLECT_AFTER_RELEASED_BYTES`).
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.run_id: str | None = None
        self.values: dict[tuple[str, str], Any] = {}
        self.remaining: dict[tuple[str, str], int] = {}
        self.deferred: dict[tuple[str, str], int] = {}
        self.budget_bytes = run_cache_budget_bytes() if budget_bytes is None else budget_bytes
        self.released_bytes = 0
        self.give_up: dict[str, dict[tuple[str, str], int]] = {}  # asset -> {entry: deferred readers}

    def put(self, run_id: str, key: tuple[str, str], value: Any, consumers: int | None = None,
            deferred: int = 0, superseded_by: dict[str, int] | None = None) -> None:
        """Keep ``value`` for this run; ``consumers``: how many step inputs will load it (None =
        unknown), ``deferred``: how many deferred inputs may load it besides, ``superseded_by``:
        how many of those give up their claim once the named asset is staged with rows."""
        if run_id != self.run_id:
            self.clear()
            self.run_id = run_id
        self.deferred.pop(key, None)
        if consumers == 0 and not deferred:
            self._release(key)
            self.remaining.pop(key, None)
            return
        self.values[key] = value
        if deferred:
            self.deferred[key] = deferred
            for asset, readers in (superseded_by or {}).items():
                self.give_up.setdefault(asset, {})[key] = readers
        if consumers is None:
            self.remaining.pop(key, None)
        else:
            self.remaining[key] = consumers
        self._keep_within_budget()

    def get(self, run_id: str | None, key: tuple[str, str]) -> Any | None:
        if run_id is None or run_id != self.run_id or key not in self.values:
            return None
        value = self.values[key]
        left = self.remaining.get(key)
        if left is not None:
            self.remaining[key] = left - 1
            if left <= 1:
                self._forget_if_unread(key)
                self._keep_within_budget()
        return _shallow(value)

    def take_deferred(self, run_id: str | None, key: tuple[str, str]) -> Any | None:
        """The value for one deferred reader (None: dropped or never cached); the entry is
        forgotten once no reader of either kind is left."""
        if run_id is None or run_id != self.run_id or key not in self.values:
            return None
        value = self.values[key]
        if key in self.deferred:
            self.deferred[key] -= 1
            self._forget_if_unread(key)
        return _shallow(value)

    def supersede(self, run_id: str | None, asset: str) -> None:
        """``asset`` was staged with rows: the deferred readers that wait on it will not load their
        frames; an entry no reader of either kind needs any more is forgotten."""
        if run_id is None or run_id != self.run_id:
            return
        for key, readers in self.give_up.pop(asset, {}).items():
            if key in self.deferred:
                self.deferred[key] = max(0, self.deferred[key] - readers)
                self._forget_if_unread(key)

    def _forget_if_unread(self, key: tuple[str, str]) -> None:
        if self.remaining.get(key, 1) <= 0 and self.deferred.get(key, 0) <= 0:
            self._release(key)
            self.remaining.pop(key, None)
            self.deferred.pop(key, None)

    def _keep_within_budget(self) -> None:
        """Drop entries only deferred readers still need (largest first) while over the budget."""
        held = sum(frame_bytes(v) for v in self.values.values())
        if held <= self.budget_bytes:
            return
        idle = sorted((k for k in self.values if self.remaining.get(k, 1) <= 0), key=lambda k: -frame_bytes(self.values[k]))
        for key in idle:
            if held <= self.budget_bytes:
                break
            held -= self._release(key)
            self.remaining.pop(key, None)
            self.deferred.pop(key, None)

    def _release(self, key: tuple[str, str]) -> int:
        """Forget the entry's value; its bytes count as released."""
        size = frame_bytes(self.values.pop(key, None))
        self.released_bytes += size
        return size

    def take_released(self) -> int:
        """Bytes released since the last call (and start counting again)."""
        released, self.released_bytes = self.released_bytes, 0
        return released

    def clear(self, run_id: str | None = None) -> None:
        """Forget everything (or only if the cache belongs to ``run_id``)."""
        if run_id is None or run_id == self.run_id:
            self.run_id, self.values, self.remaining, self.deferred = None, {}, {}, {}
            self.released_bytes, self.give_up = 0, {}


def _shallow(value: Any) -> Any:
    """A consumer's own view of a cached frame: its own column list and attrs, the same arrays."""
    if isinstance(value, pd.DataFrame):
        shallow = value.copy(deep=False)
        shallow.attrs = copy.deepcopy(value.attrs)
        return shallow
    return value


@dataclass(frozen=True)
class Readers:
    """Who in this run's plan reads an output (see :func:`consumer_count`)."""

    loading: int | None = None  # inputs that load it (None: unknown)
    deferred: int = 0  # deferred inputs (DeferredPlanFrame) that may load it
    superseded_by: dict[str, int] = field(default_factory=dict)  # asset -> deferred readers giving up once it has rows


def consumer_count(context: dg.OutputContext) -> Readers:
    """Who among the step inputs of this run's plan reads this output: the loading inputs, the
    deferred ones (:data:`DeferredPlanFrame`), and which of those give up once an asset named by
    their step's :data:`DEFERRED_UNLESS_TAG` is staged with rows.

    Dagster has no public API for "how many steps of this run load this output" (the job graph
    does not know which steps the run executes, nor which inputs are ``deps=`` ordering edges
    that never load); this one function reads the run's execution plan, which is internal. If
    that ever changes shape, the count is unknown and the frame simply stays cached until the
    run ends (more memory, same results).
    """
    try:
        plan = context.step_context.execution_plan
    except Exception:  # direct IO manager use in tests (no run), or the internals moved
        return Readers()
    step_key, name = context.step_key, context.name
    count = deferred = 0
    superseded_by: dict[str, int] = {}
    for step in plan.steps:
        for step_input in step.step_inputs:
            if step_input.dagster_type_key == "Nothing":  # an ordering dependency (deps=): never loads
                continue
            dependencies = getattr(step_input, "get_step_output_handle_dependencies", None)
            for handle in dependencies() if dependencies else ():
                if handle.step_key == step_key and handle.output_name == name:
                    if step_input.dagster_type_key == DeferredPlanFrame.key:
                        deferred += 1
                        unless = (step.tags or {}).get(DEFERRED_UNLESS_TAG)
                        if unless:
                            superseded_by[unless] = superseded_by.get(unless, 0) + 1
                    else:
                        count += 1
    return Readers(count, deferred, superseded_by)


@dataclass
class VersionPlanInputs:
    """What every stage starts from: the version, its parameters and its input set."""

    version_id: str
    input_set: str
    params: PlanningParameters
    inputs: PlanningInputs


def load_version_inputs(store, version_id: str) -> VersionPlanInputs:
    version = store.find_version(version_id)
    if version is None:
        raise dg.Failure(
            description=f"plan version {version_id!r} does not exist in the plan store {store.location.describe()}: "
            "create it first (plan-pipeline version create --version-id V --input-set L)"
        )
    if version.status in ("approved", "superseded"):
        raise dg.Failure(
            description=f"plan version {version_id!r} is {version.status}: its plan is frozen; "
            "create a new version to re-plan"
        )
    if version.input_set is None:
        raise dg.Failure(
            description=f"plan version {version_id!r} has no input set (imported read-only version); "
            "it cannot be recomputed"
        )
    params = validate_parameters(version.params).resolved()
    return VersionPlanInputs(version_id, version.input_set, params, store.load_input_set(version.input_set))


def _upstream_run_id(upstream: dg.OutputContext | None) -> str | None:
    try:
        return upstream.run_id if upstream is not None else None
    except Exception:  # no run recorded for the upstream output (direct IO manager use)
        return None


class _RunScopedIOManager(dg.ConfigurableIOManager):
    """An IO manager whose memory is its run's: Dagster builds a copy per run and calls
    ``setup_for_execution`` before the first step and ``teardown_after_execution`` after the last
    (also when the run fails). Used directly (tests), it has no run: nothing is cached."""

    plan_store: PlanStoreResource
    _instance: dg.DagsterInstance | None = PrivateAttr(default=None)
    _run_id: str | None = PrivateAttr(default=None)
    _cache: RunLocalCache = PrivateAttr(default_factory=RunLocalCache)
    _loading_step: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._instance = context.instance
        self._run_id = context.run.run_id if context.run is not None else None
        self._cache = RunLocalCache()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._cache.clear()  # frames no step of this run reads any more

    def _remember(self, key: tuple[str, str], value: Any, readers: Readers | None = None) -> None:
        if self._run_id is not None:
            readers = readers or Readers()
            self._cache.put(self._run_id, key, value, consumers=readers.loading, deferred=readers.deferred,
                            superseded_by=readers.superseded_by)

    def _recall(self, key: tuple[str, str]) -> Any | None:
        return self._cache.get(self._run_id, key)

    def _free_released_frames(self, context: dg.InputContext) -> None:
        """At a step's first input: a full garbage collection if the cache has let go of at least
        :data:`COLLECT_AFTER_RELEASED_BYTES` since the last one (the steps that read those frames
        have finished by now, so the collection frees them; see the constant)."""
        try:
            step = context.step_context.step.key
        except Exception:  # direct IO manager use in tests (no run)
            return
        if step == self._loading_step:
            return
        self._loading_step = step
        if self._cache.released_bytes >= COLLECT_AFTER_RELEASED_BYTES:
            self._cache.take_released()
            gc.collect()


class PlanSeriesIOManager(_RunScopedIOManager):
    """Stage DataFrames <-> ``plan_series`` / ``plan_kpis`` rows of (version, level).

    It has the frames the run let go of freed before the next step (:data:`COLLECT_AFTER_RELEASED_BYTES`).
    The objects that exist when the run starts (modules, definitions, the instance: ~160,000) outlive
    it, so they are frozen out of the collector's work for the run (``gc.freeze``, undone at
    teardown): a collection then takes 3-9 ms instead of 160-260 ms at 5,000 SKUs.
    """

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        gc.freeze()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        super().teardown_after_execution(context)
        gc.unfreeze()

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        meta = context.definition_metadata or {}
        level = meta.get(PLAN_LEVEL)
        if not level:
            raise dg.DagsterInvariantViolationError(
                f"asset {context.asset_key.to_user_string()} has no '{PLAN_LEVEL}' metadata"
            )
        version = context.partition_key
        table = "plan_kpis" if meta.get(PLAN_TABLE) == "plan_kpis" else "plan_series"
        store = self.plan_store.get_store()
        if obj is None:
            if not meta.get(OPTIONAL_LEVEL):
                raise dg.DagsterInvariantViolationError(
                    f"asset {context.asset_key.to_user_string()} returned None but level {level!r} is required"
                )
            store.stage_not_applicable(version, level, table, run_id=context.run_id)
            self._remember((version, f"{table}:{level}"), NOT_APPLICABLE, consumer_count(context))
            return
        if table == "plan_kpis":
            count = store.stage_kpis(version, level, obj, run_id=context.run_id)
        else:
            count = store.stage_series(version, level, obj, run_id=context.run_id)
        self._remember((version, f"{table}:{level}"), obj, consumer_count(context))
        self._cache.supersede(self._run_id, context.asset_key.to_user_string())
        context.add_output_metadata(
            {
                "dagster/row_count": dg.MetadataValue.int(count),
                "plan_level": level,
                "plan_table": table,
                "plan_version": version,
                "source_run_id": context.run_id,
                "plan_state": "staged: readers see it once published_plan publishes this run's whole plan",
                "db_path": dg.MetadataValue.path(store.location.describe()),
                **table_preview(obj),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        self._free_released_frames(context)
        upstream = context.upstream_output
        meta = (upstream.definition_metadata if upstream is not None else None) or {}
        level = meta.get(PLAN_LEVEL)
        if level is None:
            raise dg.DagsterInvariantViolationError(
                f"input {context.name!r} comes from an output without {PLAN_LEVEL!r} metadata; "
                "only plan stage assets can feed a plan stage")
        version = context.asset_partition_key
        table = "plan_kpis" if meta.get(PLAN_TABLE) == "plan_kpis" else "plan_series"
        key = (version, f"{table}:{level}")
        upstream_run = _upstream_run_id(upstream)
        optional = bool(meta.get(OPTIONAL_LEVEL))
        if context.dagster_type is not None and context.dagster_type.key == DeferredPlanFrame.key:
            cached = self._cache.take_deferred(self._run_id, key)
            if cached is NOT_APPLICABLE:
                return DeferredFrame(lambda: None)
            if cached is not None:
                return DeferredFrame(lambda: cached)
            store = self.plan_store.get_store()
            return DeferredFrame(lambda: _read_level(store, version, level, table, upstream_run, optional))
        cached = self._recall(key)
        if cached is NOT_APPLICABLE:
            return None
        if cached is not None:
            return cached
        return _read_level(self.plan_store.get_store(), version, level, table, upstream_run, optional)


def _read_level(store, version: str, level: str, table: str, upstream_run: str | None, optional: bool) -> Any:
    """A level as the run that produced it staged it (this run, or for a re-execution the run it
    continues), else the published one; None where the stage did not apply."""
    with store.session():  # one store connection for the lookups and the read
        state = store.level_state(version, level, upstream_run) if upstream_run else None
        run = upstream_run if state is not None else None
        if run is None:
            state = store.level_state(version, level)
        if state == "not_applicable" or (state is None and optional):
            return None
        if table == "plan_kpis":
            return store.read_kpis(version, level, run_id=run)
        return store.read_series(version, level, run_id=run)


class PlanInputsIOManager(_RunScopedIOManager):
    """The version's input set is already stored immutably; loading re-reads it."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is not None:
            self._remember((context.partition_key, "planning_inputs"), obj)

    def load_input(self, context: dg.InputContext) -> VersionPlanInputs:
        key = (context.asset_partition_key, "planning_inputs")
        cached = self._recall(key)
        if cached is not None:
            return cached
        store = self.plan_store.get_store()
        with store.session():  # one store connection for the version and its input set
            loaded = load_version_inputs(store, context.asset_partition_key)
        # a run that did not execute planning_inputs (a re-execution from a later step): the
        # other steps of this run take the inputs from memory instead of reading them again
        self._remember(key, loaded)
        return loaded
