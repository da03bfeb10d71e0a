"""Shared fixtures.

Tests that read the reference material in ``../shared/reference`` use the
``reference_dir`` fixture: when the folder is missing they *fail* under CI
(``CI`` set) and skip only on a developer machine without it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("PLAN_PIPELINE_SHARED", PROJECT_ROOT.parent / "shared"))
REFERENCE_DIR = SHARED_DIR / "reference"


def require_reference() -> Path:
    if not REFERENCE_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference material missing: {REFERENCE_DIR} (required when CI is set)")
        pytest.skip(f"reference material not available at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture
def reference_dir() -> Path:
    return require_reference()
