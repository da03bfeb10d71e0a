"""Shared by the CLI tests: a project home with two materialized versions, built once per
module and copied per test, and ``main(argv)`` run in-process with its exit status."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from plan_pipeline.cli.main import main

HOME_VARS = ("PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB", "PLAN_STORE_URL", "DAGSTER_HOME", "PLAN_PIPELINE_DEBUG")


def bare_environ() -> dict[str, str]:
    """This process's environment without the variables that pick a home (``--home`` decides)."""
    return {k: v for k, v in os.environ.items() if k not in HOME_VARS}


def cli_subprocess(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plan_pipeline.cli.main", *args], env=bare_environ(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def build_demo_home(folder: Path) -> Path:
    """``plan-pipeline demo`` twice: input set ``sample``, versions ``demo`` and ``demo-2``, both materialized."""
    home = folder / "home"
    for _ in range(2):
        result = cli_subprocess("--home", str(home), "demo")
        assert result.returncode == 0, result.stderr
    return home


def use_home_copy(template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of ``template``; the home variables are cleared (and restored after the test)."""
    home = tmp_path / "home"
    shutil.copytree(template, home)
    for name in HOME_VARS:  # setenv first so that the undo also removes what main() sets
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return home


def run_main(argv: list[str]) -> int:
    """``main(argv)``'s exit status, argparse's usage errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
