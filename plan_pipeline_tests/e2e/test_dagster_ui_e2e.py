"""The Dagster UI, proven end to end (issue 5).

One real ``dagster dev`` (webserver + daemon + code server) on a temporary project home:

1. the bundled sample is imported and four plan versions are created with the CLI
   (``v1``, ``v4`` with default parameters, ``v2`` unrounded, ``v3`` with the anchor branch on);
2. through GraphQL, exactly as the UI does it: a ``plan_job`` run of ``v1`` (``launchRun``),
   a backfill of ``v2`` and ``v3`` over the ``plan_job`` partition set
   (``launchPartitionBackfill``), an asset backfill of the ``plan`` group for ``v4`` (what the
   UI's "Materialize…" dialog launches) and one of the project's schedules switched on
   (``startSchedule``);
3. every run succeeds, the ``run_ledger_sensor`` -> ``run_ledger_sync`` pipeline records
   each run id in ``plan_jobs`` with status ``success`` and the right trigger, every asset check
   that ran passed, no run hit a DuckDB lock error;
4. headless Chromium saves the screenshots the tutorial uses (``docs/images/*.png``, or
   ``$PLAN_PIPELINE_SCREENSHOT_DIR``);
5. the server stops on SIGINT and leaves no process behind.

The module's fixtures are module-scoped: the scenario runs once and each test asserts one
aspect of it, so a failure names what broke. Every wait is bounded; failures carry the tail
of the ``dagster dev`` log. Needs ``/usr/bin/chromium`` for the screenshots (``.ci/run``
installs it): missing, the screenshot test fails under CI and skips elsewhere.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plan_pipeline_tests.e2e.harness import (
    LOCATION,
    PLAN_GROUP,
    REPO_ROOT,
    SAMPLE_DIR,
    Browser,
    DagsterDevServer,
    HarnessError,
    ProjectHome,
    assert_real_screenshot,
    wait_until,
    which_chromium,
)

VERSIONS = {
    "v1": [],
    "v2": ["--round", "none"],
    "v3": ["--anchor-policy", "DET_near", "--cutover-date", "2025-03-15", "--apply-adjusted"],
    "v4": [],
}
LAUNCHED_VERSION = "v1"
BACKFILL_VERSIONS = ["v2", "v3"]
ASSET_BACKFILL_VERSION = "v4"  # the UI's asset-backfill path, see test_ui_asset_backfill
# The schedule the test switches on: the first of these the code location defines, else any.
PREFERRED_SCHEDULES = ["replan_stale_drafts", "plan_version_scan_daily", "plan_store_trim_daily",
                       "dwh_export_weekly", "legacy_import_hourly"]
RUN_TIMEOUT = 420  # seconds for every run of the scenario to finish
LEDGER_TIMEOUT = 240  # seconds for plan_jobs to record them (sensor every 15 s + a sync run)
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
LOCK_ERRORS = ("Could not set lock", "Conflicting lock is held")

SCREENSHOT_DIR = Path(os.environ.get("PLAN_PIPELINE_SCREENSHOT_DIR") or REPO_ROOT / "docs" / "images")
SCREENSHOTS = ["asset-lineage.png", "run-steps.png", "backfill.png", "asset-partition.png", "plan-report-kpis.png",
               "asset-checks.png", "published-plan.png"]

RUN_FIELDS = "runId jobName status tags { key value }"
EVENT_FIELDS = """
    __typename
    ... on MessageEvent { message level eventType stepKey }
    ... on AssetCheckEvaluationEvent { evaluation { checkName assetKey { path } success severity } }
    ... on MaterializationEvent { assetKey { path } partition }
    ... on ExecutionStepFailureEvent { error { message } }
    ... on RunFailureEvent { error { message } }
    ... on EngineEvent { error { message } }
"""


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home(tmp_path_factory) -> ProjectHome:
    """Sample imported, three versions created, all through the CLI in subprocesses."""
    project = ProjectHome(tmp_path_factory.mktemp("e2e") / "home").prepare()
    project.cli("inputs", "import", str(SAMPLE_DIR), "--label", "sample")
    for version, flags in VERSIONS.items():
        project.cli("version", "create", "--input-set", "sample", "--version-id", version, *flags)
    return project


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    dev = DagsterDevServer(home, tmp_path_factory.mktemp("logs") / "dagster_dev.log")
    try:
        dev.start()
        yield dev
    finally:
        dev.stop()  # idempotent; test_server_stops_cleanly asserts on the orderly stop


@dataclass
class Scenario:
    launched_run_id: str
    backfill_id: str
    backfill_status: str
    runs: dict[str, dict]  # run id -> GraphQL run (runId jobName status tags)
    version_of: dict[str, str]  # run id -> plan version
    schedule: str | None
    schedule_status: str | None
    schedules_defined: list[str] = field(default_factory=list)
    asset_backfill_id: str | None = None

    @property
    def backfill_run_ids(self) -> list[str]:
        return [r for r in self.runs if r != self.launched_run_id]


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def launch_run(server: DagsterDevServer, version: str) -> str:
    data = server.graphql(
        """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack }
            ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message }
            ... on PipelineNotFoundError { message } ... on UnauthorizedError { message } } }""",
        {"params": {
            "selector": {**server.repository_selector(), "jobName": "plan_job"},
            "runConfigData": {},
            "executionMetadata": {"tags": [
                {"key": "dagster/partition", "value": version},
                {"key": "plan/version", "value": version},
            ]},
        }},
    )["launchRun"]
    if data["__typename"] != "LaunchRunSuccess":
        raise HarnessError(f"launchRun failed: {data}" + server.diagnostics())
    return data["run"]["runId"]


def launch_backfill(server: DagsterDevServer, versions: list[str]) -> str:
    sets = server.graphql(
        """query Sets($repo: RepositorySelector!) { partitionSetsOrError(repositorySelector: $repo,
            pipelineName: "plan_job") { __typename ... on PartitionSets { results { name } } } }""",
        {"repo": server.repository_selector()},
    )["partitionSetsOrError"]
    names = [s["name"] for s in sets.get("results", [])]
    assert names, f"plan_job has no partition set: {sets}"
    data = server.graphql(
        """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
            ... on PartitionSetNotFoundError { message } ... on InvalidSubsetError { message }
            ... on UnauthorizedError { message } } }""",
        {"params": {
            "partitionNames": versions,
            "selector": {"partitionSetName": names[0], "repositorySelector": server.repository_selector()},
            "tags": [{"key": "plan/requested_by", "value": "e2e"}],
        }},
    )["launchPartitionBackfill"]
    if data["__typename"] != "LaunchBackfillSuccess":
        raise HarnessError(f"launchPartitionBackfill failed: {data}" + server.diagnostics())
    return data["backfillId"]


def launch_asset_backfill(server: DagsterDevServer, versions: list[str]) -> str:
    """What the UI's "Materialize…" / "Materialize all…" partition dialog launches: an asset backfill."""
    assets = [{"path": n["assetKey"]["path"]} for n in server.graphql(
        """query Group($group: AssetGroupSelector!) { assetNodes(group: $group) { assetKey { path } } }""",
        {"group": {"groupName": PLAN_GROUP, **server.repository_selector()}})["assetNodes"]]
    data = server.graphql(
        """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
            ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }""",
        {"params": {"partitionNames": versions, "assetSelection": assets,
                    "tags": [{"key": "plan/requested_by", "value": "e2e"}]}},
    )["launchPartitionBackfill"]
    if data["__typename"] != "LaunchBackfillSuccess":
        raise HarnessError(f"asset launchPartitionBackfill failed: {data}" + server.diagnostics())
    return data["backfillId"]


def list_schedules(server: DagsterDevServer) -> dict[str, str]:
    data = server.graphql(
        """query Schedules($repo: RepositorySelector!) { repositoryOrError(repositorySelector: $repo) {
            __typename ... on Repository { schedules { name scheduleState { status } } } } }""",
        {"repo": server.repository_selector()},
    )["repositoryOrError"]
    return {s["name"]: s["scheduleState"]["status"] for s in data.get("schedules", [])}


def start_schedule(server: DagsterDevServer, name: str) -> None:
    data = server.graphql(
        """mutation Start($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
            __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message }
            ... on UnauthorizedError { message } ... on ScheduleNotFoundError { message } } }""",
        {"selector": {**server.repository_selector(), "scheduleName": name}},
    )["startSchedule"]
    if data["__typename"] != "ScheduleStateResult":
        raise HarnessError(f"startSchedule({name}) failed: {data}" + server.diagnostics())


def backfill_state(server: DagsterDevServer, backfill_id: str) -> dict:
    return server.graphql(
        f"""query Backfill($id: String!) {{ partitionBackfillOrError(backfillId: $id) {{
            __typename ... on PartitionBackfill {{ id status numPartitions runs {{ {RUN_FIELDS} }} }}
            ... on PythonError {{ message }} ... on BackfillNotFoundError {{ message }} }} }}""",
        {"id": backfill_id},
    )["partitionBackfillOrError"]


def run_state(server: DagsterDevServer, run_id: str) -> dict:
    data = server.graphql(
        f"""query Run($id: ID!) {{ runOrError(runId: $id) {{ __typename ... on Run {{ {RUN_FIELDS} }}
            ... on RunNotFoundError {{ message }} ... on PythonError {{ message }} }} }}""",
        {"id": run_id},
    )["runOrError"]
    if data["__typename"] != "Run":
        raise HarnessError(f"run {run_id}: {data}")
    return data


def run_events(server: DagsterDevServer, run_id: str) -> list[dict]:
    events, cursor = [], None
    for _ in range(100):  # pages of 1000 events; a plan run has ~150
        data = server.graphql(
            f"""query Logs($id: ID!, $after: String) {{ logsForRun(runId: $id, afterCursor: $after, limit: 1000) {{
                __typename ... on EventConnection {{ cursor hasMore events {{ {EVENT_FIELDS} }} }}
                ... on PythonError {{ message }} ... on RunNotFoundError {{ message }} }} }}""",
            {"id": run_id, "after": cursor},
        )["logsForRun"]
        if data["__typename"] != "EventConnection":
            raise HarnessError(f"logsForRun({run_id}): {data}")
        events.extend(data["events"])
        cursor = data["cursor"]
        if not data["hasMore"]:
            return events
    raise HarnessError(f"logsForRun({run_id}) did not end")


@pytest.fixture(scope="module")
def scenario(server) -> Scenario:
    schedules = list_schedules(server)
    chosen = next((n for n in PREFERRED_SCHEDULES if n in schedules), None) or next(iter(sorted(schedules)), None)
    if chosen:
        start_schedule(server, chosen)

    launched = launch_run(server, LAUNCHED_VERSION)
    backfill_id = launch_backfill(server, BACKFILL_VERSIONS)
    asset_backfill_id = launch_asset_backfill(server, [ASSET_BACKFILL_VERSION])  # checked by its own test

    def finished():
        server.process.track()  # remember run workers, to prove later that none is left
        backfill = backfill_state(server, backfill_id)
        if backfill["__typename"] != "PartitionBackfill":
            raise HarnessError(f"backfill {backfill_id}: {backfill}")
        runs = {r["runId"]: r for r in backfill["runs"]}
        runs[launched] = run_state(server, launched)
        done = (backfill["status"] in TERMINAL_BACKFILL and len(backfill["runs"]) >= len(BACKFILL_VERSIONS)
                and all(r["status"] in TERMINAL_RUN for r in runs.values()))
        return (backfill, runs) if done else None

    def progress() -> str:
        backfill = backfill_state(server, backfill_id)
        lines = [f"backfill {backfill_id}: {backfill.get('status')}"]
        for run in [*backfill.get("runs", []), run_state(server, launched)]:
            lines.append(f"  run {run['runId']} {run['jobName']} {run['status']} {tags_of(run)}")
        return "\n".join(lines) + server.diagnostics()

    backfill, runs = wait_until(finished, RUN_TIMEOUT, interval=2, what="the launched run and the backfill to finish",
                                on_timeout=progress)
    version_of = {run_id: tags_of(run).get("dagster/partition") for run_id, run in runs.items()}
    return Scenario(
        launched_run_id=launched,
        backfill_id=backfill_id,
        backfill_status=backfill["status"],
        runs=runs,
        version_of=version_of,
        schedule=chosen,
        schedule_status=list_schedules(server).get(chosen) if chosen else None,
        schedules_defined=sorted(schedules),
        asset_backfill_id=asset_backfill_id,
    )


# ------------------------------------------------------------------------------------- runs
def test_every_run_succeeds(server, scenario):
    failed = {rid: r["status"] for rid, r in scenario.runs.items() if r["status"] != "SUCCESS"}
    assert not failed, f"runs did not succeed: {failed}" + server.diagnostics()
    assert scenario.backfill_status in ("COMPLETED", "COMPLETED_SUCCESS"), (
        f"backfill {scenario.backfill_id} ended {scenario.backfill_status}" + server.diagnostics())
    assert sorted(scenario.version_of[r] for r in scenario.backfill_run_ids) == sorted(BACKFILL_VERSIONS)
    assert scenario.version_of[scenario.launched_run_id] == LAUNCHED_VERSION
    for run_id, run in scenario.runs.items():
        assert run["jobName"] == "plan_job", f"run {run_id} ran {run['jobName']}"
        tags = tags_of(run)
        if run_id in scenario.backfill_run_ids:
            assert tags.get("dagster/backfill") == scenario.backfill_id, tags


def test_plan_jobs_ledger_records_every_run(home, server, scenario):
    """The daemon's run_ledger_sensor requests run_ledger_sync runs that write the final rows."""
    expected = {scenario.launched_run_id: (LAUNCHED_VERSION, "manual")}
    expected.update({rid: (scenario.version_of[rid], "backfill") for rid in scenario.backfill_run_ids})
    placeholders = ", ".join("?" for _ in expected)
    rows: dict[str, tuple] = {}

    def recorded():
        server.process.track()
        found = home.query_store(
            f"SELECT job_id, version_id, status, trigger, job_name FROM plan_jobs WHERE job_id IN ({placeholders})",
            list(expected),
        )
        rows.clear()
        rows.update({r[0]: r[1:] for r in found})
        return len(rows) == len(expected) and all(r[1] == "success" for r in rows.values())

    wait_until(recorded, LEDGER_TIMEOUT, interval=3, what="plan_jobs rows with status success for every run",
               on_timeout=lambda: f"plan_jobs rows: {rows}" + server.diagnostics(120))
    for run_id, (version, trigger) in expected.items():
        got_version, status, got_trigger, job_name = rows[run_id]
        assert (got_version, status, got_trigger, job_name) == (version, "success", trigger, "plan_job"), (
            f"plan_jobs row of run {run_id}: {rows[run_id]}, expected ({version}, success, {trigger}, plan_job)")
    sync_runs: list[dict] = []

    def sync_runs_done():  # the sensor may have requested one more sync (for a later run) a moment ago
        sync_runs[:] = server.graphql(
            """{ runsOrError(filter: {pipelineName: "run_ledger_sync"}) { ... on Runs { results { runId status } } } }"""
        )["runsOrError"]["results"]
        return all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in sync_runs)

    wait_until(sync_runs_done, LEDGER_TIMEOUT, interval=3, what="every run_ledger_sync run finished",
               on_timeout=lambda: f"run_ledger_sync runs: {sync_runs}" + server.diagnostics(120))
    assert sync_runs and all(r["status"] == "SUCCESS" for r in sync_runs), f"run_ledger_sync runs: {sync_runs}"


def test_error_asset_checks_pass(server, scenario):
    """Every ERROR-severity check evaluated in a run passed (the WARN business checks may warn: the sample
    misses its fill rate target), and every materialized asset's checks were evaluated."""
    checks_by_asset: dict[str, set[str]] = {}
    nodes = server.graphql(
        """query Group($group: AssetGroupSelector!) { assetNodes(group: $group) { assetKey { path }
            assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }""",
        {"group": {"groupName": PLAN_GROUP, **server.repository_selector()}},
    )["assetNodes"]
    for node in nodes:
        checks = node["assetChecksOrError"].get("checks") or []
        checks_by_asset["/".join(node["assetKey"]["path"])] = {c["name"] for c in checks}
    assert any(checks_by_asset.values()), f"the {PLAN_GROUP} group defines no asset checks: {checks_by_asset}"

    for run_id in scenario.runs:
        events = run_events(server, run_id)
        evaluations = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
        failed = [f"{'/'.join(e['assetKey']['path'])}:{e['checkName']}" for e in evaluations
                  if not e["success"] and e["severity"] == "ERROR"]
        assert not failed, f"run {run_id} ({scenario.version_of[run_id]}): checks failed: {failed}"
        evaluated = {("/".join(e["assetKey"]["path"]), e["checkName"]) for e in evaluations}
        materialized = {"/".join(e["assetKey"]["path"]) for e in events if e["__typename"] == "MaterializationEvent"}
        assert materialized, f"run {run_id} materialized nothing"
        missing = sorted(f"{asset}:{check}" for asset in materialized for check in checks_by_asset.get(asset, ())
                         if (asset, check) not in evaluated)
        assert not missing, f"run {run_id} ({scenario.version_of[run_id]}): checks not evaluated: {missing}"
        if scenario.version_of[run_id] == "v3":  # the anchor branch: every plan asset and every check
            all_checks = {(a, c) for a, cs in checks_by_asset.items() for c in cs}
            assert all_checks <= evaluated, f"anchor run skipped checks: {sorted(all_checks - evaluated)}"

    # what the UI's Checks tab shows for detail_plan
    checks = server.graphql(
        """{ assetNodeOrError(assetKey: {path: ["detail_plan"]}) { ... on AssetNode { assetChecksOrError {
            ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }"""
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    assert checks and all(
        (c["executionForLatestMaterialization"] or {}).get("status") == "SUCCEEDED" for c in checks), checks


def test_no_duckdb_lock_errors(home, server, scenario):
    """No run's event log nor captured stdout/stderr shows a DuckDB lock conflict (the pool serialises)."""
    sync_runs = server.graphql(
        """{ runsOrError(filter: {pipelineName: "run_ledger_sync"}) { ... on Runs { results { runId } } } }"""
    )["runsOrError"]["results"]
    hits = []
    for run_id in [*scenario.runs, *(r["runId"] for r in sync_runs)]:
        for event in run_events(server, run_id):
            texts = [event.get("message") or "", ((event.get("error") or {}).get("message") or "")]
            if any(marker in text for text in texts for marker in LOCK_ERRORS):
                hits.append(f"run {run_id} [{event.get('stepKey')}] {event.get('eventType')}: {texts}")
    # the runs' captured stdout/stderr (compute logs) and the server's own log
    storage = home.dagster_home / "storage"
    captured = sorted(storage.rglob("compute_logs/*.err")) + sorted(storage.rglob("compute_logs/*.out"))
    assert len(captured) >= 2 * len(scenario.runs), f"compute logs missing under {storage}: {captured}"
    for path in [*captured, server.process.log_path]:
        text = path.read_text(errors="replace")
        hits += [f"{path}: {line}" for line in text.splitlines() if any(m in line for m in LOCK_ERRORS)]
    assert not hits, "DuckDB lock errors:\n" + "\n".join(hits[:20])


def test_schedule_can_be_started(server, scenario):
    if not scenario.schedules_defined:
        pytest.skip(f"the {LOCATION} code location defines no schedule yet")
    assert scenario.schedule_status == "RUNNING", (
        f"schedule {scenario.schedule} is {scenario.schedule_status} after startSchedule")


# ------------------------------------------------------------------------------------- screenshots
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if which_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (.ci/run installs Debian's chromium when /usr/bin/chromium is absent)")
        pytest.skip("chromium not installed: apt-get install chromium")
    root = tmp_path_factory.mktemp("chromium")
    chromium = Browser(root / "profile", root / "chromium.log", width=1920, height=1080)
    try:
        chromium.start()
        yield chromium
    finally:
        left = chromium.stop()
        assert not chromium.process.survivors(), f"chromium left processes behind: {left}"


def test_screenshots(server, scenario, browser):
    base = server.url
    shots: dict[str, Path] = {}
    anchor_run = next(r for r in scenario.backfill_run_ids if scenario.version_of[r] == "v3")
    plan_assets = [n["assetKey"]["path"][-1] for n in server.graphql(
        """query Group($group: AssetGroupSelector!) { assetNodes(group: $group) { assetKey { path } } }""",
        {"group": {"groupName": PLAN_GROUP, **server.repository_selector()}})["assetNodes"]]

    def shoot(name: str, path: str, texts: list[str], absent: list[str] = (), arrange=None, height=None,
              width=1920, view_height=1080):
        browser.set_viewport(width, view_height)
        browser.goto(base + path)
        if not shots:
            browser.skip_first_visit_modal()
        browser.wait_for_page(texts, absent=absent)
        if arrange:
            arrange()
            browser.wait_for_page(texts, absent=absent)
        time.sleep(1.0)  # let transitions and the graph's zoom animation settle (not an assertion)
        shots[name] = browser.screenshot(SCREENSHOT_DIR / name, height=height)

    def fit_lineage():
        """Zoom out (the graph's own zoom-out button) until every plan asset node is in view."""
        def all_nodes_visible() -> bool:
            top = (browser.rect('input[placeholder*="Search and filter"]') or {"y": 0, "height": 0})
            return bool(browser.evaluate(f"""(() => {{
                const nodes = [...document.querySelectorAll('foreignObject')].map(e => e.getBoundingClientRect())
                    .filter(r => r.width > 40);
                return nodes.length >= {len(plan_assets)} && nodes.every(r => r.top >= {top['y'] + top['height']}
                    && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth - 60);
            }})()"""))

        for _ in range(10):
            if all_nodes_visible():
                return
            browser.evaluate("""(() => { const b = [...document.querySelectorAll('button')]
                .find(e => e.querySelector('[aria-label="zoom_out"]')); if (b) b.click(); })()""")
            time.sleep(0.5)
        raise HarnessError("the plan lineage graph does not fit the viewport after 10 zoom-outs")

    def show_run_steps():
        """A taller step chart in the waterfall view (every step's name in full), a narrower sidebar."""
        divider = browser.rect('[class*="SplitPanelContainer_verticalHitArea"]')
        if divider:
            y = divider["y"] + divider["height"] / 2
            browser.drag(800, y, 800, y + 200)
        browser.evaluate("""(() => { const b = [...document.querySelectorAll('button')]
            .find(e => e.querySelector('[aria-label="gantt_waterfall"]')); if (b) b.click(); })()""")
        divider = browser.rect('[class*="SplitPanelContainer_horizontalHitArea"]')
        if divider:
            x = divider["x"] + divider["width"] / 2
            browser.drag(x, divider["y"] + 80, x + 160, divider["y"] + 80)

    shoot("asset-lineage.png", f"/locations/{LOCATION}/asset-groups/{PLAN_GROUP}/lineage",
          ["planning_inputs", "detail_plan", "plan_report", "published_plan", "Materialize all"],
          arrange=fit_lineage, width=2400, view_height=1350)
    shoot("run-steps.png", f"/runs/{anchor_run}",
          ["Success", "RUN_SUCCESS", "partition: v3", "planning_inputs", "anchored_detail_plan"],
          arrange=show_run_steps, width=2160)
    shoot("backfill.png", f"/runs/b/{scenario.backfill_id}?tab=runs",
          ["Succeeded", *(f"partition: {v}" for v in BACKFILL_VERSIONS)], height=560)
    shoot("asset-partition.png", f"/assets/detail_plan?view=partitions&partition={LAUNCHED_VERSION}",
          ["Materialized", "dagster/row_count", "plan_level", "source_run_id", scenario.launched_run_id[:8]])
    shoot("plan-report-kpis.png", f"/assets/plan_report?view=partitions&partition={LAUNCHED_VERSION}",
          ["Materialized", "kpi/fill_rate", "kpi/backlog_total", "max_utilization"])
    shoot("published-plan.png", f"/assets/published_plan?view=partitions&partition={LAUNCHED_VERSION}",
          ["Materialized", "published_runs", "levels", "not_applicable", scenario.launched_run_id[:8]])
    shoot("asset-checks.png", "/assets/detail_plan?view=checks",
          ["detail_conserves_aggregate", "detail_locks_respected", "Passed"], absent=["Failed"])

    assert sorted(shots) == sorted(SCREENSHOTS)
    for _name, path in shots.items():
        assert_real_screenshot(path)


# ------------------------------------------------------------------------------------- asset backfill
def test_ui_asset_backfill(server, scenario):
    """The UI's own backfill path (asset page / plan_job "Materialize…"): an *asset* backfill of the
    plan group, launched with the others. Every run must succeed and so must the backfill: the
    anchor-branch assets of a version without anchor policy materialize as "not applicable"
    instead of being skipped, so no partition counts as failed."""
    backfill_id = scenario.asset_backfill_id

    def finished():
        server.process.track()
        state = backfill_state(server, backfill_id)
        runs = state.get("runs") or []
        if state.get("status") in TERMINAL_BACKFILL and runs and all(r["status"] in TERMINAL_RUN for r in runs):
            return state
        return None

    state = wait_until(finished, RUN_TIMEOUT, interval=2, what=f"asset backfill {backfill_id} to finish",
                       on_timeout=lambda: f"{backfill_state(server, backfill_id)}" + server.diagnostics())
    failed = [(r["runId"], r["status"]) for r in state["runs"] if r["status"] != "SUCCESS"]
    assert not failed, f"asset backfill runs did not succeed: {failed}" + server.diagnostics()
    assert {tags_of(r).get("dagster/partition") for r in state["runs"]} == {ASSET_BACKFILL_VERSION}
    assert state["status"] == "COMPLETED_SUCCESS", f"asset backfill {backfill_id}: {state}" + server.diagnostics()


# ------------------------------------------------------------------------------------- shutdown
def test_server_stops_cleanly(server, scenario):
    """Last test of the module: SIGINT stops dagster dev and all it started (no SIGKILL needed)."""
    seen = dict(server.process.track())
    assert len(server.process.seen) >= 4, f"expected dagster dev's children to be tracked: {server.process.seen}"
    killed = server.stop(grace=60)
    assert not server.process.running()
    assert not killed, f"dagster dev needed SIGKILL for {killed}" + server.diagnostics(40)
    survivors = server.process.survivors()
    assert not survivors, f"processes left behind: {survivors} (alive before stop: {sorted(seen)})"
