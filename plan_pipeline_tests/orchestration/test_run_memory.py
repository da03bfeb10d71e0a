"""What a plan run keeps in memory: the run-local frame cache, step order, nothing retained after."""
from __future__ import annotations

import gc
import weakref

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from plan_pipeline.definitions import defs
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan import io_managers
from plan_pipeline.orchestration.plan.assets.common import STEP_PRIORITY
from plan_pipeline.orchestration.plan.io_managers import (
    RUN_CACHE_BUDGET_ENV,
    DeferredFrame,
    PlanSeriesIOManager,
    RunLocalCache,
    frame_bytes,
    resolve_frame,
    run_cache_budget_bytes,
)
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.kpis import scorecard_kpis
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import SCORECARD_LEVEL

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres


def test_cache_hands_out_shallow_copies_and_drops_after_the_last_consumer():
    cache = RunLocalCache()
    frame = pd.DataFrame({"item": ["A", "B"], "qty": [1.0, 2.0]})
    frame.attrs = {"summary": {"items": 2}}
    cache.put("run-1", ("v", "plan_series:mrp"), frame, consumers=2)

    first = cache.get("run-1", ("v", "plan_series:mrp"))
    assert first is not frame
    assert np.shares_memory(first["qty"].to_numpy(), frame["qty"].to_numpy())  # no copy of the rows
    first["extra"] = 1.0  # a consumer's own column does not reach the cached frame
    first.attrs["summary"]["items"] = 99  # nor does a change to its attrs
    assert list(frame.columns) == ["item", "qty"] and frame.attrs == {"summary": {"items": 2}}

    second = cache.get("run-1", ("v", "plan_series:mrp"))
    pd.testing.assert_frame_equal(second, frame)
    assert cache.get("run-1", ("v", "plan_series:mrp")) is None  # both consumers served: dropped
    assert not cache.values

    cache.put("run-1", ("v", "plan_series:unread"), frame, consumers=0)
    assert not cache.values  # nobody reads it in this run: never held
    cache.put("run-1", ("v", "plan_series:unknown"), frame)
    assert cache.get("run-1", ("v", "plan_series:unknown")) is not None
    assert cache.get("run-1", ("v", "plan_series:unknown")) is not None  # unknown consumers: kept
    assert cache.get("run-2", ("v", "plan_series:unknown")) is None  # another run never sees it
    cache.put("run-2", ("v", "plan_series:x"), frame, consumers=1)
    assert set(cache.values) == {("v", "plan_series:x")}  # a new run starts empty


def test_frames_only_deferred_readers_need_are_kept_within_the_budget_then_dropped():
    frame = pd.DataFrame({"qty": np.arange(1000, dtype=np.float64)})  # 8,000 bytes
    assert frame_bytes(frame) == 8000
    cache = RunLocalCache(budget_bytes=25000)
    cache.put("run-1", ("v", "a"), frame, consumers=1, deferred=1)
    cache.put("run-1", ("v", "b"), frame, consumers=1, deferred=1)
    assert cache.get("run-1", ("v", "a")) is not None  # its last loading reader: kept for the deferred one
    assert ("v", "a") in cache.values
    taken = cache.take_deferred("run-1", ("v", "a"))
    assert np.shares_memory(taken["qty"].to_numpy(), frame["qty"].to_numpy())
    assert ("v", "a") not in cache.values  # every reader served: dropped

    cache.put("run-1", ("v", "c"), frame, consumers=1)
    assert cache.get("run-1", ("v", "b")) is not None  # b, c, d: 24,000 bytes, within the budget while b is idle
    cache.put("run-1", ("v", "d"), frame, consumers=1)
    assert ("v", "b") in cache.values
    cache.put("run-1", ("v", "e"), frame, consumers=1)  # 32,000 bytes: the idle entry goes
    assert set(cache.values) == {("v", "c"), ("v", "d"), ("v", "e")}
    assert cache.take_deferred("run-1", ("v", "b")) is None  # its reader goes to the store
    for key in ("c", "d", "e"):  # entries with loading readers left are never dropped for the budget
        assert cache.get("run-1", ("v", key)) is not None
    assert not cache.values and not cache.remaining and not cache.deferred

    cache.put("run-1", ("v", "only-deferred"), frame, consumers=0, deferred=1)
    assert cache.take_deferred("run-1", ("v", "only-deferred")) is not None
    assert cache.take_deferred("run-2", ("v", "x")) is None
    # a, b, and the four served above were let go of: 8,000 bytes each, counted once
    assert cache.take_released() == 6 * 8000 and cache.take_released() == 0


def test_deferred_readers_give_up_their_claim_once_the_asset_they_wait_on_has_rows():
    frame = pd.DataFrame({"qty": np.arange(1000, dtype=np.float64)})  # 8,000 bytes
    cache = RunLocalCache(budget_bytes=10**9)
    det, weekly, mrp = ("v", "plan_series:det"), ("v", "plan_series:weekly"), ("v", "plan_series:mrp")
    cache.put("run-1", det, frame, consumers=1, deferred=1, superseded_by={"adjusted_mrp_plan": 1})
    cache.put("run-1", weekly, frame, consumers=0, deferred=2, superseded_by={"adjusted_mrp_plan": 1})
    cache.put("run-1", mrp, frame, consumers=1, deferred=1, superseded_by={"adjusted_mrp_plan": 1})
    assert cache.get("run-1", det) is not None  # its last loading reader: kept for the deferred one
    cache.supersede("run-2", "adjusted_mrp_plan")  # another run's asset changes nothing
    cache.supersede("run-1", "anchored_detail_plan")  # nor an asset nobody waits on
    assert set(cache.values) == {det, weekly, mrp}
    cache.take_released()
    cache.supersede("run-1", "adjusted_mrp_plan")
    assert det not in cache.values  # no reader left
    assert weekly in cache.values and cache.deferred[weekly] == 1  # a deferred reader that does not wait on it
    assert mrp in cache.values  # a loading reader still ahead
    assert cache.take_released() == 8000
    assert cache.get("run-1", mrp) is not None and mrp not in cache.values  # then served and dropped
    cache.supersede("run-1", "adjusted_mrp_plan")  # once only
    assert cache.deferred[weekly] == 1


@pytest.mark.parametrize("collect_after", [0, float("inf")], ids=["collected", "never-collected"])
def test_frames_whose_readers_have_finished_are_freed_before_the_next_step(plan_env, sample_dir, monkeypatch,
                                                                         collect_after):
    """Dagster keeps each step's outputs on the step's context for the run's hooks, and a finished
    step's context sits in reference cycles: a frame the cache let go of lives on until a full
    garbage collection. With automatic collection off, the frames no reader needs any more (the
    MRP levels, read only by the capacity steps; the plain chain's frames of an anchored version)
    are gone when the scorecard starts loading because the IO manager collects; without that
    collection they are still alive then."""
    monkeypatch.setattr(io_managers, "COLLECT_AFTER_RELEASED_BYTES", collect_after)
    cached: dict[str, weakref.ref] = {}
    alive_when_loading: dict[str, set[str]] = {}  # step -> cached frames alive when it starts loading
    original_put, original_free = RunLocalCache.put, PlanSeriesIOManager._free_released_frames

    def put(self, run_id, key, value, *args, **kwargs):
        if isinstance(value, pd.DataFrame):
            cached[key[1]] = weakref.ref(value)
        original_put(self, run_id, key, value, *args, **kwargs)

    def free_released_frames(self, context):
        original_free(self, context)
        alive_when_loading.setdefault(context.step_context.step.key,
                                      {level for level, ref in cached.items() if ref() is not None})

    monkeypatch.setattr(RunLocalCache, "put", put)
    monkeypatch.setattr(PlanSeriesIOManager, "_free_released_frames", free_released_frames)
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters(preset="det_near", cutover_date="2025-03-12",
                                                            apply_adjusted=True))
    gc.collect()
    gc.disable()
    try:
        outcome = materialize_version(plan_env.instance(), store, "v1")
    finally:
        gc.enable()
    assert outcome.success, outcome.errors
    # the MRP levels' readers have finished; the plain chain's frames only the scorecard's deferred
    # inputs wanted, and they gave up once adjusted_mrp_plan had rows
    finished = {"plan_series:mrp", "plan_series:mrp_adjusted", "plan_series:det", "plan_series:mrp_final"}
    assert finished <= set(cached)
    at_scorecard = alive_when_loading["plan_scorecard"]
    assert {"plan_series:det_adjusted", "plan_series:mrp_final_adjusted"} <= at_scorecard  # still to be read
    if collect_after == 0:
        assert not finished & at_scorecard
    else:
        assert finished <= at_scorecard


def test_deferred_frames_load_once_and_the_budget_setting(monkeypatch):
    calls = []
    deferred = DeferredFrame(lambda: calls.append(1) or pd.DataFrame({"a": [1]}))
    assert calls == []  # nothing read until the step uses it
    assert resolve_frame(deferred) is resolve_frame(deferred) and calls == [1]
    assert resolve_frame(None) is None
    monkeypatch.setenv(RUN_CACHE_BUDGET_ENV, "2.5")
    assert run_cache_budget_bytes() == int(2.5 * 2**20)
    monkeypatch.delenv(RUN_CACHE_BUDGET_ENV)
    assert run_cache_budget_bytes() == 1024 * 2**20
    monkeypatch.setenv(RUN_CACHE_BUDGET_ENV, "lots")
    with pytest.raises(ValueError, match=RUN_CACHE_BUDGET_ENV):
        run_cache_budget_bytes()


@pytest.fixture
def run_caches(monkeypatch):
    """Every run-local cache the IO managers create (one per IO manager per run), and what each
    held when its run was torn down (``run_id``, keys, remaining consumer counts)."""
    created: list[RunLocalCache] = []
    at_teardown: list[tuple] = []
    original_init, original_clear = RunLocalCache.__init__, RunLocalCache.clear

    def init(self):
        original_init(self)
        created.append(self)

    def clear(self, run_id=None):
        if self.run_id is not None:
            at_teardown.append((self.run_id, set(self.values), dict(self.remaining)))
        original_clear(self, run_id)

    monkeypatch.setattr(RunLocalCache, "__init__", init)
    monkeypatch.setattr(RunLocalCache, "clear", clear)
    return created, at_teardown


def _step_starts(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return [r.event_log_entry.step_key for r in records]


def test_plain_chain_finishes_before_the_anchored_branch_and_nothing_is_kept(plan_env, sample_dir, run_caches):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("full", "sample", PlanningParameters(preset="det_near", cutover_date="2025-03-12",
                                                              apply_adjusted=True))
    instance = plan_env.instance()
    outcome = materialize_version(instance, store, "full")
    assert outcome.success, outcome.errors

    order = _step_starts(instance, outcome.run_id)
    assert order[:3] == ["planning_inputs", "aggregate_plan", "detail_plan"]
    assert order.index("plan_report") < order.index("anchored_detail_plan")
    assert order.index("mrp_plan") < order.index("capacity_plan") < order.index("plan_report")
    assert order.index("adjusted_plan_report") < order.index("anchored_level_reconciliation")
    # the step order is declared on the ops, where the UI shows it
    job = defs.resolve_job_def("plan_job")
    priorities = {node.name: node.definition.tags.get("dagster/priority") for node in job.graph.nodes}
    assert {name: int(priorities[name]) for name in STEP_PRIORITY} == STEP_PRIORITY

    # every frame of the run was dropped once read; nothing outlives the run
    created, _ = run_caches
    assert created and all(cache.run_id is None and not cache.values for cache in created)
    assert gc.get_freeze_count() == 0  # the objects frozen out of the collector for the run are back


def test_every_cached_frame_is_dropped_by_its_last_consumer_during_the_run(plan_env, sample_dir, run_caches):
    """Consumer counts come from the run's plan: when the run is torn down, only the inputs entry
    (no count) is left, so every level was dropped exactly when its last reader loaded it."""
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters(preset="blend", cutover_date="2025-03-12",
                                                            apply_adjusted=True))
    outcome = materialize_version(plan_env.instance(), store, "v1")
    assert outcome.success, outcome.errors
    _, at_teardown = run_caches
    assert {run_id for run_id, _, _ in at_teardown} == {outcome.run_id}
    assert set().union(*(keys for _, keys, _ in at_teardown)) == {("v1", "planning_inputs")}
    assert not any(remaining for _, _, remaining in at_teardown)


def test_without_a_cache_budget_the_scorecard_reads_the_plain_chain_from_the_store_only_when_final(
        plan_env, sample_dir, run_caches, monkeypatch):
    """Budget 0 (what 50,000 SKUs come to): the plain chain's frames are dropped once only the
    scorecard's deferred inputs need them; the scorecard of a plain version reads them back from the
    run's staged levels, an anchored version's never touches them; the KPIs are those of the final plan."""
    monkeypatch.setenv(RUN_CACHE_BUDGET_ENV, "0")
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("plain", "sample", PlanningParameters(cutover_date="2025-03-12"))
    store.create_version("anchored", "sample", PlanningParameters(preset="det_near", cutover_date="2025-03-12",
                                                                  apply_adjusted=True))
    reads: list[tuple[str, str]] = []
    original = type(store).read_series

    def read_series(self, version_id, level, *, run_id=None):
        reads.append((version_id, level))
        return original(self, version_id, level, run_id=run_id)

    monkeypatch.setattr(type(store), "read_series", read_series)
    plain_levels = {"det", "mrp_final", "weekly_summary"}
    in_run: dict[str, set[str]] = {}
    for version, suffix in (("plain", ""), ("anchored", "_adjusted")):
        reads.clear()
        outcome = materialize_version(plan_env.instance(), store, version)
        assert outcome.success, outcome.errors
        in_run[version] = {level for read_version, level in reads if read_version == version}
        expected = scorecard_kpis(store.read_series(version, "det" + suffix),
                                  store.read_series(version, "mrp_final" + suffix),
                                  store.read_series(version, "weekly_summary" + suffix),
                                  store.load_input_set("sample"), store.get_version(version).params.resolved())
        kpis = store.read_kpis(version, SCORECARD_LEVEL)
        pd.testing.assert_frame_equal(kpis[expected.columns].reset_index(drop=True), expected)
    assert plain_levels <= in_run["plain"]  # the scorecard read them back
    assert not plain_levels & in_run["anchored"]  # never needed
    created, _ = run_caches
    assert all(cache.run_id is None and not cache.values for cache in created)


def test_a_plain_version_s_scorecard_takes_the_plain_chain_from_the_run_cache(plan_env, sample_dir, monkeypatch):
    """The plain chain's deferred readers give up only where adjusted_mrp_plan has rows: a version
    without an adjusted plan keeps them cached, and its scorecard reads neither from the store."""
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("plain", "sample", PlanningParameters(cutover_date="2025-03-12"))
    reads: list[str] = []
    original = type(store).read_series

    def read_series(self, version_id, level, *, run_id=None):
        reads.append(level)
        return original(self, version_id, level, run_id=run_id)

    monkeypatch.setattr(type(store), "read_series", read_series)
    outcome = materialize_version(plan_env.instance(), store, "plain")
    assert outcome.success, outcome.errors
    assert not {"det", "mrp_final"} & set(reads)  # (the review report reads weekly_summary once published)
    assert store.read_kpis("plain", SCORECARD_LEVEL)["value"].notna().any()
