"""Shared by the CLI tests: a project home with two materialized versions, built once per
module and copied per test, and ``main(argv)`` run in-process with its exit status."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plan_pipeline.cli.main import main
from plan_pipeline_tests.project_homes import HomeFactory, ProjectHome

HOME_VARS = ("PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB", "PLAN_STORE_URL", "DAGSTER_HOME", "PLAN_PIPELINE_DEBUG")


def bare_environ() -> dict[str, str]:
    """This process's environment without the variables that pick a home (``--home`` decides)."""
    return {k: v for k, v in os.environ.items() if k not in HOME_VARS}


def cli_subprocess(*args: str, home: ProjectHome | None = None, timeout: float = 300,
                   **kwargs) -> subprocess.CompletedProcess:
    """``plan-pipeline *args`` in a child process without this process's home variables; ``home``:
    its store's setting is passed on (a PostgreSQL home's ``PLAN_STORE_URL``; give ``--home`` too)."""
    env = bare_environ() if home is None else home.subprocess_env(bare_environ())
    return subprocess.run([sys.executable, "-m", "plan_pipeline.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def build_demo_home(folder: Path, homes: HomeFactory) -> ProjectHome:
    """``plan-pipeline demo`` twice: input set ``sample``, versions ``demo`` and ``demo-2``, both
    materialized, in a new home of the selected backend (its database lives for the session)."""
    home = homes.new(folder / "home")
    for _ in range(2):
        result = cli_subprocess("--home", str(home.home), "demo", home=home)
        assert result.returncode == 0, result.stderr
    home.check_no_duckdb_file()
    return home


def use_project_copy(template: ProjectHome, tmp_path: Path, monkeypatch, home_copy) -> ProjectHome:
    """A private copy of ``template`` in ``tmp_path / "home"`` (``home_copy``: the fixture of that
    name); the home variables are cleared (and restored after the test), ``PLAN_STORE_URL`` set
    for a PostgreSQL copy, the current folder ``tmp_path``."""
    copy = home_copy(template, tmp_path / "home")
    for name in HOME_VARS:  # setenv first so that the undo also removes what main() sets
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    if copy.store_url:
        monkeypatch.setenv("PLAN_STORE_URL", copy.store_url)
    monkeypatch.chdir(tmp_path)
    return copy


def use_home_copy(template: ProjectHome, tmp_path: Path, monkeypatch, home_copy) -> Path:
    """:func:`use_project_copy`'s folder (what ``--home`` takes)."""
    return use_project_copy(template, tmp_path, monkeypatch, home_copy).home


def run_main(argv: list[str]) -> int:
    """``main(argv)``'s exit status, argparse's usage errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
