"""The plan-pipeline CLI end to end: inputs, versions, materialize, demo, concurrency."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline.planning.vocabulary import SCORECARD_KPI_NAMES
from plan_pipeline_tests.cli.cli_helpers import bare_environ, cli_subprocess
from plan_pipeline_tests.project_homes import ProjectHome

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


def run_cli(home: ProjectHome, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``plan-pipeline --home HOME ARGS`` in a child process on the home's store."""
    return cli_subprocess("--home", str(home.home), *args, home=home, timeout=timeout)


@pytest.fixture
def new_home(homes, tmp_path, request) -> ProjectHome:
    """An empty project home of the selected backend (no DuckDB file may appear in it on PostgreSQL)."""
    home = homes.new(tmp_path / "home", request.addfinalizer)
    yield home
    home.check_no_duckdb_file()


def test_inputs_import_refuses_invalid_folder_and_stores_nothing(plan_env, sample_dir, tmp_path, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "good"]) == 0
    before = plan_env.store.table_counts()
    bad = tmp_path / "bad"
    shutil.copytree(sample_dir, bad)
    lines = (bad / "demand_family.csv").read_text().splitlines()
    family, period, _ = lines[3].split(",")
    lines[3] = f"{family},{period},-5"
    (bad / "demand_family.csv").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["inputs", "import", str(bad), "--label", "bad"]) == 1
    err = capsys.readouterr().err
    assert "nothing was stored" in err
    assert "demand_family.csv" in err and "line 4" in err and "'demand'" in err
    assert plan_env.store.table_counts() == before
    assert plan_env.store.get_input_set("bad") is None
    assert main(["inputs", "validate", str(bad)]) == 1


@pytest.mark.duckdb_only("the duckdb:// setting and --db choose a DuckDB file whatever the selected backend; "
                         "the PostgreSQL URL part needs no server (an unreachable one)")
def test_the_store_url_setting_picks_the_command_lines_store(plan_env, sample_dir, tmp_path, monkeypatch, capsys):
    chosen = tmp_path / "chosen" / "plan_store.duckdb"
    monkeypatch.delenv("PLAN_PIPELINE_DB")
    monkeypatch.setenv("PLAN_STORE_URL", f"duckdb://{chosen}")
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert chosen.exists() and not plan_env.db_path.exists()
    assert os.environ["PLAN_PIPELINE_DB"] == str(chosen)  # what the runs this command starts open
    # --db wins, and the processes it starts are told the same file
    other = tmp_path / "other.duckdb"
    assert main(["--db", str(other), "inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert other.exists() and os.environ["PLAN_STORE_URL"] == f"duckdb://{other}"
    # a PostgreSQL URL is that database (here none answers: the error names it, without the password),
    # never a DuckDB file (restore too: it loads into that database, test_operations_on_postgres.py)
    monkeypatch.setenv("PLAN_STORE_URL", "postgresql://plan:secret@127.0.0.1:5999/plan_store")
    capsys.readouterr()
    assert main(["version", "list"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the PostgreSQL plan store postgresql://plan@127.0.0.1:5999/plan_store" in err
    assert "secret" not in err
    assert main(["restore", str(tmp_path / "backup")]) == 1
    err = capsys.readouterr().err
    assert "backup folder" in err and "does not exist" in err and "secret" not in err
    monkeypatch.setenv("PLAN_STORE_URL", "mysql://h/db")
    assert main(["version", "list"]) == 2
    assert "expected duckdb:///path or postgresql://" in capsys.readouterr().err


def test_version_lifecycle(plan_env, sample_dir, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "q1", "--round", "dec1",
                 "--preset", "det_near", "--cutover-date", "2025-03-15", "--apply-adjusted"]) == 0
    capsys.readouterr()
    assert main(["version", "show", "q1"]) == 0
    shown = capsys.readouterr().out
    assert '"round_mode": "dec1"' in shown and '"preset": "det_near"' in shown and '"apply_adjusted": true' in shown
    assert main(["version", "list"]) == 0
    assert "q1" in capsys.readouterr().out
    assert "q1" in plan_env.instance().get_dynamic_partitions("plan_version")
    # bad parameters and unknown input sets are clear errors
    assert main(["version", "create", "--input-set", "s", "--version-id", "q2", "--anchor-policy", "sideways"]) == 1
    assert "anchor_policy: 'sideways' is not one of DET_near, AGG_far, blend" in capsys.readouterr().err
    assert main(["version", "create", "--input-set", "nope", "--version-id", "q3"]) == 1
    assert "unknown input set 'nope'" in capsys.readouterr().err
    assert main(["version", "delete", "q1"]) == 0
    assert "q1" not in plan_env.instance().get_dynamic_partitions("plan_version")
    assert main(["version", "show", "q1"]) == 1


def test_demo_materializes_and_summarises(new_home):
    home = new_home
    result = run_cli(home, "demo")
    assert result.returncode == 0, result.stderr
    assert "plan version : demo" in result.stdout
    assert "aggregate" in result.stdout
    # the home's store: its DuckDB file, or the PostgreSQL URL (without a password)
    assert f"plan store   : {home.store.location.describe()}" in result.stdout
    assert "ui" in result.stdout
    run_id = next(line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("run id"))
    listed = run_cli(home, "jobs", "list")
    assert run_id in listed.stdout and "success" in listed.stdout
    # the scorecard comes first: on its own line before the report KPIs, and first in `version show`
    lines = result.stdout.splitlines()
    scorecard = next(i for i, line in enumerate(lines) if line.startswith("scorecard    : "))
    assert scorecard < next(i for i, line in enumerate(lines) if line.startswith("plan KPIs    : "))
    assert [part.split("=")[0] for part in lines[scorecard].split(": ", 1)[1].split(", ")] == list(SCORECARD_KPI_NAMES)
    shown = json.loads(run_cli(home, "version", "show", "demo").stdout)
    assert list(shown["scorecard"]) == list(SCORECARD_KPI_NAMES)
    assert list(shown).index("scorecard") < list(shown).index("levels")
    fill = shown["scorecard"]["fill_rate"]
    assert fill["unit"] == "ratio" and 0.0 <= fill["value"] <= 1.0 and fill["display"] == f"{100 * fill['value']:.1f} %"


def test_two_versions_materialized_at_the_same_time_both_succeed(new_home, sample_dir):
    home = new_home
    assert run_cli(home, "inputs", "import", str(sample_dir), "--label", "s").returncode == 0
    for v in ("c1", "c2"):
        assert run_cli(home, "version", "create", "--input-set", "s", "--version-id", v).returncode == 0
    env = home.subprocess_env(bare_environ())
    procs = [
        subprocess.Popen([sys.executable, "-m", "plan_pipeline.cli.main", "--home", str(home.home), "materialize", v],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for v in ("c1", "c2")
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr
        assert "Could not set lock" not in stderr and "IOException" not in stderr, stderr
    listed = run_cli(home, "jobs", "list").stdout
    assert listed.count("success") == 2
