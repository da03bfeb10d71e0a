"""Hostile command lines (issue 9): every failure is a short, clear ``error: ...`` on stderr with a
non-zero exit status, never a traceback.

The table runs ``main(argv)`` in-process on a private copy of a home holding two materialized
versions (``demo``, ``demo-2``); what needs a real process (a closed stdout pipe, Ctrl-C) runs
the CLI in a subprocess. Below the table: the override and planning-parameter checks with their
exact messages.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from plan_pipeline.planning.overrides import (
    MAX_KEY_PART_LENGTH,
    OverrideError,
    check_detail_key,
    detail_key,
    validate_override_payload,
)
from plan_pipeline.planning.parameters import FLOAT_BOUNDS, INT_BOUNDS, ParameterError, validate_parameters
from plan_pipeline.planning.types import MAX_PLAN_QUANTITY, PlanningParameters

from ..cli.cli_helpers import bare_environ, build_demo_home, run_main, use_project_copy
from ..conftest import BUNDLED_SAMPLE
from ..project_homes import ProjectHome

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

LONG = "x" * 5000
UNI = "Ünïcödé-計画"
CTRL = "a\x07b\x1bc"


@pytest.fixture(scope="module")
def template(tmp_path_factory, homes):
    return build_demo_home(tmp_path_factory.mktemp("hostile"), homes)


@pytest.fixture
def project(template, tmp_path, monkeypatch, home_copy) -> ProjectHome:
    """The test's private copy of the template home (the in-process CLI pointed at its store)."""
    def no_exec(*args, **kwargs):  # `ui` must never replace the test process
        raise AssertionError(f"os.execvpe called: {args}")

    monkeypatch.setattr(os, "execvpe", no_exec)
    (tmp_path / "plain.txt").write_text("not a folder, not a DuckDB file\n")
    return use_project_copy(template, tmp_path, monkeypatch, home_copy)


@pytest.fixture
def home(project) -> Path:
    return project.home


def case(argv, code, fragment, lines=1, id=None):
    return pytest.param(argv, code, fragment, lines, id=id)


# (argv, exit status, fragment of stderr, lines of the error report). Placeholders: {home} the
# home copy, {tmp} the test folder, {file} a regular file, {sample} the bundled sample folder.
# Exit status 2 is argparse's usage error: its usage text, then one "error:" line.
CASES = [
    # inputs
    case(["inputs", "validate", ""], 2, "argument dir: an empty path is not allowed", id="validate-empty"),
    case(["inputs", "import", "{tmp}/missing", "--label", "x"], 1, "does not exist", id="import-missing"),
    case(["inputs", "import", "{file}", "--label", "x"], 1, "does not exist", id="import-a-file"),
    case(["inputs", "import", "{sample}", "--label", "../x"], 1, "invalid input set label '../x'", id="label-dotdot"),
    case(["inputs", "import", "{sample}", "--label", ""], 1, "invalid input set label ''", id="label-empty"),
    case(["inputs", "import", "{sample}", "--label", LONG], 1, "invalid input set label 'xxx", id="label-long"),
    case(["inputs", "import", "{sample}", "--label", UNI], 1, f"invalid input set label '{UNI}'", id="label-unicode"),
    case(["--db", "{tmp}", "inputs", "list"], 1, "plan store (--db, $PLAN_PIPELINE_DB) {tmp} is a folder, not a file",
         id="db-is-a-folder"),
    # version
    case(["version", "create", "--input-set", "sample", "--tol-abs", "nan"], 1,
         "tol_abs: nan is not a finite number (use 0 to 1e+12)", 2, id="tol-abs-nan"),
    case(["version", "create", "--input-set", "sample", "--max-adjust-ratio", "nan"], 1,
         "max_adjust_ratio: nan is not a finite number (use 0 to 1e+06)", 2, id="max-adjust-ratio-nan"),
    case(["version", "create", "--input-set", "sample", "--tol-rel", "inf"], 1,
         "tol_rel: inf is not a finite number (use 0 to 1e+06)", 2, id="tol-rel-inf"),
    case(["version", "create", "--input-set", "sample", "--week-days", "99999999999999999999"], 1,
         "week_days: 99999999999999999999 must be a whole number from 1 to 7", 2, id="week-days-huge"),
    case(["version", "create", "--input-set", "sample", "--weeks", "7"], 1,
         "fallback_weeks: 7 must be a whole number from 1 to 6", 2, id="weeks-7"),
    case(["version", "create", "--input-set", "sample", "--recon-window-days", "-1"], 1,
         "recon_window_days: -1 must be a whole number from 0 to 366", 2, id="window-negative"),
    case(["version", "create", "--input-set", "sample", "--carryover-split", "1.5"], 1,
         "carryover_split: 1.5 must be from 0 to 1", 2, id="carryover-split-1.5"),
    case(["version", "create", "--input-set", "sample", "--tol-abs", "nan", "--weeks", "0", "--cutover-date", CTRL], 1,
         "cutover_date: 'a\\x07b\\x1bc' must be a date YYYY-MM-DD or a month YYYY-MM", 4, id="three-problems"),
    case(["version", "create", "--input-set", "sample", "--anchor-policy", UNI], 1,
         f"anchor_policy: '{UNI}' is not one of DET_near, AGG_far, blend", 2, id="policy-unicode"),
    case(["version", "create", "--input-set", "sample", "--version-id", "../x"], 1, "invalid version id '../x'",
         id="version-id-dotdot"),
    case(["version", "create", "--input-set", "sample", "--version-id", ""], 1, "invalid version id ''",
         id="version-id-empty"),
    case(["version", "create", "--input-set", "sample", "--version-id", LONG], 1, "invalid version id 'xxx",
         id="version-id-long"),
    case(["version", "create", "--input-set", "sample", "--version-id", "demo"], 1, "plan version 'demo' already exists",
         id="version-exists"),
    case(["version", "create", "--input-set", "nope"], 1, "unknown input set 'nope'", id="unknown-input-set"),
    case(["version", "create", "--input-set", "sample", "--note", CTRL], 2,
         "argument --note: 'a\\x07b\\x1bc' contains control characters", id="note-control-chars"),
    case(["version", "show", "../x"], 1, "unknown plan version '../x'", id="show-dotdot"),
    case(["version", "show", ""], 1, "unknown plan version ''", id="show-empty"),
    case(["version", "delete", UNI], 1, f"unknown plan version '{UNI}'", id="delete-unicode"),
    # materialize, jobs
    case(["materialize", LONG], 1, "unknown plan version 'xxx", id="materialize-long"),
    case(["materialize", "../x"], 1, "unknown plan version '../x'", id="materialize-dotdot"),
    case(["--home", "{file}", "jobs", "sync"], 1,
         "project home (--home, $PLAN_PIPELINE_HOME) {file} is a file, not a folder", id="home-is-a-file"),
    # plan
    case(["plan", "-I", "{tmp}/missing", "-o", "{tmp}/o"], 1, "input folder {tmp}/missing does not exist",
         id="plan-missing-inputs"),
    case(["plan", "-I", "{sample}", "-o", "{file}"], 1, "output folder (-o) {file} is a file, not a folder",
         id="plan-out-is-a-file"),
    case(["plan", "-I", "{sample}", "-o", "{file}/o"], 1, "cannot be created: {file} is a file, not a folder",
         id="plan-out-under-a-file"),
    case(["plan", "-I", "{sample}", "-o", ""], 2, "argument -o/--output-dir: an empty path is not allowed",
         id="plan-out-empty"),
    case(["plan", "-I", "{sample}", "-o", "{tmp}/o", "--version-id", "demo"], 1, "plan version 'demo' already exists",
         id="plan-version-exists"),
    case(["plan", "-I", "{sample}", "-o", "{tmp}/o", "--version-id", "../x"], 1, "invalid version id '../x'",
         id="plan-version-id-dotdot"),
    case(["plan", "-I", "{sample}", "-o", "{tmp}/o", "--tol-abs", "nan"], 1,
         "tol_abs: nan is not a finite number", 2, id="plan-tol-abs-nan"),
    # override
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "nan"], 1,
         "override refused: demand nan is not a finite number", id="override-nan"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "inf"], 1,
         "override refused: demand inf is not a finite number", id="override-inf"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "-50"], 1,
         "override refused: demand -50.0 must not be negative", id="override-negative"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--supply", "1e308"], 1,
         "override refused: supply 1e+308 is larger than the largest plan quantity 1e+12", id="override-huge"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "abc"], 2,
         "argument --demand: invalid float value: 'abc'", id="override-not-a-number"),
    case(["override", "set", "demo", "--week", "a,b", "--sku", "BK-100", "--demand", "1"], 1,
         "override week 'a,b' must not contain ',' or '='", id="override-week-comma"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "A=B", "--demand", "1"], 1,
         "override sku 'A=B' must not contain ',' or '='", id="override-sku-equals"),
    case(["override", "set", "demo", "--week", "", "--sku", "BK-100", "--demand", "1"], 1,
         "override week '' must not be empty", id="override-week-empty"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--period", "", "--demand", "1"], 1,
         "override period '' must not be empty", id="override-period-empty"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", CTRL, "--demand", "1"], 1,
         "override sku 'a\\x07b\\x1bc' must not contain control characters", id="override-sku-control"),
    case(["override", "set", "demo", "--week", LONG, "--sku", "BK-100", "--demand", "1"], 1,
         f"override week is 5000 characters long; at most {MAX_KEY_PART_LENGTH} are allowed", id="override-week-long"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100"], 2,
         "error: override set: give at least one of --demand --supply --backlog --lock --unlock", id="override-nothing"),
    case(["override", "set", "nope", "--week", "2025-W11", "--sku", "BK-100", "--demand", "1"], 1,
         "unknown plan version 'nope'", id="override-unknown-version"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "1", "--actor", CTRL], 2,
         "argument --actor: 'a\\x07b\\x1bc' contains control characters", id="override-actor-control"),
    case(["override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100", "--demand", "1", "--note", LONG], 2,
         "argument --note: 5000 characters is too long: at most 2000", id="override-note-long"),
    case(["override", "list", "nope"], 1, "unknown plan version 'nope'", id="override-list-unknown"),
    case(["override", "events", ""], 1, "unknown plan version ''", id="override-events-empty"),
    # lifecycle, diff
    case(["submit", "nope"], 1, "unknown plan version 'nope'", id="submit-unknown"),
    case(["approve", "demo"], 1, "plan version 'demo' is draft: it cannot become approved", id="approve-draft"),
    case(["reject", "demo"], 1, "plan version 'demo' is draft: it cannot become draft", id="reject-draft"),
    case(["supersede", "demo", "--note", CTRL], 2, "argument --note: 'a\\x07b\\x1bc' contains control characters",
         id="supersede-note-control"),
    case(["diff", "demo", "nope"], 1, "unknown plan version 'nope'", id="diff-unknown"),
    case(["diff", "demo", "demo-2", "--level", "nope"], 2, "argument --level: invalid choice: 'nope'", id="diff-level"),
    case(["diff", "demo", "demo-2", "--limit", "-5"], 2, "argument --limit: -5 is out of range: use 0..1000000000",
         id="diff-limit-negative"),
    # backfill
    case(["backfill", "--source", ""], 1, "no legacy source: pass --source PATH or set PLAN_PIPELINE_LEGACY_SOURCE",
         id="backfill-source-empty"),
    case(["backfill", "--source", "{tmp}/missing"], 1, "error: legacy import run", id="backfill-source-missing"),
    case(["backfill-runs", "--limit", "-1"], 2, "argument --limit: -1 is out of range: use 1..1000000000",
         id="backfill-runs-negative"),
    case(["backfill-runs", "--limit", "99999999999999999999999"], 2, "argument --limit: 99999999999999999999999 is out",
         id="backfill-runs-huge"),
    # store operations (their rules belong to the operations commands; here: no traceback)
    case(["trim", "--max-versions", "abc"], 2, "argument --max-versions: expected a whole number or 'off'",
         id="trim-not-a-number"),
    case(["--home", "{file}", "trim"], 1, "project home (--home, $PLAN_PIPELINE_HOME) {file} is a file", id="trim-home"),
    case(["restore-archived", "../x"], 1, "invalid version id '../x'", id="restore-archived-dotdot"),
    case(["backup", "--keep", "0"], 2, "argument --keep: must be at least 1", id="backup-keep-0"),
    case(["backup", "--out", "{file}"], 1, "{file}", id="backup-out-is-a-file"),
    case(["restore", "{tmp}/missing"], 1, "backup folder {tmp}/missing does not exist", id="restore-missing"),
    case(["restore", "{file}"], 1, "{file}", id="restore-file"),
    case(["trim", "--archive-dir", "{file}"], 1, "{file}", id="trim-archive-dir-is-a-file"),
    case(["trim", "--version-max-age-months", "99999999999999999999"], 2, "must be at most 1200",
         id="trim-months-overflow"),
    case(["approve", "nope"], 1, "unknown plan version 'nope'", id="approve-unknown"),
    case(["version", "delete", "nope", "--admin", "--reason", "x"], 1, "unknown plan version 'nope'",
         id="delete-admin-unknown"),
    case(["version", "delete", "nope", "--admin"], 1, "needs --reason", id="delete-admin-no-reason"),
    case(["row-guard", "--max-rows", "-3"], 2, "--max-rows", id="row-guard-negative"),
    # export
    case(["export", "demo", "--out", "{file}"], 1,
         "export target {file} is a file, not a folder: choose a new or empty folder", id="export-out-is-a-file"),
    case(["export", "demo", "--out", "{file}/sub"], 1,
         "export folder {file}/sub cannot be created: {file} is a file, not a folder", id="export-out-under-a-file"),
    case(["export", "demo", "--out", ""], 2, "argument --out: an empty path is not allowed", id="export-out-empty"),
    case(["export", "demo", "--out", "{home}"], 1, "export folder {home} is not empty and holds no plan-pipeline export",
         id="export-into-a-busy-folder"),
    case(["export", "nope", "--out", "{tmp}/e"], 1, "unknown plan version 'nope'", id="export-unknown-version"),
    case(["export", "demo", "--out", "{tmp}/e", "--format", "xml"], 2, "argument --format: invalid choice: 'xml'",
         id="export-format"),
    # sample-inputs, demo, ui, global flags
    case(["sample-inputs", "--out", "{tmp}/s", "--families", "0"], 2, "argument --families: 0 is out of range",
         id="sample-families-0"),
    case(["sample-inputs", "--out", "{tmp}/s", "--months", "100000"], 2, "argument --months: 100000 is out of range",
         id="sample-months-huge"),
    case(["sample-inputs", "--out", "{tmp}/s", "--seed", "-1"], 2, "argument --seed: -1 is out of range", id="sample-seed"),
    case(["sample-inputs", "--out", "{tmp}/s", "--families", "1000", "--skus-per-family", "1001"], 2,
         "error: sample-inputs: --families x --skus-per-family is 1,001,000 SKUs; at most 1,000,000", id="sample-too-big"),
    case(["sample-inputs", "--out", "{file}"], 1, "sample folder (--out) {file} is a file, not a folder",
         id="sample-out-is-a-file"),
    case(["--db", "{tmp}", "demo"], 1, "plan store (--db, $PLAN_PIPELINE_DB) {tmp} is a folder, not a file",
         id="demo-db-is-a-folder"),
    case(["--db", "{file}/x.duckdb", "demo"], 1,
         "the folder of plan store (--db, $PLAN_PIPELINE_DB) {file} is a file, not a folder", id="demo-db-under-a-file"),
    case(["--db", "{file}", "version", "show", "demo"], 1,
         "error: IOException: IO Error: The file \"{file}\" exists, but it is not a valid DuckDB database file!",
         id="db-not-duckdb"),
    case(["--home", "{file}", "ui"], 1, "project home (--home, $PLAN_PIPELINE_HOME) {file} is a file", id="ui-home"),
    case(["ui", "--port", "99999"], 2, "argument --port: 99999 is out of range: use 1..65535", id="ui-port"),
    case(["ui", "--host", ""], 2, "argument --host: '' is not a host name or address", id="ui-host-empty"),
    case(["ui", "--workspace", ""], 2, "argument --workspace: an empty path is not allowed", id="ui-workspace-empty"),
    case(["--db", "", "version", "list"], 2, "error: --db: an empty path is not allowed", id="db-empty"),
    case(["--home", "", "version", "list"], 2, "error: --home: an empty path is not allowed", id="home-empty"),
]


def _expand(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def _error_lines(err: str) -> list[str]:
    """stderr without progress lines ("[plan-pipeline] ...")."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("[plan-pipeline]")]


@pytest.mark.parametrize("argv, code, fragment, lines", CASES)
def test_hostile_command_line_is_a_short_clear_error(home, tmp_path, capsys, argv, code, fragment, lines):
    places = {"home": str(home), "tmp": str(tmp_path), "file": str(tmp_path / "plain.txt"),
              "sample": str(BUNDLED_SAMPLE)}
    args = [_expand(a, places) for a in argv]
    if "--home" not in args:
        args = ["--home", str(home), *args]
    assert run_main(args) == code
    out, err = capsys.readouterr()
    assert _expand(fragment, places) in err
    assert "Traceback" not in err and "Traceback" not in out
    report = _error_lines(err)
    if code == 2 and not report[-1].startswith("error: "):  # argparse: usage text, then "prog: error: ..."
        assert "error: " in report[-1] and sum("error:" in line for line in report) == 1
        assert len(report) < 25, err
    else:
        assert report[0].startswith("error: "), err
        assert len(report) == lines, err


def test_refused_override_records_nothing(home, capsys):
    for value in ("nan", "inf", "-50", "1e308"):
        assert run_main(["--home", str(home), "override", "set", "demo", "--week", "2025-W11", "--sku", "BK-100",
                         "--demand", value]) == 1
    assert run_main(["--home", str(home), "override", "events", "demo"]) == 0
    assert "version 'demo' has no audit events" in capsys.readouterr().out


def test_bad_dagster_home_fails_before_anything_is_stored(home, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "plain.txt"
    monkeypatch.setenv("DAGSTER_HOME", str(bad))
    for argv in (["version", "create", "--input-set", "sample", "--version-id", "fresh"],
                 ["plan", "-I", str(BUNDLED_SAMPLE), "-o", str(tmp_path / "o"), "--version-id", "fresh"]):
        assert run_main(["--home", str(home), *argv]) == 1
        assert capsys.readouterr().err == f"error: Dagster home ($DAGSTER_HOME) {bad} is a file, not a folder\n"
    monkeypatch.delenv("DAGSTER_HOME")
    assert run_main(["--home", str(home), "version", "show", "fresh"]) == 1
    assert "unknown plan version 'fresh'" in capsys.readouterr().err
    assert run_main(["--home", str(home), "inputs", "list"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # still only the input set 'sample'


def test_debug_variable_adds_the_traceback(home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLAN_PIPELINE_DEBUG", "1")
    bad = tmp_path / "plain.txt"
    assert run_main(["--home", str(home), "--db", str(bad), "version", "show", "demo"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith(f'error: IOException: IO Error: The file "{bad}" exists')


# ------------------------------------------------------------------------------ real processes
def _run_script(project: ProjectHome, tmp_path: Path, body: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    script = tmp_path / "cli_with_hook.py"
    script.write_text(textwrap.dedent(body) + textwrap.dedent("""
        from plan_pipeline.cli.main import main
        sys.exit(main(sys.argv[1:]))
    """))
    return subprocess.run([sys.executable, str(script), *argv], env=project.subprocess_env(bare_environ()),
                          capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_closed_stdout_pipe_ends_quietly(project, home, tmp_path):
    """``plan-pipeline version list | head -1``: the reader is gone; no BrokenPipeError, status 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "plan_pipeline.cli.main", "--home", str(home), "version", "list"],
                                env=project.subprocess_env(bare_environ()), stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert result.stderr == ""


def test_ctrl_c_is_one_line_and_status_130(project, home, tmp_path):
    """SIGINT while ``inputs import`` works: exit 130, one line, nothing imported."""
    result = _run_script(project, tmp_path, """
        import os, signal, sys, time
        import plan_pipeline.inputs.importer as importer

        def interrupted(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
            time.sleep(60)

        importer.import_input_dir = interrupted
    """, "--home", str(home), "inputs", "import", str(BUNDLED_SAMPLE), "--label", "interrupted")
    assert result.returncode == 130
    assert result.stderr == "error: interrupted\n"
    listed = subprocess.run([sys.executable, "-m", "plan_pipeline.cli.main", "--home", str(home), "inputs", "list"],
                            env=project.subprocess_env(bare_environ()), capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "interrupted" not in listed.stdout


def test_ctrl_c_inside_a_dagster_step_is_status_130(project, home, tmp_path):
    """SIGINT while a plan step computes: Dagster fails the run as interrupted; the CLI says so."""
    result = _run_script(project, tmp_path, """
        import os, signal, sys
        import plan_pipeline.orchestration.plan.assets.detail_plan as detail_asset

        real = detail_asset.plan_detail

        def interrupted(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kwargs)

        detail_asset.plan_detail = interrupted
    """, "--home", str(home), "materialize", "demo")
    assert result.returncode == 130
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: run ") and last.endswith(
        "for plan version 'demo' stopped: interrupted by the user (Ctrl-C); the version keeps its previous plan")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ override checks
@pytest.mark.parametrize("payload, message", [
    ({"demand": float("nan")}, "override refused: demand nan is not a finite number"),
    ({"demand": float("inf")}, "override refused: demand inf is not a finite number"),
    ({"supply": float("-inf")}, "override refused: supply -inf is not a finite number"),
    ({"backlog": -50}, "override refused: backlog -50 must not be negative"),
    ({"demand": 1e308}, "override refused: demand 1e+308 is larger than the largest plan quantity 1e+12"),
    ({"demand": MAX_PLAN_QUANTITY * 1.5}, "override refused: demand 1500000000000.0 is larger than the largest "
     "plan quantity 1e+12"),
    ({"demand": "5"}, "override refused: demand '5' is not a number"),
    ({"demand": True}, "override refused: demand True is not a number"),
    ({"price": 1.0}, "override refused: 'price' is not an override field (one of demand, supply, backlog)"),
    ({"demand": -1, "supply": float("nan")},
     "override refused: demand -1 must not be negative; supply nan is not a finite number"),
])
def test_override_values_are_refused_with_the_rule(payload, message):
    with pytest.raises(OverrideError) as exc:
        validate_override_payload(payload)
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError)


def test_override_values_in_range_are_returned_as_floats():
    clean = validate_override_payload({"demand": 0, "supply": MAX_PLAN_QUANTITY, "backlog": None})
    assert clean == {"demand": 0.0, "supply": MAX_PLAN_QUANTITY, "backlog": None}
    assert type(clean["demand"]) is float
    assert validate_override_payload({"demand": np.float64(12.5), "supply": np.int64(3)}) == {"demand": 12.5,
                                                                                              "supply": 3.0}
    negative_zero = validate_override_payload({"supply": -0.0})["supply"]
    assert negative_zero == 0.0 and math.copysign(1.0, negative_zero) == 1.0
    with pytest.raises(OverrideError, match="must be a mapping"):
        validate_override_payload([("demand", 1.0)])


@pytest.mark.parametrize("week, sku, period, message", [
    ("2025-W10", "A,B", None, "override sku 'A,B' must not contain ',' or '=' (they separate the key's parts)"),
    ("2025=W10", "A", None, "override week '2025=W10' must not contain ',' or '=' (they separate the key's parts)"),
    ("", "A", None, "override week '' must not be empty"),
    ("2025-W10", "   ", None, "override sku '   ' must not be empty"),
    ("2025-W10", "A", "", "override period '' must not be empty"),
    ("2025-W10", "A\nB", None, "override sku 'A\\nB' must not contain control characters"),
    ("2025-W10", "A\x7f", None, "override sku 'A\\x7f' must not contain control characters"),
    ("2025-W10 ", "A", None, "override week '2025-W10 ' must not start or end with spaces"),
    ("2025-W10", "S" * (MAX_KEY_PART_LENGTH + 1), None,
     f"override sku is {MAX_KEY_PART_LENGTH + 1} characters long; at most {MAX_KEY_PART_LENGTH} are allowed"),
    ("2025-W10", None, None, "override sku None must be text"),
])
def test_override_key_parts_are_refused_with_the_rule(week, sku, period, message):
    with pytest.raises(OverrideError) as exc:
        detail_key(week, sku, period)
    assert str(exc.value) == message


def test_override_keys_that_fit_are_built_and_checked():
    assert detail_key("2025-W09", UNI, "2025-03") == f"det:week=2025-W09,sku={UNI},period=2025-03"
    assert check_detail_key("det:week=2025-W10,sku=BK-100") == "det:week=2025-W10,sku=BK-100"
    with pytest.raises(OverrideError, match="not a detail override key"):
        check_detail_key("det:week=2025-W10")
    with pytest.raises(OverrideError, match="must not contain control characters"):
        check_detail_key("det:week=2025-W10,sku=A\x1b[2J")


# ------------------------------------------------------------------------------ parameter checks
@pytest.mark.parametrize("field, value, message", [
    ("tol_abs", float("nan"), "tol_abs: nan is not a finite number (use 0 to 1e+12)"),
    ("tol_abs", -1e-9, "tol_abs: -1e-09 must be from 0 to 1e+12"),
    ("tol_abs", 2e12, "tol_abs: 2000000000000.0 must be from 0 to 1e+12"),
    ("tol_rel", float("inf"), "tol_rel: inf is not a finite number (use 0 to 1e+06)"),
    ("max_adjust_ratio", float("nan"), "max_adjust_ratio: nan is not a finite number (use 0 to 1e+06)"),
    ("max_adjust_ratio", 1e300, "max_adjust_ratio: 1e+300 must be from 0 to 1e+06"),
    ("blend_split_next", float("nan"), "blend_split_next: nan is not a finite number (use 0 to 1)"),
    ("carryover_split", -0.1, "carryover_split: -0.1 must be from 0 to 1"),
    ("tol_abs", "abc", "tol_abs: 'abc' must be a number from 0 to 1e+12"),
    ("week_days", 0, "week_days: 0 must be a whole number from 1 to 7"),
    ("week_days", 8, "week_days: 8 must be a whole number from 1 to 7"),
    ("week_days", True, "week_days: True must be a whole number from 1 to 7"),
    ("fallback_weeks", 7, "fallback_weeks: 7 must be a whole number from 1 to 6"),
    ("fallback_weeks", 4.0, "fallback_weeks: 4.0 must be a whole number from 1 to 6"),
    ("recon_window_days", -1, "recon_window_days: -1 must be a whole number from 0 to 366"),
    ("recon_window_days", 10**20, "recon_window_days: 100000000000000000000 must be a whole number from 0 to 366"),
    ("anchor_policy", 3, "anchor_policy: 3 is not one of DET_near, AGG_far, blend"),
    ("round_mode", None, "round_mode: None is not one of none, int, dec1, dec2"),
])
def test_parameters_out_of_range_are_refused_with_the_rule(field, value, message):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(PlanningParameters(**{field: value}))
    assert exc.value.problems == [message]


def test_every_parameter_problem_is_reported_at_once():
    with pytest.raises(ParameterError) as exc:
        validate_parameters(PlanningParameters(week_days=0, tol_abs=float("nan"), tol_rel=-1.0))
    assert exc.value.problems == [
        "week_days: 0 must be a whole number from 1 to 7",
        "tol_abs: nan is not a finite number (use 0 to 1e+12)",
        "tol_rel: -1.0 must be from 0 to 1e+06",
    ]
    assert str(exc.value).splitlines()[0] == "invalid planning parameters:"


def test_parameters_at_their_bounds_are_accepted():
    for field, (low, high) in {**INT_BOUNDS, **FLOAT_BOUNDS}.items():
        for value in (low, high):
            params = validate_parameters(PlanningParameters(**{field: value}))
            assert getattr(params, field) == value
    params = validate_parameters(PlanningParameters(week_days=np.int64(5), tol_abs=np.float64(0.5), tol_rel=0))
    assert (params.week_days, params.tol_abs, params.tol_rel) == (5, 0.5, 0.0)
    assert type(params.week_days) is int and type(params.tol_rel) is float
    assert validate_parameters(PlanningParameters()) == PlanningParameters()
