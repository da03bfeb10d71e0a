"""A CLI that starts fast (issue 13): what each command imports, read from Python's own import log.

Every command runs in a fresh interpreter under ``-X importtime``, which writes one line per
module the process imports (the first time, wherever the import happens: at module level, in a
function, in a library). A module absent from that log was never imported. So these are
module-presence checks, not timings: ``--help`` must not load pandas, DuckDB, numpy, pyarrow or
Dagster; the commands that need no orchestration must not load Dagster; ``version list`` and
``inputs list`` read the store without pandas. The times are measured by
``benchmarks/cli_startup.py`` (docs/performance.md).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plan_pipeline_tests.cli.cli_helpers import bare_environ, build_demo_home
from plan_pipeline_tests.project_homes import ProjectHome

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

HEAVY = ("dagster", "pandas", "duckdb", "numpy", "pyarrow")
IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)\s*$")


def imported_modules(*args: str, cwd: Path, home: ProjectHome | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``plan-pipeline ARGS`` as the console script does (``main()`` of the installed package)
    and return the result and every module the process imported (``home``: its store setting is
    passed on; give ``--home`` too)."""
    env = bare_environ() if home is None else home.subprocess_env(bare_environ())
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "plan_pipeline.cli.main", *args],
                            env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    modules = {m.group(1) for line in result.stderr.splitlines() if (m := IMPORT_LINE.match(line))}
    assert "plan_pipeline.cli.main" in modules, result.stderr[-2000:]  # the log really was read
    return result, modules


def heavy_packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} & set(HEAVY)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, homes) -> ProjectHome:
    """A project home with input set ``sample`` and versions ``demo`` and ``demo-2``, both materialized."""
    return build_demo_home(tmp_path_factory.mktemp("startup"), homes)


def test_the_import_log_sees_what_a_command_loads(demo_home, tmp_path):
    """The probe itself: a command that runs a plan does show Dagster and pandas in the log."""
    result, modules = imported_modules("--home", str(demo_home.home), "runs", "sync", cwd=tmp_path, home=demo_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"dagster", "duckdb"} <= heavy_packages(modules)


@pytest.mark.parametrize("args", [
    ["--help"],
    ["version", "--help"],
    ["version", "create", "--help"],
    ["plan", "--help"],
    ["diff", "--help"],
    ["export", "--help"],
    ["trim", "--help"],
    ["backup", "--help"],
    ["legacy-import", "--help"],
    ["approve", "--help"],
])
def test_help_loads_no_data_or_orchestration_library(args, tmp_path):
    result, modules = imported_modules(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: plan-pipeline" in result.stdout
    assert heavy_packages(modules) == set()
    assert not any(m.startswith("plan_pipeline.orchestration") for m in modules)


def test_a_usage_error_loads_nothing_heavy(tmp_path):
    result, modules = imported_modules("diff", "a", "b", "--level", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr
    assert heavy_packages(modules) == set()


@pytest.mark.parametrize("args,expected", [
    (["version", "list"], "demo-2"),
    (["version", "list", "--json"], '"version_id": "demo"'),
    (["inputs", "list"], "sample"),
])
def test_listing_reads_the_store_without_pandas_or_dagster(demo_home, tmp_path, args, expected):
    result, modules = imported_modules("--home", str(demo_home.home), *args, cwd=tmp_path, home=demo_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
    assert heavy_packages(modules) == {"duckdb"}


@pytest.mark.parametrize("args,expected", [
    (["version", "show", "demo"], '"version_id": "demo"'),
    (["diff", "demo", "demo-2", "--level", "det"], "level det: demo and demo-2 are identical"),
    (["runs", "list"], "demo-2"),
    (["override", "list", "demo"], "version 'demo' has no overrides"),
    (["override", "events", "demo"], "version 'demo' has no audit events"),
    (["legacy-import-runs"], "no legacy import runs yet"),
    (["restore-archived"], "no archived versions"),
    (["inputs", "validate", "{sample}"], "0 error(s)"),
])
def test_store_commands_do_not_load_dagster(demo_home, tmp_path, args, expected):
    sample = Path(__file__).resolve().parents[2] / "plan_pipeline" / "sample_data" / "sample_plan"
    args = [a.replace("{sample}", str(sample)) for a in args]
    result, modules = imported_modules("--home", str(demo_home.home), *args, cwd=tmp_path, home=demo_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
    assert "dagster" not in heavy_packages(modules)
    assert not any(m.startswith("plan_pipeline.orchestration") for m in modules)


def test_export_does_not_load_dagster(demo_home, tmp_path):
    out = tmp_path / "export"
    result, modules = imported_modules("--home", str(demo_home.home), "export", "demo", "--format", "csv",
                                       "--out", str(out), cwd=tmp_path, home=demo_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "manifest.json").is_file()
    assert "dagster" not in heavy_packages(modules)


def test_lifecycle_loads_dagster_only_to_report_to_an_existing_instance(demo_home, tmp_path, monkeypatch, home_copy):
    """Without a Dagster home a status change imports no Dagster; with one, the change is
    reported to the instance (a runless observation) with Dagster alone, not the plan assets."""
    copy = home_copy(demo_home, tmp_path / "home")
    home = copy.home
    shutil.rmtree(home / "dagster_home")
    result, modules = imported_modules("--home", str(home), "submit", "demo", cwd=tmp_path, home=copy)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "plan version 'demo': draft -> submitted" in result.stdout
    assert "dagster" not in heavy_packages(modules)
    assert not (home / "dagster_home").exists()

    instance_copy = home_copy(demo_home, tmp_path / "with_instance")
    result, modules = imported_modules("--home", str(instance_copy.home), "submit", "demo-2", cwd=tmp_path,
                                       home=instance_copy)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "plan version 'demo-2': draft -> submitted" in result.stdout
    assert "note:" not in result.stderr  # the observation was reported
    assert "dagster" in heavy_packages(modules)
    assert not any(m.startswith("plan_pipeline.orchestration.plan.assets") for m in modules)
    assert "plan_pipeline.orchestration.plan.jobs" not in modules
    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", str(instance_copy.dagster_home))
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_observations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("planning_inputs"), asset_partitions=["demo-2"]), limit=5).records
    assert [(r.asset_observation.metadata["plan/version_status"].value,
             r.asset_observation.metadata["previous_status"].value) for r in records] == [("submitted", "draft")]
