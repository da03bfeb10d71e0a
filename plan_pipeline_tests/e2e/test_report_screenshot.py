"""The plan report as a reader sees it: a version of ``sample_tight`` (capacity short most weeks,
a March cutover, the anchored branch applied) planned for real, its report written by
``plan-pipeline report``, opened from disk by headless Chromium with no network, and the
screenshot saved as ``docs/images/plan-report.png`` (the tutorial shows it; set
``PLAN_PIPELINE_SCREENSHOT_DIR`` to write it elsewhere). Run this test to regenerate it. On
``--store-backend=postgres`` the version is planned into a PostgreSQL database and the screenshot
goes to a temporary folder."""
from __future__ import annotations

import os
import subprocess

import pytest

from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline_tests.cli.cli_helpers import bare_environ, cli_subprocess
from plan_pipeline_tests.conftest import require_reference
from plan_pipeline_tests.e2e.harness import assert_real_screenshot, which_chromium
from plan_pipeline_tests.exports.report_helpers import plan_home

pytestmark = pytest.mark.both_backends
SCREENSHOT = "plan-report.png"
WIDTH, HEIGHT = 1400, 2400


def test_the_report_screenshot(tmp_path, homes, request, screenshot_dir):
    chromium = which_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (.ci/run installs Debian's chromium when /usr/bin/chromium is absent)")
        pytest.skip("chromium not installed: apt-get install chromium")
    home = homes.new(tmp_path / "home", request.addfinalizer)
    plan_home(home, {"tight-march": (require_reference() / "inputs" / "sample_tight", "tight",
                                     PlanningParameters(cutover_date="2025-03-15", preset="blend",
                                                        apply_adjusted=True))})
    out = tmp_path / "report"
    result = cli_subprocess("--home", str(home.home), "report", "tight-march", "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr
    page = out / "report.html"
    assert result.stdout.splitlines()[0] == str(page)

    shot = tmp_path / SCREENSHOT
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-extensions",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]
    done = subprocess.run(argv, env=bare_environ(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    stats = assert_real_screenshot(shot, min_bytes=100_000, min_colors=60)
    assert (stats.width, stats.height) == (WIDTH, HEIGHT)
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    (screenshot_dir / SCREENSHOT).write_bytes(shot.read_bytes())
