"""The plan report of one published version: its data gathered from the plan store, then drawn and
written by :mod:`plan_pipeline.exports.plan_review_report` (which reads no store).

Where it goes: ``plan-pipeline report V --out DIR`` (default ``./plan-report-<V>``) and the
``plan_review_report`` asset (``<store home>/reports/<V>/``, :func:`published_report_dir`). Both call
:func:`write_plan_report`.

The report shows the *final* plan: the anchored branch's levels (``det_adjusted``,
``mrp_final_adjusted``, ``weekly_summary_adjusted``, ``report_adjusted``) where the version
published them, else the plain chain's (:func:`final_level`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from plan_pipeline.exports.plan_review_report import (
    FAMILY_MONTH_COLUMNS,
    INVENTORY_COLUMNS,
    KPI_COLUMNS,
    TOP_SKU_COLUMNS,
    TOP_SKUS,
    WEEKLY_COLUMNS,
    ReportComparison,
    ReportFiles,
    ReportFrames,
    ReportHeader,
    write_report,
)
from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_LEVEL
from plan_pipeline.store.level_slices import read_series_slice
from plan_pipeline.store.repository import PlanStore, PlanStoreError, check_identifier

#: ``<home>/reports/<version>/``: where the ``plan_review_report`` asset writes.
REPORTS_DIR_NAME = "reports"
ADJUSTED_SUFFIX = "_adjusted"

#: (store, version) -> the version against its baseline. The version comparison (its baseline
#: rule and query) lives in the store; the caller that has it passes it here.
ComparisonProvider = Callable[[PlanStore, str], ReportComparison]


def default_report_dir(version_id: str) -> Path:
    """``./plan-report-<version>`` (the CLI's folder when ``--out`` is not given)."""
    return Path.cwd() / f"plan-report-{check_identifier('version id', version_id)}"


def published_report_dir(store: PlanStore, version_id: str) -> Path:
    """``<store home>/reports/<version>``: the folder of the store file (the project home, unless
    ``$PLAN_PIPELINE_DB`` puts the store elsewhere; a PostgreSQL store: the project home), where
    the asset writes. Version ids are checked identifiers (no path traversal)."""
    return store.files_home / REPORTS_DIR_NAME / check_identifier("version id", version_id)


def final_level(published: dict[str, int] | list[str], level: str) -> str:
    """The anchored branch's level where the version published it, else the plain one."""
    return level + ADJUSTED_SUFFIX if level + ADJUSTED_SUFFIX in published else level


#: The bucket the report's "changes against the baseline" section compares by.
REPORT_COMPARISON_BY = "family"


def baseline_comparison_of(store: PlanStore, version_id: str) -> ReportComparison:
    """The version against its baseline (the store's rule, :meth:`PlanStore.comparable_baseline`),
    per family: what the report shows unless the caller passes another comparison."""
    baseline, why_not = store.comparable_baseline(version_id)
    if why_not is not None:
        return ReportComparison(baseline=None, note=why_not)
    assert baseline is not None
    frame = store.compare_versions(baseline, version_id, by=REPORT_COMPARISON_BY)
    return ReportComparison(baseline=baseline, frame=frame, by=REPORT_COMPARISON_BY)


def _published_plan(store: PlanStore, version_id: str) -> dict:
    if store.find_version(version_id) is None:
        raise PlanStoreError(f"unknown plan version {version_id!r}: see `plan-pipeline version list`")
    publication = store.publication(version_id)
    if not publication["complete"]:
        raise PlanStoreError(f"plan version {version_id!r} has no published plan yet: materialize it first "
                             f"(`plan-pipeline materialize {version_id}`)")
    return publication


def _read_frames(store: PlanStore, version_id: str, publication: dict, comparison: ReportComparison) -> ReportFrames:
    record = store.get_version(version_id)
    levels = publication["levels"]
    detail_level = final_level(levels, "det")
    # Only the columns each sum needs, one read at a time (the whole detail frame and the whole MRP
    # level held at once took 14 GB at 50,000 SKUs x 104 weeks); the sums run in pandas on the same
    # values in the same row order as before, so the numbers are unchanged.
    measures = ["demand", "supply", "backlog"]
    detail = read_series_slice(store, version_id, detail_level, ["family", "period", *measures])
    family_month = (detail.groupby(["family", "period"], as_index=False, sort=True)[measures]
                    .sum())[list(FAMILY_MONTH_COLUMNS)]
    del detail

    weekly = store.read_series(version_id, final_level(levels, "weekly_summary"))
    if "zone" not in weekly.columns:
        weekly = weekly.assign(zone=None)
    weekly = weekly[list(WEEKLY_COLUMNS)].reset_index(drop=True)

    demand = read_series_slice(store, version_id, detail_level, ["sku", "demand"])
    by_sku = demand.groupby("sku", as_index=False, sort=True)["demand"].sum()
    del demand
    top_skus = (by_sku.sort_values(["demand", "sku"], ascending=[False, True], kind="stable")
                .head(TOP_SKUS).reset_index(drop=True))[list(TOP_SKU_COLUMNS)]
    mrp = read_series_slice(store, version_id, final_level(levels, "mrp_final"), ["item", "week", "on_hand_end"],
                            items=top_skus["sku"].tolist())
    inventory = pd.DataFrame({"sku": mrp["item"].to_numpy(), "week": mrp["week"].to_numpy(),
                              "on_hand": mrp["on_hand_end"].to_numpy(float)})[list(INVENTORY_COLUMNS)]

    scorecard = None
    if store.has_kpis(version_id, SCORECARD_LEVEL):
        rows = store.read_kpis(version_id, SCORECARD_LEVEL)
        scorecard = rows[rows["category"] == SCORECARD_CATEGORY][list(KPI_COLUMNS)].reset_index(drop=True)
    reference_level = final_level(publication["kpi_levels"], "report")
    reference = store.read_kpis(version_id, reference_level)[list(KPI_COLUMNS)]

    published_at = publication["published_at"]
    header = ReportHeader(
        version_id=version_id,
        status=record.status + (" (read-only)" if record.read_only and record.status != "imported" else ""),
        input_set=record.input_set,
        parameters=record.params.to_dict(),
        created_at=record.created_at.isoformat(sep=" ", timespec="seconds") + " UTC",
        planned_at=published_at.isoformat(sep=" ", timespec="seconds") + " UTC" if published_at else None,
        run_ids=tuple(publication["runs"]),
        note=record.note,
        branch="anchored" if detail_level.endswith(ADJUSTED_SUFFIX) else "plain",
    )
    return ReportFrames(header=header, family_month=family_month, weekly=weekly, inventory=inventory,
                        top_skus=top_skus, scorecard=scorecard, reference_kpis=reference,
                        comparison=comparison, reference_level=reference_level)


def gather_report_frames(store: PlanStore, version_id: str, *,
                         comparison: ReportComparison | ComparisonProvider | None = None) -> ReportFrames:
    """What the report of ``version_id`` shows, read from its published plan (store read APIs only).

    ``comparison``: the version against its baseline, as a ready :class:`ReportComparison` or a
    provider called with ``(store, version_id)``; None: the version's baseline by the store's rule
    (:func:`baseline_comparison_of`). Refuses an
    unknown version and one with no published plan (:class:`PlanStoreError`). The levels are read
    one by one; if another run publishes the version meanwhile, they are read again (once).
    """
    check_identifier("version id", version_id)
    provider: ComparisonProvider
    if comparison is None:
        provider = baseline_comparison_of
    elif isinstance(comparison, ReportComparison):
        ready = comparison
        provider = lambda _store, _version: ready  # noqa: E731
    else:
        provider = comparison
    for _attempt in range(2):
        publication = _published_plan(store, version_id)
        frames = _read_frames(store, version_id, publication, provider(store, version_id))
        if store.publication(version_id)["runs"] == publication["runs"]:
            return frames
    raise PlanStoreError(f"plan version {version_id!r} was re-published twice while its report was read; try again")


def write_plan_report(store: PlanStore, version_id: str, out_dir: str | Path | None = None, *,
                      comparison: ReportComparison | ComparisonProvider | None = None) -> ReportFiles:
    """Gather, draw and write the report of ``version_id`` into ``out_dir`` (default
    :func:`default_report_dir`); returns the written files."""
    frames = gather_report_frames(store, version_id, comparison=comparison)
    return write_report(frames, Path(out_dir) if out_dir is not None else default_report_dir(version_id))
