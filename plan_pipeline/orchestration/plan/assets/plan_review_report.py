"""``plan_review_report``: the version's plan report (self-contained HTML + PNG charts) under
``<store home>/reports/<version>/`` (the folder of the store file, normally the project home), after
``published_plan`` and ``baseline_comparison`` (asset group ``plan_review``); its "changes against the
baseline" section compares by family with the baseline of the store's rule.

It reads the published plan only (store read APIs, :mod:`plan_pipeline.exports.plan_review`), so
it shows what every reader sees. A frozen version's run skips it like every plan step (its input,
``published_plan``, is not produced; ``planning_inputs`` records its "frozen: nothing to do"
materialization): the report written when the version was last planned stays. The page and the
charts are written file by file, each replaced whole, the page last.
"""
import dagster as dg

from plan_pipeline.exports.plan_review import gather_report_frames, published_report_dir
from plan_pipeline.exports.plan_review_report import write_report
from plan_pipeline.orchestration.plan.assets.baseline_comparison import baseline_comparison
from plan_pipeline.orchestration.plan.assets.common import PLAN_DOMAIN, PLAN_OWNERS
from plan_pipeline.orchestration.plan.code_versions import source_hash
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_REVIEW_GROUP, plan_version_partitions
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.store import PlanStoreError

#: The sources that decide what the report shows (its Dagster code version).
REPORT_SOURCES = ("exports/plan_review.py", "exports/plan_review_report.py")


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_REVIEW_GROUP,
    # DuckDB is read at the start of the step; drawing holds the pool a few seconds more (a Dagster
    # step cannot give its pool slot back), but no store connection is open while it draws.
    pool=DUCKDB_POOL,
    deps=[baseline_comparison],  # after published_plan (baseline_comparison follows it)
    kinds={"html", "python"},
    owners=list(PLAN_OWNERS),
    tags={"domain": PLAN_DOMAIN, "stage": "review_report"},
    code_version=source_hash(REPORT_SOURCES),
    description="The plan report of the version's published plan: report.html (opens with no network, charts "
    "embedded) and PNG charts under <home>/reports/<version>/: demand/supply/backlog per family and month, weekly "
    "leveled load vs capacity with the weeks over 100 % explained, projected inventory of the ten largest SKUs, "
    "the KPI table and the changes against the baseline. Also `plan-pipeline report V --out DIR`.",
)
def plan_review_report(context: dg.AssetExecutionContext, plan_store: PlanStoreResource) -> dg.MaterializeResult:
    version = context.partition_key
    store = plan_store.get_store()
    try:
        with store.session():  # the reads share one connection, closed before the charts are drawn
            frames = gather_report_frames(store, version)
        files = write_report(frames, published_report_dir(store, version))
    except PlanStoreError as exc:
        raise dg.Failure(description=f"plan report of version {version!r} not written: {exc}",
                         allow_retries=False) from None
    context.log.info(f"plan report of version {version!r}: {files.html}")
    return dg.MaterializeResult(metadata={
        "report_path": dg.MetadataValue.path(str(files.html)),
        "charts": dg.MetadataValue.int(len(files.charts)),
        "chart_files": dg.MetadataValue.json([path.name for path in files.charts]),
        "plan_version": version,
    })
