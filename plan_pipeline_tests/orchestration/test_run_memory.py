"""What a plan run keeps in memory: the run-local frame cache, step order, nothing retained after."""
from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from plan_pipeline.definitions import defs
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.common import STEP_PRIORITY
from plan_pipeline.orchestration.plan.io_managers import RunLocalCache
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters


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
