"""The project's Dagster instance: its home folder with the project's ``dagster.yaml``, and the
instance itself.

Only Dagster is imported here (no plan assets, no pandas or DuckDB), so a command that just
records something on the instance (a partition, a lifecycle observation) does not load the
plan job to get it.
"""
from __future__ import annotations

import os
from importlib import resources as importlib_resources
from pathlib import Path

import dagster as dg

DAGSTER_YAML_MARKER = "# The project's Dagster instance settings."


def project_dagster_yaml() -> str:
    return importlib_resources.files("plan_pipeline.orchestration").joinpath("dagster.yaml").read_text()


def prepare_dagster_home(home: Path) -> Path:
    """Create ``home`` with the project's dagster.yaml (refreshed if it is our own copy)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    text = project_dagster_yaml()
    current = target.read_text() if target.exists() else None
    # Write ours unless a user replaced the file (theirs lacks our marker line).
    if current is None or (current.startswith(DAGSTER_YAML_MARKER) and current != text):
        target.write_text(text)
    return home


def get_instance() -> dg.DagsterInstance:
    """The instance named by ``$DAGSTER_HOME`` (the same one ``dagster dev`` uses)."""
    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("DAGSTER_HOME is not set")
    return dg.DagsterInstance.get()
