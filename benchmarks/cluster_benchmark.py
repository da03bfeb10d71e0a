#!/usr/bin/env python
"""Many plan versions at once (issue 15): serial on the embedded DuckDB store vs concurrent on a
PostgreSQL plan store with Celery workers.

Both sides plan the same ``--versions`` versions (default 12) of one generated input
(``plan-pipeline sample-inputs``, default 2,000 SKUs = 100 families x 20 SKUs, 12 months), the
versions differing in their anchor preset and cutover date:

* **DuckDB, serial**: a fresh project home; ``inputs import`` and ``version create`` through the
  real CLI, then every version materialized in this process one after the other
  (:func:`plan_pipeline.orchestration.plan.launch.materialize_version`, the CLI's ``run`` path:
  the single-writer store takes one run at a time anyway).
* **PostgreSQL, serial**: the same in-process runs on a PostgreSQL plan store (a server started on
  loopback, ``$PLAN_STORE_URL``) with no cluster: what the store costs apart from Celery.
* **PostgreSQL, concurrent**: :func:`plan_pipeline.deployment.local_cluster.start_local_cluster`
  (PostgreSQL and Redis on loopback, the Dagster daemon, ``--workers`` Celery workers, the plan
  store on PostgreSQL); the same CLI set-up with the cluster's environment, then every version's
  run submitted to the run queue at once (:func:`queue_version_run`); the daemon launches them
  within the queue's limits (``max_concurrent_runs``, one run per version) and their steps go to
  the workers. Wall time runs from the first submission to the last run's end.

Printed (and with ``--json OUT`` saved): wall time, runs per minute, ``plan_series`` rows written
and rows per second for each side, the steps each worker executed, and whether both stores hold
the same number of rows. Setup (input generation, import, version creation, cluster start) is
timed separately and not part of the wall time.

Usage::

    .venv/bin/python benchmarks/cluster_benchmark.py                       # 12 versions x 2,000 SKUs
    .venv/bin/python benchmarks/cluster_benchmark.py --skus 500 --versions 4 --json out/cluster.json
    .venv/bin/python benchmarks/cluster_benchmark.py --sides postgres-cluster --workers 4

Needs PostgreSQL and Redis server programs (Debian's ``postgresql`` and ``redis-server``, as
``.ci/run`` installs them) and the ``cluster`` extra. Results: docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from run_benchmark import cli_path, code_version, fmt, md_table

PRESETS = ("det_near", "agg_far", "blend")
CUTOVERS = ("2025-04-15", "2025-06-15", "2025-09-15", "2025-11-15")
INPUT_LABEL = "bench"
SIDES = ("duckdb", "postgres-serial", "postgres-cluster")
# settings of the cluster that must not leak into the DuckDB side (or the cluster's own env)
CLUSTER_SETTINGS = ("PLAN_STORE_URL", "PLAN_PIPELINE_DAGSTER_STORAGE_URL", "PLAN_PIPELINE_CELERY_BROKER_URL",
                    "PLAN_PIPELINE_CELERY_BACKEND_URL", "DAGSTER_HOME", "PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB")


def version_ids(count: int) -> list[str]:
    return [f"scenario-{index:02d}" for index in range(1, count + 1)]


def version_flags(index: int) -> list[str]:
    """Scenario ``index``'s parameters: the anchor preset and cutover date vary."""
    return ["--preset", PRESETS[index % len(PRESETS)], "--cutover-date", CUTOVERS[index % len(CUTOVERS)],
            "--apply-adjusted"]


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run([cli_path(), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"plan-pipeline {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_SETTINGS}
    env.update(extra)
    return env


def set_up_versions(env: dict[str, str], home_args: list[str], inputs: Path, versions: list[str]) -> float:
    started = time.perf_counter()
    cli(env, *home_args, "inputs", "import", str(inputs), "--label", INPUT_LABEL)
    for index, version in enumerate(versions):
        cli(env, *home_args, "version", "create", "--input-set", INPUT_LABEL, "--version-id", version,
            *version_flags(index))
    return time.perf_counter() - started


def bench_serial(inputs: Path, work: Path, versions: list[str], *, store_url: str | None = None) -> dict[str, Any]:
    """Every version planned one after the other in this process on a fresh store: the project
    home's DuckDB file, or ``store_url`` (a PostgreSQL database) as ``$PLAN_STORE_URL``."""
    backend = "postgres" if store_url else "duckdb"
    home = work / f"{backend}-serial-home"
    extra = {"PLAN_STORE_URL": store_url} if store_url else {}
    setup_s = set_up_versions(clean_env(**extra), ["--home", str(home)], inputs, versions)
    for name in CLUSTER_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(extra)
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import materialize_version

    try:
        environment = resolve_environment(str(home), None)
        instance, store = environment.instance(), environment.store
        rows_before = store.table_counts()
        per_run: list[float] = []
        started = time.perf_counter()
        for version in versions:
            t0 = time.perf_counter()
            outcome = materialize_version(instance, store, version)
            if not outcome.success:
                raise SystemExit(f"{backend} run of {version} failed: {outcome.errors}")
            per_run.append(time.perf_counter() - t0)
            print(f"  {backend} serial  {version}: {per_run[-1]:.1f} s", flush=True)
        wall = time.perf_counter() - started
        counts = store.table_counts()
    finally:
        for name in extra:
            os.environ.pop(name, None)
    return {"backend": backend, "mode": "serial, in-process", "setup_s": setup_s, "wall_s": wall,
            "run_s": per_run, "plan_series_rows": counts["plan_series"] - rows_before.get("plan_series", 0),
            "plan_kpis_rows": counts["plan_kpis"] - rows_before.get("plan_kpis", 0)}


def bench_postgres_serial(inputs: Path, work: Path, versions: list[str]) -> dict[str, Any]:
    """The PostgreSQL store without the cluster: what the store costs, apart from Celery's hand-offs."""
    from plan_pipeline.deployment.local_services import start_postgres

    server = start_postgres()
    try:
        return bench_serial(inputs, work, versions, store_url=server.url)
    finally:
        server.stop()


def _worker_of_steps(instance: Any, run_id: str) -> list[str]:
    """The Celery worker of each step of the run (dagster-celery's engine event per step)."""
    import dagster as dg

    found = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event is not None else None
        metadata = data.metadata if data is not None else {}
        if "Celery worker" in metadata:
            found.append(str(metadata["Celery worker"].value).split("@")[0])
    return found


def bench_postgres(inputs: Path, work: Path, versions: list[str], workers: int, timeout_s: float) -> dict[str, Any]:
    """Every version's run queued at once on the local cluster (plan store on PostgreSQL)."""
    from plan_pipeline.deployment.local_cluster import start_local_cluster

    started_cluster = time.perf_counter()
    cluster = start_local_cluster(work / "cluster-home", workers=tuple(f"w{n}" for n in range(1, workers + 1)),
                                  daemon=True, plan_store_on_postgres=True)
    try:
        cluster_start_s = time.perf_counter() - started_cluster
        env = cluster.env
        setup_s = set_up_versions(env, [], inputs, versions)
        for name in CLUSTER_SETTINGS:
            if name in env:
                os.environ[name] = env[name]
        import dagster as dg

        from plan_pipeline.orchestration.plan.launch import get_instance, queue_version_run
        from plan_pipeline.store import PlanStore

        store = PlanStore.from_url(env["PLAN_STORE_URL"])
        rows_before = store.table_counts()
        with get_instance() as instance:
            started = time.perf_counter()
            run_ids = [queue_version_run(instance, store, version, trigger="benchmark") for version in versions]
            queued_s = time.perf_counter() - started
            while True:
                runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))]
                if len(runs) == len(run_ids) and all(run.is_finished for run in runs):
                    break
                if time.perf_counter() - started > timeout_s:
                    raise SystemExit(f"runs not finished after {timeout_s:.0f} s: {Counter(r.status.value for r in runs)}")
                time.sleep(0.5)
            wall = time.perf_counter() - started
            failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
            if failed:
                raise SystemExit(f"PostgreSQL runs failed: {failed} (logs in {cluster.log_dir})")
            per_run = []
            for record in instance.get_run_records(dg.RunsFilter(run_ids=run_ids)):
                if record.start_time and record.end_time:
                    per_run.append(record.end_time - record.start_time)
            steps = Counter(worker for run_id in run_ids for worker in _worker_of_steps(instance, run_id))
        counts = store.table_counts()
        return {"backend": "postgres", "mode": f"concurrent, {workers} Celery workers", "cluster_start_s": cluster_start_s,
                "setup_s": setup_s, "queue_s": queued_s, "wall_s": wall, "run_s": sorted(per_run),
                "steps_per_worker": dict(sorted(steps.items())),
                "plan_series_rows": counts["plan_series"] - rows_before.get("plan_series", 0),
                "plan_kpis_rows": counts["plan_kpis"] - rows_before.get("plan_kpis", 0)}
    finally:
        cluster.stop()
        left = cluster.leftover_pids()
        if left:
            print(f"warning: processes left after stopping the cluster: {left}", file=sys.stderr)


def summary(results: list[dict[str, Any]], versions: int) -> str:
    rows = []
    for r in results:
        runs = r["run_s"]
        rows.append([r["backend"], r["mode"], fmt(r["wall_s"], 1), fmt(versions / r["wall_s"] * 60, 1),
                     fmt(sum(runs) / len(runs) if runs else None, 1), f"{r['plan_series_rows']:,}",
                     f"{r['plan_series_rows'] / r['wall_s']:,.0f}",
                     ", ".join(f"{w}: {n}" for w, n in r.get("steps_per_worker", {}).items()) or "-"])
    return md_table(["store", "execution", "wall s", "runs / min", "mean run s", "plan_series rows",
                     "rows / s", "steps per worker"], rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--skus", type=int, default=2000, help="SKUs (a multiple of --families; default 2000)")
    parser.add_argument("--families", type=int, default=100)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--versions", type=int, default=12, help="plan versions per side (default 12)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers of the PostgreSQL side (default 2)")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                        help="what to measure (default: all three)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up on the queued runs after S seconds")
    parser.add_argument("--json", dest="json_out", help="write every number to this file")
    parser.add_argument("--workdir", help="where inputs and homes go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.skus % args.families:
        raise SystemExit(f"--skus {args.skus} is not a multiple of --families {args.families}")
    warnings.filterwarnings("ignore")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="plan-cluster-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    versions = version_ids(args.versions)
    results: list[dict[str, Any]] = []
    try:
        inputs = work / "inputs"
        started = time.perf_counter()
        cli(clean_env(), "sample-inputs", "--out", str(inputs), "--families", str(args.families),
            "--skus-per-family", str(args.skus // args.families), "--months", str(args.months),
            "--components-per-sku", "2", "--seed", "7")
        print(f"inputs: {args.skus} SKUs x {args.months} months in {time.perf_counter() - started:.1f} s; "
              f"{len(versions)} versions per side", flush=True)
        if "duckdb" in args.sides:
            results.append(bench_serial(inputs, work, versions))
        if "postgres-serial" in args.sides:
            results.append(bench_postgres_serial(inputs, work, versions))
        if "postgres-cluster" in args.sides:
            results.append(bench_postgres(inputs, work, versions, args.workers, args.timeout))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(summary(results, len(versions)))
    if len(results) > 1:
        written = {(r["plan_series_rows"], r["plan_kpis_rows"]) for r in results}
        print(f"\nrows written: {'the same on every side' if len(written) == 1 else 'DIFFERENT'} "
              f"({', '.join(f'{r[0]:,}' for r in sorted(written))} plan_series rows)")
    if args.json_out:
        payload = {"skus": args.skus, "months": args.months, "versions": len(versions), "workers": args.workers,
                   "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                   "code": code_version(), "results": results}
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
