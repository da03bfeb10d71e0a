"""Every test in this folder is an end-to-end test (real webserver, daemon, headless Chromium,
the tutorial's commands in subprocesses): marked ``e2e`` so the fast local loop can leave them
out with ``pytest -m "not e2e"``. The README's test command still runs them."""
from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
