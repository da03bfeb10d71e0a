"""Run ``plan-pipeline`` in a real subprocess, as an operator would, so it can be killed (SIGKILL)
or interrupted (SIGINT) and the next command can be judged on what the dead one left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plan_pipeline.faults import CRASH_ENV, PAUSE_DIR_ENV, PAUSE_ENV, pause_file
from plan_pipeline.store import PlanStore
from plan_pipeline_tests.project_homes import HOME_VARS, ProjectHome

CLI = [sys.executable, "-m", "plan_pipeline.cli.main"]
# A hang must fail the test fast: every wait of a CLI command is bounded by this in the tests.
POOL_WAIT_SECONDS = "60"


@dataclass
class Home:
    """A project home (plan store + Dagster instance) driven through the CLI in subprocesses; its
    store is the home's DuckDB file, or with ``store_url`` that PostgreSQL database."""

    path: Path
    store_url: str | None = None

    @classmethod
    def of(cls, home: ProjectHome) -> Home:
        """The home of the selected backend made by the ``homes`` fixture."""
        return cls(home.home, home.store_url)

    @property
    def db(self) -> Path:
        return self.path / "plan_store.duckdb"

    @property
    def store(self) -> PlanStore:
        return PlanStore.from_url(self.store_url) if self.store_url else PlanStore(self.db)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in (CRASH_ENV, PAUSE_ENV, PAUSE_DIR_ENV, *HOME_VARS)}
        env.update({"PLAN_PIPELINE_HOME": str(self.path), "PLAN_PIPELINE_DB": str(self.db),
                    "DAGSTER_HOME": str(self.path / "dagster_home"),
                    "PLAN_PIPELINE_POOL_WAIT_SECONDS": POOL_WAIT_SECONDS, "PYTHONUNBUFFERED": "1"})
        if self.store_url:
            env["PLAN_STORE_URL"] = self.store_url
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], env=self.env(**extra), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen([*CLI, *args], env=self.env(**extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def crash(self, point: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a command that kills itself with SIGKILL at ``point``; assert it died that way."""
        done = self.run(*args, timeout=timeout, **{CRASH_ENV: point})
        assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stdout, done.stderr)
        return done

    def start_paused(self, point: str, *args: str) -> tuple[subprocess.Popen, Path]:
        """Start a command that stops at ``point`` and wait until it got there."""
        folder = self.path / "pauses"
        folder.mkdir(parents=True, exist_ok=True)
        extra = {PAUSE_ENV: point, PAUSE_DIR_ENV: str(folder)}
        marker = folder / pause_file(point, "paused").name
        for stale in (marker, folder / pause_file(point, "release").name):  # left by an earlier pause here
            stale.unlink(missing_ok=True)
        process = self.start(*args, **extra)
        deadline = time.monotonic() + 240
        while not marker.exists():
            if process.poll() is not None:
                raise AssertionError(f"{args} ended before {point}: {process.communicate()}")
            assert time.monotonic() < deadline, f"{args} never reached {point}"
            time.sleep(0.1)
        return process, folder / pause_file(point, "release").name


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def refused(done: subprocess.CompletedProcess, fragment: str) -> subprocess.CompletedProcess:
    assert done.returncode == 1, (done.args, done.returncode, done.stdout, done.stderr)
    assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done


def plan_snapshot(store: PlanStore, version_id: str) -> dict[str, pd.DataFrame]:
    """Every published level of a version (series frames and KPI rows), without run ids."""
    publication = store.publication(version_id)
    snapshot = {level: store.read_series(version_id, level) for level in publication["levels"]}
    for level in publication["kpi_levels"]:
        snapshot[f"kpis:{level}"] = store.read_kpis(version_id, level).drop(columns=["source_run_id"])
    return snapshot


def assert_same_plan(store: PlanStore, version_id: str, expected: dict[str, pd.DataFrame]) -> None:
    got = plan_snapshot(store, version_id)
    assert sorted(got) == sorted(expected)
    for level, frame in expected.items():
        pd.testing.assert_frame_equal(got[level], frame, obj=f"{version_id}:{level}")
