#!/usr/bin/env python
"""Benchmark of the version comparison (``PlanStore.compare_versions``, ``plan-pipeline diff --by``).

1. writes sample inputs (``generate_sample_inputs``, the code behind ``plan-pipeline sample-inputs``):
   ``--families`` x ``--skus-per-family`` SKUs (default 100 x 50 = 5,000), 12 months, 2 components
   per SKU, seed 7;
2. in a fresh project home imports them, creates version ``base`` (plain chain, default
   parameters) and plans it with the real in-process Dagster run (``materialize_version``);
3. duplicates it as ``edited``, records ``--edits`` demand edits (+10 units on different SKUs and
   weeks) and plans that too, so the two plans differ by a few edits and what follows from them;
4. unless ``--no-scorecard``: stores a synthetic scorecard (the seven KPIs per total, month, week,
   family and SKU, ``plan_kpis`` level ``scorecard``) for both, a few values changed, so the KPI
   part of the query has realistic volume;
5. times ``compare_versions(base, edited, by)`` for each bucket type, all metrics, ``--repeat``
   times (fresh connection each time, as the CLI and the asset call it), and once the whole
   ``baseline_comparison`` store work (five comparisons + the stored summary).

Prints a table (fastest / median seconds, rows returned) and writes ``--json OUT``. Figures are
recorded in docs/performance.md ("Version comparison").

Usage::

    .venv/bin/python benchmarks/diff_benchmark.py                       # 5,000 SKUs, 5 repeats
    .venv/bin/python benchmarks/diff_benchmark.py --skus-per-family 10 --repeat 3 --json out/diff.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def scorecard_frame(store, version: str, rng: np.random.Generator) -> pd.DataFrame:
    """Seven KPIs per bucket of the version's detail plan (values are random: volume, not meaning)."""
    from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_KPIS

    det = store.read_series(version, "det")
    buckets = [("total", ["total"]), ("month", sorted(det["period"].unique())), ("week", sorted(det["week"].unique())),
               ("family", sorted(det["family"].unique())), ("sku", sorted(det["sku"].unique()))]
    parts = []
    for kpi in SCORECARD_KPIS:
        for bucket_type, keys in buckets:
            parts.append(pd.DataFrame({"category": SCORECARD_CATEGORY, "metric": kpi.name, "bucket_type": bucket_type,
                                       "bucket_key": keys, "value": rng.random(len(keys)), "unit": kpi.unit}))
    return pd.concat(parts, ignore_index=True)


def run(args) -> dict:
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.inputs.importer import import_input_dir
    from plan_pipeline.inputs.sample import generate_sample_inputs
    from plan_pipeline.orchestration.plan.launch import materialize_version
    from plan_pipeline.planning.overrides import detail_key
    from plan_pipeline.planning.parameters import PlanningParameters
    from plan_pipeline.store.repository import COMPARISON_BUCKETS

    work = Path(args.workdir or tempfile.mkdtemp(prefix="diff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    os.environ.update(PLAN_PIPELINE_HOME=str(home), PLAN_PIPELINE_DB=str(home / "plan_store.duckdb"),
                      DAGSTER_HOME=str(home / "dagster_home"))
    timings: dict = {}
    try:
        t = time.perf_counter()
        summary = generate_sample_inputs(work / "inputs", families=args.families, skus_per_family=args.skus_per_family,
                                         months=12, components_per_sku=2, seed=7)
        timings["generate_s"] = time.perf_counter() - t
        env = resolve_environment(str(home), None)
        env.prepare_dagster_home()
        store, instance = env.store, env.instance()
        import_input_dir(store, work / "inputs", "bench")
        store.create_version("base", "bench", PlanningParameters())
        t = time.perf_counter()
        assert materialize_version(instance, store, "base").success
        timings["plan_base_s"] = time.perf_counter() - t
        store.duplicate_version("base", "edited")
        det = store.read_series("base", "det")
        rng = np.random.default_rng(11)
        picks = det.iloc[rng.choice(len(det), size=args.edits, replace=False)]
        for row in picks.itertuples():
            store.record_override("edited", "det", detail_key(row.week, row.sku, row.period),
                                  {"demand": float(row.demand) + 10.0}, actor="bench")
        t = time.perf_counter()
        assert materialize_version(instance, store, "edited").success
        timings["plan_edited_s"] = time.perf_counter() - t
        if not args.no_scorecard:
            base_kpis = scorecard_frame(store, "base", rng)
            edited = base_kpis.copy()
            changed = rng.choice(len(edited), size=min(50, len(edited)), replace=False)
            edited.loc[changed, "value"] += 0.01
            store.replace_kpis("base", "scorecard", base_kpis)
            store.replace_kpis("edited", "scorecard", edited)
            timings["scorecard_rows_per_version"] = len(base_kpis)
        rows = store.series_levels("edited")
        results = {}
        for by in COMPARISON_BUCKETS:
            times, frame = [], None
            for _ in range(args.repeat):
                t = time.perf_counter()
                frame = store.compare_versions("base", "edited", by)
                times.append(time.perf_counter() - t)
            assert frame is not None
            results[by] = {"fastest_s": min(times), "median_s": statistics.median(times), "all_s": times,
                           "rows": int(len(frame)), "top": frame.head(3).to_dict("records")}
        t = time.perf_counter()
        frames = {by: store.compare_versions("base", "edited", by) for by in COMPARISON_BUCKETS}
        written = store.write_baseline_comparison("edited", "base", frames)
        timings["baseline_comparison_store_s"] = time.perf_counter() - t
        timings["baseline_comparison_rows"] = written
        return {"skus": summary["skus"], "edits": args.edits, "repeat": args.repeat, "levels": rows,
                "timings": timings, "compare_versions": results, "cpus": os.cpu_count(),
                "python": sys.version.split()[0]}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=100)
    parser.add_argument("--skus-per-family", type=int, default=50)
    parser.add_argument("--edits", type=int, default=3, help="demand edits on the duplicate (default 3)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per bucket type (default 5)")
    parser.add_argument("--no-scorecard", action="store_true", help="compare without stored scorecard KPIs")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--workdir", help="where the inputs and the project home go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    args = parser.parse_args(argv)
    result = run(args)
    print(f"{result['skus']} SKUs, {result['edits']} demand edits; plan rows of a version: "
          + ", ".join(f"{k} {v}" for k, v in result["levels"].items()))
    print(f"planning: base {result['timings']['plan_base_s']:.1f} s, edited {result['timings']['plan_edited_s']:.1f} s")
    print(f"{'by':<8} {'fastest s':>10} {'median s':>10} {'rows':>8}")
    for by, r in result["compare_versions"].items():
        print(f"{by:<8} {r['fastest_s']:>10.3f} {r['median_s']:>10.3f} {r['rows']:>8}")
    print(f"baseline_comparison store work (5 comparisons + stored summary, "
          f"{result['timings']['baseline_comparison_rows']} rows): "
          f"{result['timings']['baseline_comparison_store_s']:.3f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
