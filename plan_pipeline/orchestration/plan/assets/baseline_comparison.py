"""``baseline_comparison``: what changed in the version's published plan against its baseline.

Runs after ``published_plan``. The baseline is the store's rule
(:meth:`~plan_pipeline.store.comparison.ComparisonRepository.baseline_version`: the version this one
was duplicated from, else the latest approved version of its input set). The comparison per bucket
type (total, month, week, family, SKU) is stored with the version (``plan_kpis`` level
``baseline_comparison``, replaced in one transaction on every run, removed with the version) and
summarized in the materialization metadata: the baseline, the total change of every metric
(numeric, so the UI plots it across versions), and the biggest changes by family and by SKU.

A version without a baseline (or whose baseline has no published plan) materializes cleanly and
says so. A frozen version is never written: in a plan run its step is skipped like every step
after ``planning_inputs``; materialized alone it records that the stored comparison is kept.
"""
import dagster as dg

from plan_pipeline.orchestration.plan.assets.common import PLAN_DOMAIN, PLAN_OWNERS, step_order_tags
from plan_pipeline.orchestration.plan.assets.planning_inputs import FROZEN_STATE, unknown_version_refusal
from plan_pipeline.orchestration.plan.assets.published_plan import published_plan
from plan_pipeline.orchestration.plan.code_versions import source_hash
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_REVIEW_GROUP, plan_version_partitions
from plan_pipeline.orchestration.plan.planner_metadata import table
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.store.repository import COMPARISON_BUCKETS, COMPARISON_METRIC_NAMES, PlanStoreError, is_frozen

#: How many of the biggest changes the family and SKU tables show.
TOP_CHANGES = 10
#: The sources that decide the comparison's numbers (its Dagster code version).
COMPARISON_SOURCES = ("store/comparison.py", "orchestration/plan/assets/baseline_comparison.py")


def total_deltas(total) -> dict[str, dg.MetadataValue]:
    """``delta/<metric>`` for every compared metric (0.0 where unchanged): plottable across versions."""
    skipped = set(total.attrs.get("not_compared", []))
    deltas = dict(zip(total["metric"], total["delta"]))
    return {f"delta/{m}": dg.MetadataValue.float(float(deltas.get(m, 0.0)))
            for m in COMPARISON_METRIC_NAMES if m not in skipped}


def most_changed(frames: dict) -> str:
    """One line: the biggest change per bucket type (family, SKU, month, week)."""
    parts = []
    for by in ("family", "sku", "month", "week"):
        frame = frames.get(by)
        if frame is not None and len(frame):
            top = frame.iloc[0]
            parts.append(f"{by} {top['bucket']}: {top['metric']} {float(top['delta']):+.6g}")
    return "; ".join(parts) or "nothing changed"


def run_id(context: dg.AssetExecutionContext) -> str | None:
    """The run writing the comparison (None when the body is called directly, outside a run)."""
    try:
        return context.run.run_id
    except dg.DagsterError:  # DagsterInvalidPropertyError: no run
        return None


def frozen(context: dg.AssetExecutionContext, version: str, status: str) -> dg.MaterializeResult:
    state = FROZEN_STATE.format(status=status)
    context.log.info(f"plan version {version!r} is {state}; its stored comparison is kept")
    return dg.MaterializeResult(metadata={"plan_version": version, "plan_state": state})


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_REVIEW_GROUP,
    pool=DUCKDB_POOL,
    deps=[published_plan],
    kinds={"duckdb"},
    op_tags=step_order_tags("baseline_comparison"),
    owners=list(PLAN_OWNERS),
    tags={"domain": PLAN_DOMAIN, "stage": "compare"},
    code_version=source_hash(COMPARISON_SOURCES),
    description="The published plan compared with its baseline (the version it was duplicated from, else the "
    "latest approved version of its input set): plan measures and scorecard KPIs per total, month, week, family "
    "and SKU, stored with the version (plan_kpis level 'baseline_comparison'); the metadata shows what changed most.",
)
def baseline_comparison(context: dg.AssetExecutionContext, plan_store: PlanStoreResource) -> dg.MaterializeResult:
    store = plan_store.get_store()
    with store.session():  # one store connection for the step (not one per store call)
        return compare_with_baseline(context, store)


def compare_with_baseline(context: dg.AssetExecutionContext, store) -> dg.MaterializeResult:
    version = context.partition_key
    record = store.find_version(version)
    if record is None:
        raise dg.Failure(description=unknown_version_refusal(version), allow_retries=False)
    if is_frozen(record.status, record.read_only):
        return frozen(context, version, record.status)
    try:
        baseline, reason = store.comparable_baseline(version)
        if reason is not None:
            store.write_baseline_comparison(version, baseline, {}, run_id=run_id(context))
            context.log.info(f"plan version {version!r}: {reason}")
            return dg.MaterializeResult(metadata={
                "plan_version": version, "baseline": baseline or "none", "comparison": reason,
                "dagster/row_count": dg.MetadataValue.int(0)})
        assert baseline is not None  # comparable: the store named it
        frames = {by: store.compare_versions(baseline, version, by) for by in COMPARISON_BUCKETS}
        rows = store.write_baseline_comparison(version, baseline, frames, run_id=run_id(context))
    except PlanStoreError:
        now = store.get_version(version)
        if not is_frozen(now.status, now.read_only):
            raise
        return frozen(context, version, now.status)  # approved while this step ran: nothing written
    headline = most_changed(frames)
    context.log.info(f"plan version {version!r} against baseline {baseline!r}: {headline}")
    return dg.MaterializeResult(metadata={
        "plan_version": version,
        "baseline": baseline,
        "baseline_status": store.get_version(baseline).status,
        "comparison": f"{version} minus {baseline}",
        "most_changed": headline,
        "changes": dg.MetadataValue.json({by: int(len(f)) for by, f in frames.items()}),
        **total_deltas(frames["total"]),
        "top_family_changes": table(frames["family"].head(TOP_CHANGES)),
        "top_sku_changes": table(frames["sku"].head(TOP_CHANGES)),
        "not_compared": dg.MetadataValue.json(frames["total"].attrs.get("not_compared", [])),
        "dagster/row_count": dg.MetadataValue.int(rows),
    })
