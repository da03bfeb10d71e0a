"""The planner web view as a planner and an approver use it: a real ``plan-pipeline serve`` on
127.0.0.1 and a free port over a home planned by ``plan-pipeline demo``, keys from the real
``plan-pipeline apikey create``, headless Chromium (Debian's ``/usr/bin/chromium``, driven over
the DevTools protocol by ``harness.Browser``, no network past loopback).

The planner logs in with the key, edits one demand cell of the PSI grid, re-plans and sees the
new number in the grid once the run has written it, and submits; the approver logs in (after
logging the planner out) and approves. Screenshots at 1600x1000: ``web-plans.png``,
``web-plan-detail.png`` and ``web-psi-grid.png``, into ``$PLAN_PIPELINE_SCREENSHOT_DIR`` when it is
set (``PLAN_PIPELINE_SCREENSHOT_DIR=docs/images`` regenerates the ones docs/web_view.md shows),
else into the test's temporary folder. Chromium missing: the test fails under CI (``.ci/run``
installs it) and is skipped elsewhere, like the other browser tests.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from plan_pipeline_tests.e2e.harness import (
    PYTHON,
    SIGINT_RESTORING_EXEC,
    Browser,
    HarnessError,
    ManagedProcess,
    ProjectHome,
    assert_real_screenshot,
    free_port,
    wait_until,
    which_chromium,
)

VERSION = "demo"  # what `plan-pipeline demo` creates and plans
WIDTH, HEIGHT = 1600, 1000
#: The screenshots and the least bytes each has when it shows its page (the list is mostly white).
SCREENSHOTS = {"web-plans.png": 20_000, "web-plan-detail.png": 60_000, "web-psi-grid.png": 60_000}

pytestmark = pytest.mark.both_backends


@pytest.fixture
def chromium_binary():
    chromium = which_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (.ci/run installs Debian's chromium when /usr/bin/chromium is absent)")
        pytest.skip("chromium not installed: apt-get install chromium")
    return chromium


@pytest.fixture
def planned_home(homes, tmp_path, request):
    home = ProjectHome(homes.new(tmp_path / "home", request.addfinalizer)).prepare()
    home.cli("demo", timeout=600)
    home.cli("version", "create", "--input-set", "sample", "--version-id", "what-if", "--note", "not planned yet")
    yield home
    home.project.check_no_duckdb_file()


@pytest.fixture
def server(planned_home, tmp_path):
    port = free_port()
    argv = [*SIGINT_RESTORING_EXEC, PYTHON, "-m", "plan_pipeline.cli.main", "--home", str(planned_home.root),
            "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = ManagedProcess("plan-pipeline serve", argv, tmp_path / "serve.log", env=planned_home.env()).start()
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if not process.running():
            raise HarnessError(f"plan-pipeline serve exited:\n{process.log_tail()}")
        return requests.get(f"{url}/health", timeout=5).status_code == 200

    try:
        wait_until(healthy, 120, what=f"{url}/health", on_timeout=process.log_tail)
        yield url
    finally:
        left = process.stop(grace=20)
        assert not process.survivors(), f"plan-pipeline serve left processes behind: {left}"


@pytest.fixture
def browser(chromium_binary, tmp_path):
    chromium = Browser(tmp_path / "profile", tmp_path / "chromium.log", width=WIDTH, height=HEIGHT)
    try:
        chromium.start()
        yield chromium
    finally:
        left = chromium.stop()
        assert not chromium.process.survivors(), f"chromium left processes behind: {left}"


def navigate_by(browser: Browser, action_js: str, timeout: float = 120) -> None:
    """Run ``action_js`` (a click or a form submit) and wait until the next page has loaded."""
    browser.evaluate("window.__before_navigation = true")
    assert browser.evaluate(action_js) is not False, f"nothing to act on: {action_js}"
    wait_until(lambda: browser.evaluate("window.__before_navigation !== true && document.readyState === 'complete'"),
               timeout, interval=0.3, what=f"the page after {action_js[:60]!r}")


def log_in(browser: Browser, url: str, key: str, name: str) -> None:
    browser.goto(f"{url}/web")
    browser.wait_for_page(["Log in", "API key"])
    navigate_by(browser, f"""(() => {{ document.querySelector('#key').value = {json.dumps(key)};
        document.querySelector('form.login').submit(); return true; }})()""")
    browser.wait_for_page([f"signed in as {name}"])


def click_button(browser: Browser, selector: str) -> None:
    navigate_by(browser, f"""(() => {{ const b = document.querySelector({json.dumps(selector)});
        if (!b) return false; b.click(); return true; }})()""", timeout=600)


def cell(browser: Browser, key: str) -> dict:
    return browser.evaluate(f"""(() => {{
        const td = [...document.querySelectorAll('td[data-measure="demand"]')].find(e => e.dataset.key === {json.dumps(key)});
        return td ? {{value: td.dataset.value, override: td.dataset.override || null, cls: td.className,
                     locked: td.dataset.locked === 'true'}} : null;
    }})()""")


def test_planner_edits_replans_and_an_approver_approves(planned_home, server, browser, tmp_path):
    shots = Path(os.environ.get("PLAN_PIPELINE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    planner_key = planned_home.cli("apikey", "create", "--name", "plan-lead", "--role", "planner").stdout.strip()
    approver_key = planned_home.cli("apikey", "create", "--name", "plan-approver", "--role", "approver").stdout.strip()
    assert planner_key.startswith("ppk_") and approver_key.startswith("ppk_")

    # the planner logs in and sees the plan list with the scorecard
    log_in(browser, server, planner_key, "plan-lead")
    text = browser.wait_for_page(["Plan versions", VERSION, "what-if", "Fill rate"])
    fill_rate = planned_home.query_store(
        "SELECT value FROM plan_kpis_current WHERE version_id = ? AND level = 'scorecard' AND metric = 'fill_rate' "
        "AND bucket_type = 'total'", [VERSION])[0][0]
    assert f"{100 * fill_rate:.1f} %" in text
    browser.screenshot(shots / "web-plans.png")

    # a demand cell of a week inside one month (its key has no period)
    browser.goto(f"{server}/web/plans/{VERSION}")
    browser.wait_for_page(["PSI grid", "Re-plan", "History"])
    target = browser.evaluate("""(() => {
        const cells = [...document.querySelectorAll('td[data-measure="demand"]')]
            .filter(td => !td.dataset.key.includes('period=') && Number(td.dataset.value) > 0);
        const td = cells[6];
        return {key: td.dataset.key, value: Number(td.dataset.value)};
    })()""")
    new_value = target["value"] + 25
    key = target["key"]
    navigate_by(browser, f"""(() => {{
        const td = [...document.querySelectorAll('td[data-measure="demand"]')].find(e => e.dataset.key === {json.dumps(key)});
        td.querySelector('input[name=value]').value = '{new_value:g}';
        td.querySelector('button[value=set]').click(); return true; }})()""")
    browser.wait_for_page([f"{key}: edit"])
    edited = cell(browser, key)
    assert float(edited["override"]) == new_value and float(edited["value"]) == target["value"]
    assert "edited" in edited["cls"] and not edited["locked"]
    # lock the SKU-week: the re-plan keeps it as it is
    navigate_by(browser, f"""(() => {{
        const td = [...document.querySelectorAll('td[data-measure="demand"]')].find(e => e.dataset.key === {json.dumps(key)});
        td.querySelector('button[value=lock]').click(); return true; }})()""")
    browser.wait_for_page([f"{key}: lock"])
    assert cell(browser, key)["locked"]
    rows = planned_home.query_store(
        "SELECT payload_json, author, lock_flag FROM plan_overrides WHERE version_id = ? AND key_hash = ?", [VERSION, key])
    assert [(json.loads(p), a, locked) for p, a, locked in rows] == [({"demand": new_value}, "plan-lead", True)]

    # re-plan: the grid shows the edited number once the run has written the plan
    click_button(browser, "#replan")
    browser.wait_for_page(["launched by plan-lead"], absent=["could not run"])

    def replanned():
        browser.goto(f"{server}/web/plans/{VERSION}")
        text = browser.text()
        if "failure (web)" in text:
            raise HarnessError(f"the web view's plan run failed:\n{text[text.index('Runs'):][:1500]}")
        now = cell(browser, key)
        return text if "success (web)" in text and now and float(now["value"]) == new_value else None

    text = wait_until(replanned, 600, interval=3, what=f"the run to succeed and cell {key} to show {new_value:g}")
    assert "plan-lead" in text
    browser.screenshot(shots / "web-plan-detail.png")
    browser.evaluate("""(() => { const g = document.querySelector('#psi-grid');
        g.scrollIntoView(); window.scrollBy(0, -60); return true; })()""")
    browser.screenshot(shots / "web-psi-grid.png")
    det = planned_home.query_store(
        "SELECT sum(demand) FROM plan_series_current WHERE version_id = ? AND level = 'det' "
        "AND item_key = ? AND time_bucket_key = ?", [VERSION, key.split("sku=")[1], key.split("week=")[1].split(",")[0]])
    assert det[0][0] == new_value

    # submit; the planner gets no approve button
    click_button(browser, 'button[data-action="submit"]')
    browser.wait_for_page(["demo: draft -> submitted by plan-lead"])
    assert browser.evaluate("document.querySelector('button[data-action=approve]') === null")

    # log out, the approver logs in and approves
    click_button(browser, "header form button")
    browser.wait_for_page(["Log in"])
    log_in(browser, server, approver_key, "plan-approver")
    browser.goto(f"{server}/web/plans/{VERSION}")
    browser.wait_for_page(["Approve", "Reject"])
    click_button(browser, 'button[data-action="approve"]')
    browser.wait_for_page(["demo: submitted -> approved by plan-approver", "frozen"])
    assert planned_home.query_store("SELECT status FROM plan_versions WHERE version_id = ?", [VERSION]) == [("approved",)]
    events = planned_home.query_store(
        "SELECT event_type, actor FROM plan_override_events WHERE version_id = ? ORDER BY id", [VERSION])
    assert events == [("edit", "plan-lead"), ("lock", "plan-lead"), ("submit", "plan-lead"),
                      ("approve", "plan-approver")]

    for name, min_bytes in SCREENSHOTS.items():
        stats = assert_real_screenshot(shots / name, min_bytes=min_bytes, min_colors=40)
        assert (stats.width, stats.height) == (WIDTH, HEIGHT)
