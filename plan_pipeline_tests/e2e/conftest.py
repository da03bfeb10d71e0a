"""Every test in this folder is an end-to-end test (real webserver, daemon, headless Chromium,
the tutorial's commands in subprocesses): marked ``e2e`` so the fast local loop can leave them
out with ``pytest -m "not e2e"``. The README's test command still runs them.

They run on both store backends (``--store-backend=postgres``: the homes' stores are PostgreSQL
databases). The screenshots the docs show are written by the DuckDB run only (into
``docs/images``); the PostgreSQL run checks its screenshots in a temporary folder, so the two
runs of ``.ci/run`` never write the same file."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from plan_pipeline_tests.e2e.harness import REPO_ROOT

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def screenshot_dir(request, tmp_path_factory) -> Path:
    """Where a test writes the screenshots the docs show: ``$PLAN_PIPELINE_SCREENSHOT_DIR`` if set,
    else ``docs/images`` on the DuckDB run and a temporary folder on ``--store-backend=postgres``."""
    chosen = os.environ.get("PLAN_PIPELINE_SCREENSHOT_DIR")
    if chosen:
        return Path(chosen)
    if request.config.getoption("--store-backend") == "postgres":
        return tmp_path_factory.mktemp("screenshots")
    return REPO_ROOT / "docs" / "images"
