"""A 500-SKU plan home shared by the reliability tests (built once per module)."""
from __future__ import annotations

import pytest

from plan_pipeline_tests.reliability.cli_process import Home, ok, plan_snapshot

# an anchored version writes every plan level (the anchor branch and the adjusted re-plan too)
PLAN_FLAGS = ["--preset", "det_near", "--cutover-date", "2025-03-12", "--apply-adjusted"]


@pytest.fixture(scope="module")
def home500(tmp_path_factory, homes) -> Home:
    """5 families x 100 SKUs x 12 months imported as ``s500``, and version ``clean`` planned (in a
    home of the selected backend; its database lives for the session)."""
    root = tmp_path_factory.mktemp("reliability")
    home = Home.of(homes.new(root / "home"))
    ok(home.run("sample-inputs", "--out", str(root / "in500"), "--families", "5", "--skus-per-family", "100",
                "--months", "12"))
    ok(home.run("inputs", "import", str(root / "in500"), "--label", "s500"))
    ok(home.run("version", "create", "--input-set", "s500", "--version-id", "clean", *PLAN_FLAGS))
    ok(home.run("materialize", "clean"))
    home.clean_plan = plan_snapshot(home.store, "clean")
    assert len(home.clean_plan) == 15  # 12 series levels + 3 KPI levels (report, report_adjusted, scorecard)
    return home
