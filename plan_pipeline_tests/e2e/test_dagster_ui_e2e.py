"""The Dagster UI as the front door (issues 5 and 11), proven end to end by a user who never opens
a terminal.

One real ``dagster dev`` (webserver + daemon + code server) on a temporary project home. An
administrator prepared it with the CLI, as the tutorial does: the bundled sample imported as
input set ``sample``, the legacy source configured (``$PLAN_PIPELINE_LEGACY_SOURCE``), a version
``base`` planned and approved, a draft ``cli-draft`` planned (its run is the CLI-launched run the
user later re-executes). Everything after that goes through GraphQL, exactly as the UI does it:

1. ``legacy_import`` launched with its launchpad's default config (the configured source):
   the legacy plans arrive as read-only ``imported`` versions;
2. ``create_plan_version`` from the launchpad (input set, version id, parameters): the version
   is recorded, its partition added and its plan run follows on its own;
3. ``duplicate_plan_version`` of that version: same again, parameters carried over;
4. a partition added by hand with no version behind it, and a plan run of it: refused in one
   line that names ``create_plan_version``; the user then deletes the partition;
5. an asset backfill of every plan asset over the "Missing" partitions, then over "All", with
   the approved and the imported versions among them;
6. a re-execution of the CLI-launched run;
7. ``plan_store_trim`` with its default config (a dry run).

The tests assert: every run green, or (4) deliberately refused; no asset of the approved or the
imported versions ever failed, their rows and check history untouched; version status visible
in the UI; one ``plan_jobs`` row per run id with the right job, trigger and status, and no
ledger-sync run in the Runs list; CLI runs in ``plan_job``'s Runs tab; trim deleted nothing;
no DuckDB lock error; the screenshots of ``docs/images``; the server stops cleanly.

The module's fixtures are module-scoped: the scenario runs once and each test asserts one aspect
of it. Every wait is bounded; failures carry the tail of the ``dagster dev`` log. Needs
``/usr/bin/chromium`` for the screenshots (``.ci/run`` installs it) and the reference's legacy
database (``../shared``): missing, those fail under CI and skip elsewhere.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plan_pipeline_tests.conftest import require_reference
from plan_pipeline_tests.e2e.harness import (
    LOCATION,
    SAMPLE_DIR,
    Browser,
    DagsterDevServer,
    ProjectHome,
    assert_real_screenshot,
    wait_until,
    which_chromium,
)
from plan_pipeline_tests.e2e.ui_actions import (
    TERMINAL_BACKFILL,
    TERMINAL_RUN,
    add_partition,
    all_runs,
    asset_metadata,
    backfill_state,
    delete_partition,
    launch_asset_backfill,
    launch_job,
    missing_partitions,
    partition_health,
    reexecute,
    run_events,
    run_state,
    tags_of,
    tutorial_launchpad,
    wait_for_runs,
)

APPROVED = "base"
CLI_DRAFT = "cli-draft"
BY_HAND = "by-hand"
# the versions docs/tutorial.md creates and duplicates in the launchpad (its configs are launched here)
CREATED = "q3-promo"
DUPLICATED = "q3-promo-b"
CREATED_PARAMETERS = {"round_mode": "none"}
RUN_TIMEOUT = 600  # seconds for one step of the scenario (its runs) to finish
LEDGER_TIMEOUT = 120  # seconds for plan_jobs to hold the final row of every run
LOCK_ERRORS = ("Could not set lock", "Conflicting lock is held")
PLAN_JOBS = {"plan_job", "__ASSET_JOB"}
LEDGER_STATUS = {"SUCCESS": "success", "FAILURE": "failure", "CANCELED": "canceled"}

pytestmark = pytest.mark.both_backends
SCREENSHOTS = ["asset-lineage.png", "create-version-launchpad.png", "version-status.png", "warn-checks.png",
               "kpi-metadata.png", "backfill.png", "run-steps.png", "asset-checks.png"]


def legacy_database() -> Path:
    return require_reference() / "legacy" / "scpln_legacy.db"


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home(homes, tmp_path_factory) -> Iterator[ProjectHome]:
    """What an administrator did with the CLI before the user opens the UI (on the run's store backend)."""
    project = ProjectHome(homes.new(tmp_path_factory.mktemp("e2e") / "home"),
                          extra_env={"PLAN_PIPELINE_LEGACY_SOURCE": str(legacy_database())}).prepare()
    project.cli("inputs", "import", str(SAMPLE_DIR), "--label", "sample")
    for version in (APPROVED, CLI_DRAFT):
        project.cli("version", "create", "--input-set", "sample", "--version-id", version)
        project.cli("materialize", version)
    project.cli("submit", APPROVED)
    project.cli("approve", APPROVED)
    yield project
    project.project.check_no_duckdb_file()  # on PostgreSQL nothing fell back to a DuckDB file


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
    cli_runs: dict[str, str]  # plan version -> run id of its CLI run
    legacy_run: str
    create_run: str
    duplicate_run: str
    follow_up_runs: dict[str, str]  # created version -> the plan run that followed
    missing: list[str]  # what "Missing" selected
    backfills: dict[str, dict]  # "missing" / "all" -> final backfill state
    reexecution: str
    trim_run: str
    refused_run: str
    frozen: list[str]  # approved + imported versions
    frozen_before: dict[str, list[tuple]]
    frozen_after: dict[str, list[tuple]]
    versions_before_trim: int
    versions_after_trim: int
    runs: list[dict] = field(default_factory=list)  # the Runs list at the end

    def backfill_runs(self) -> list[dict]:
        return [run for state in self.backfills.values() for run in state["runs"]]


def store_versions(home: ProjectHome) -> dict[str, str]:
    return dict(home.query_store("SELECT version_id, status FROM plan_versions"))


def frozen_fingerprint(home: ProjectHome, version: str) -> list[tuple]:
    """Row counts and content hashes per level (rows, published pointers, KPIs) of one version."""
    return [
        row
        for table in ("plan_series", "plan_levels", "plan_kpis")
        for row in home.query_store(f"SELECT '{table}', level, count(*), {home.row_checksum('r')} FROM {table} r "
                                    "WHERE version_id = ? GROUP BY level ORDER BY level", [version])
    ]


def finish_run(server: DagsterDevServer, run_id: str) -> dict:
    def ended():
        server.process.track()
        run = run_state(server, run_id)
        return run if run["status"] in TERMINAL_RUN else None

    return wait_until(ended, RUN_TIMEOUT, interval=2, what=f"run {run_id} to end",
                      on_timeout=lambda: str(run_state(server, run_id)) + server.diagnostics())


def follow_up_run(server: DagsterDevServer, version: str) -> dict:
    """The plan run the daemon launches after a version was created in the UI, once it has ended."""
    def launched(runs):
        return [r for r in runs if r["jobName"] in PLAN_JOBS and tags_of(r).get("plan/version") == version]

    runs = wait_for_runs(server, launched, RUN_TIMEOUT, f"the plan run of {version} to follow and end")
    return launched(runs)[0]


def finish_backfill(server: DagsterDevServer, backfill_id: str, expected_runs: int) -> dict:
    def ended():
        server.process.track()
        state = backfill_state(server, backfill_id)
        runs = state["runs"]
        done = (state["status"] in TERMINAL_BACKFILL and len(runs) >= expected_runs
                and all(r["status"] in TERMINAL_RUN for r in runs))
        return state if done else None

    return wait_until(ended, RUN_TIMEOUT, interval=2, what=f"backfill {backfill_id} to end",
                      on_timeout=lambda: json.dumps(backfill_state(server, backfill_id))[:3000] + server.diagnostics())


@pytest.fixture(scope="module")
def scenario(home, server) -> Scenario:
    cli_runs = {v: r for r, v in home.query_store(
        "SELECT job_id, version_id FROM plan_jobs WHERE version_id IN (?, ?)", [APPROVED, CLI_DRAFT])}

    # 1. the legacy plans, from the launchpad's defaults (the configured source)
    legacy_run = launch_job(server, "legacy_import")
    finish_run(server, legacy_run)
    frozen = sorted(v for v, status in store_versions(home).items() if status in ("approved", "imported"))
    frozen_before = {v: frozen_fingerprint(home, v) for v in frozen}

    # 2./3. a version created, then duplicated, from the launchpads; their plan runs follow
    create_run = launch_job(server, "create_plan_version", tutorial_launchpad("create_plan_version"))
    finish_run(server, create_run)
    follow_up = {CREATED: follow_up_run(server, CREATED)["runId"]}
    duplicate_run = launch_job(server, "duplicate_plan_version", tutorial_launchpad("duplicate_plan_version"))
    finish_run(server, duplicate_run)
    follow_up[DUPLICATED] = follow_up_run(server, DUPLICATED)["runId"]

    # 4. a partition added by hand, without a version, and a run of it
    add_partition(server, "plan_version", BY_HAND)
    refused_run = launch_job(server, "plan_job", tags={"dagster/partition": BY_HAND})
    finish_run(server, refused_run)
    delete_partition(server, "plan_version", BY_HAND)  # what the user does after reading the refusal

    # 5. "Materialize all..." over the Missing partitions, then over All
    backfills = {}
    missing = missing_partitions(server)
    if missing:
        backfills["missing"] = finish_backfill(server, launch_asset_backfill(server, missing), len(missing))
    every = sorted(store_versions(home))
    backfills["all"] = finish_backfill(server, launch_asset_backfill(server, None), len(every))

    # 6. the CLI-launched run of the draft, re-executed from its run page (after the backfills, so
    #    the checks' latest executions are real evaluations again)
    reexecution = reexecute(server, cli_runs[CLI_DRAFT])
    finish_run(server, reexecution)

    # 7. trim with its default config
    versions_before_trim = len(store_versions(home))
    trim_run = launch_job(server, "plan_store_trim")
    finish_run(server, trim_run)
    versions_after_trim = len(store_versions(home))

    runs = wait_for_runs(server, lambda runs: True, RUN_TIMEOUT, "every run to end")
    return Scenario(
        cli_runs=cli_runs, legacy_run=legacy_run, create_run=create_run, duplicate_run=duplicate_run,
        follow_up_runs=follow_up, missing=missing, backfills=backfills, reexecution=reexecution,
        trim_run=trim_run, refused_run=refused_run, frozen=frozen, frozen_before=frozen_before,
        frozen_after={v: frozen_fingerprint(home, v) for v in frozen},
        versions_before_trim=versions_before_trim, versions_after_trim=versions_after_trim, runs=runs,
    )


# ------------------------------------------------------------------------------------- versions
def test_versions_created_and_duplicated_from_the_launchpad(home, server, scenario):
    rows = {r[0]: r[1:] for r in home.query_store(
        "SELECT version_id, status, input_set, round_mode FROM plan_versions WHERE version_id IN (?, ?)",
        [CREATED, DUPLICATED])}
    assert set(rows) == {CREATED, DUPLICATED}, rows
    (status, input_set, round_mode), (status_b, input_set_b, round_mode_b) = rows[CREATED], rows[DUPLICATED]
    assert (status, round_mode) == ("draft", CREATED_PARAMETERS["round_mode"])
    assert (status_b, input_set_b, round_mode_b) == ("draft", input_set, round_mode), "duplicate lost parameters"
    for version, run_id in scenario.follow_up_runs.items():
        run = run_state(server, run_id)
        assert run["status"] == "SUCCESS", f"plan run of {version}: {run}" + server.diagnostics()
        assert tags_of(run).get("plan/trigger") == "create_plan_version", tags_of(run)
        assert tags_of(run).get("dagster/partition") == version


def test_every_run_green_or_deliberately_refused(server, scenario):
    refused = {scenario.refused_run}
    bad = {r["runId"]: (r["jobName"], r["status"], tags_of(r).get("dagster/partition"))
           for r in scenario.runs if r["status"] != "SUCCESS" and r["runId"] not in refused}
    assert not bad, f"runs that did not succeed: {bad}" + server.diagnostics()
    for name, state in scenario.backfills.items():
        assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), f"{name} backfill: {state['status']}"
    all_backfill = {tags_of(r).get("dagster/partition") for r in scenario.backfills["all"]["runs"]}
    assert set(scenario.frozen) <= all_backfill, "the All backfill did not include the frozen versions"
    assert set(scenario.frozen) - {APPROVED} <= set(scenario.missing), (
        f"imported versions were never materialized in Dagster, so Missing must select them: {scenario.missing}")


def test_frozen_versions_never_fail_and_stay_untouched(server, scenario):
    assert APPROVED in scenario.frozen and len(scenario.frozen) >= 2, scenario.frozen
    health = partition_health(server)
    failed = {asset: sorted(h["failed"] & set(scenario.frozen)) for asset, h in health.items()}
    assert not any(failed.values()), f"frozen versions shown as failed: {failed}"
    assert scenario.frozen_after == scenario.frozen_before, "rows of a frozen version changed"
    frozen = set(scenario.frozen)
    for run in scenario.backfill_runs():
        if tags_of(run).get("dagster/partition") not in frozen:
            continue
        evaluations = [e for e in run_events(server, run["runId"]) if e["__typename"] == "AssetCheckEvaluationEvent"]
        assert not evaluations, f"run {run['runId']} of a frozen version evaluated checks: {evaluations[:3]}"
        steps = {e.get("stepKey") for e in run_events(server, run["runId"])
                 if e.get("eventType") == "STEP_SUCCESS"}
        assert steps == {"planning_inputs"}, f"frozen run {run['runId']} executed steps {steps}"


def test_version_status_is_visible_on_the_asset(server, scenario):
    for version, status in ((APPROVED, "approved"), (scenario.frozen[-1], None), (CREATED, "draft")):
        metadata = asset_metadata(server, "planning_inputs", version)
        shown = (metadata.get("plan/version_status") or {}).get("text")
        assert shown == (status or shown) and shown in ("approved", "imported", "draft"), (version, metadata.keys())
        assert (metadata.get("input_set") or {}).get("text"), f"{version}: no input set shown"
        assert "parameters" in metadata, f"{version}: no parameters shown"


# ------------------------------------------------------------------------------------- runs
def test_cli_runs_belong_to_the_code_location(server, scenario):
    plan_job_runs = {r["runId"] for r in all_runs(server, job="plan_job")}
    missing = sorted(set(scenario.cli_runs.values()) - plan_job_runs)
    assert not missing, f"CLI runs missing from plan_job's Runs tab: {missing}"
    rerun = run_state(server, scenario.reexecution)
    assert rerun["status"] == "SUCCESS" and rerun["parentRunId"] == scenario.cli_runs[CLI_DRAFT], rerun


def test_default_launchpads_are_safe(home, server, scenario):
    assert run_state(server, scenario.trim_run)["status"] == "SUCCESS"
    assert scenario.versions_after_trim == scenario.versions_before_trim, "trim's default run deleted versions"
    dry = [e for e in run_events(server, scenario.trim_run) if "dry run" in (e.get("message") or "").lower()]
    assert dry, "trim's default run does not say it was a dry run"
    assert run_state(server, scenario.legacy_run)["status"] == "SUCCESS"
    imported = [v for v, s in store_versions(home).items() if s == "imported"]
    assert imported, "the legacy import with default config imported nothing from the configured source"


def test_partition_without_version_is_refused_in_one_line(home, server, scenario):
    run = run_state(server, scenario.refused_run)
    assert run["status"] == "FAILURE", run
    failures = [e for e in run_events(server, scenario.refused_run) if e["__typename"] == "ExecutionStepFailureEvent"]
    assert failures, "no step failure explains the refusal"
    text = (failures[0].get("failureMetadata") or {}).get("description") or failures[0]["error"]["message"]
    assert "create_plan_version" in text and BY_HAND in text, text
    assert "\n" not in text.strip(), f"the refusal is not one line: {text!r}"
    row = home.query_store("SELECT status, error FROM plan_jobs WHERE job_id = ?", [scenario.refused_run])
    assert row and row[0][0] == "failure" and "create_plan_version" in (row[0][1] or ""), row


def test_plan_jobs_maps_every_run(home, server, scenario):
    runs = {r["runId"]: r for r in all_runs(server)}
    assert not [r for r in runs.values() if "ledger" in r["jobName"]], "ledger-sync runs in the Runs list"
    ids = list(runs)
    placeholders = ", ".join("?" for _ in ids)
    rows: dict[str, tuple] = {}

    def recorded():
        found = home.query_store(f"SELECT job_id, job_name, trigger, status, version_id, started_at, finished_at "
                                 f"FROM plan_jobs WHERE job_id IN ({placeholders})", ids)
        rows.clear()
        rows.update({r[0]: r[1:] for r in found})
        return len(rows) == len(ids) and all(rows[i][2] == LEDGER_STATUS[runs[i]["status"]] for i in ids)

    wait_until(recorded, LEDGER_TIMEOUT, interval=3, what="a final plan_jobs row for every run",
               on_timeout=lambda: f"runs {len(ids)}, rows {len(rows)}: "
               f"{ {i: (runs[i]['jobName'], runs[i]['status'], rows.get(i)) for i in ids} }")
    for run_id, run in runs.items():
        job_name, trigger, _status, version, started, finished = rows[run_id]
        tags = tags_of(run)
        assert job_name == run["jobName"], (run_id, job_name, run["jobName"])
        assert trigger and trigger == tags.get("plan/trigger"), (run_id, trigger, tags)
        if run["jobName"] in PLAN_JOBS:
            assert version == tags.get("plan/version") == tags.get("dagster/partition"), (run_id, version, tags)
        assert started is not None and finished is not None, (run_id, rows[run_id])
    expected = {scenario.legacy_run: "ui", scenario.create_run: "ui", scenario.trim_run: "ui",
                scenario.refused_run: "ui", scenario.reexecution: "reexecution",
                **dict.fromkeys(scenario.follow_up_runs.values(), "create_plan_version"),
                **{r["runId"]: "backfill" for r in scenario.backfill_runs()},
                **dict.fromkeys(scenario.cli_runs.values(), "cli")}
    wrong = {r: (rows[r][1], t) for r, t in expected.items() if rows[r][1] != t}
    assert not wrong, f"plan_jobs triggers (got, expected): {wrong}"


def test_warn_business_checks_next_to_conservation_checks(server, scenario):
    evaluations = [e["evaluation"] for e in run_events(server, scenario.follow_up_runs[CREATED])
                   if e["__typename"] == "AssetCheckEvaluationEvent"]
    severities = {e["severity"] for e in evaluations}
    assert severities == {"ERROR", "WARN"}, severities
    assert all(e["success"] for e in evaluations if e["severity"] == "ERROR"), "a conservation check failed"
    warned = [e["checkName"] for e in evaluations if e["severity"] == "WARN" and not e["success"]]
    assert warned, "no business check warns on the sample (22 weeks are over 100 % after leveling)"


def test_kpi_metadata_is_formatted_for_people(server, scenario):
    metadata = asset_metadata(server, "plan_report", CREATED)
    percent = [label for label in metadata if "%" in label or "percent" in label]
    assert percent, f"no percent KPI in plan_report's metadata: {sorted(metadata)}"
    tables = [e for e in metadata.values() if e["__typename"] == "TableMetadataEntry"]
    assert tables and all(t["table"]["schema"]["columns"] for t in tables), "no table preview with a schema"


def test_no_duckdb_lock_errors(home, server, scenario):
    """No run's event log nor captured stdout/stderr shows a DuckDB lock conflict (the pool serialises)."""
    hits = []
    for run in scenario.runs:
        for event in run_events(server, run["runId"]):
            texts = [event.get("message") or "", ((event.get("error") or {}).get("message") or "")]
            if any(marker in text for text in texts for marker in LOCK_ERRORS):
                hits.append(f"run {run['runId']} [{event.get('stepKey')}] {event.get('eventType')}: {texts}")
    storage = home.dagster_home / "storage"
    captured = sorted(storage.rglob("compute_logs/*.err")) + sorted(storage.rglob("compute_logs/*.out"))
    assert captured, f"compute logs missing under {storage}"
    for path in [*captured, server.process.log_path]:
        text = path.read_text(errors="replace")
        hits += [f"{path}: {line}" for line in text.splitlines() if any(m in line for m in LOCK_ERRORS)]
    assert not hits, "DuckDB lock errors:\n" + "\n".join(hits[:20])


# ------------------------------------------------------------------------------------- screenshots
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if which_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (.ci/run installs Debian's chromium when /usr/bin/chromium is absent)")
        pytest.skip("chromium not installed: apt-get install chromium")
    root = tmp_path_factory.mktemp("chromium")
    chromium = Browser(root / "profile", root / "chromium.log", width=1600, height=1000)
    try:
        chromium.start()
        yield chromium
    finally:
        left = chromium.stop()
        assert not chromium.process.survivors(), f"chromium left processes behind: {left}"


def test_screenshots(server, scenario, browser, screenshot_dir):
    base = server.url
    shots: dict[str, Path] = {}
    created_run = scenario.follow_up_runs[CREATED]

    def shoot(name: str, path: str, texts: list[str], absent: list[str] = (), arrange=None, height=None,
              width=1600, view_height=1000, spinners_allowed=False):
        browser.set_viewport(width, view_height)
        browser.goto(base + path)
        if not shots:
            browser.skip_first_visit_modal()
        browser.wait_for_page(texts, absent=absent, spinners_allowed=spinners_allowed)
        if arrange:
            arrange()
            browser.wait_for_page(texts, absent=absent, spinners_allowed=spinners_allowed)
        time.sleep(1.0)  # let transitions and the graph's zoom animation settle (not an assertion)
        shots[name] = browser.screenshot(screenshot_dir / name, height=height)

    def names_whole():
        """At the UI's own fit, every asset name on the lineage is whole (no middle truncation)."""
        labels = browser.evaluate("""(() => [...document.querySelectorAll('foreignObject')]
            .map(e => (e.textContent || '').trim()).filter(t => t))()""")
        cut = [label for label in labels if "\u2026" in label]
        assert labels and not cut, f"asset names cut off in the lineage at 1600x1000: {cut} (of {labels})"

    def show_run_steps():
        browser.evaluate("""(() => { const b = [...document.querySelectorAll('button')]
            .find(e => e.querySelector('[aria-label="gantt_waterfall"]')); if (b) b.click(); })()""")

    shoot("asset-lineage.png", f"/locations/{LOCATION}/asset-groups/plan/lineage",
          ["mrp_plan", "capacity_plan", "plan_report", "published_plan"], arrange=names_whole)
    shoot("create-version-launchpad.png", f"/locations/{LOCATION}/jobs/create_plan_version/playground",
          ["create_plan_version_op", "parameters", "round_mode"], spinners_allowed=True)
    shoot("version-status.png", f"/assets/planning_inputs?view=partitions&partition={APPROVED}",
          ["plan/version_status", "approved", "input_set", "parameter_table"])
    def select_warn_check():
        """Open the WARN check (the list shows its name shortened) so its result and metadata show."""
        clicked = browser.evaluate("""(() => { const hit = [...document.querySelectorAll('body *')]
            .find(e => e.children.length === 0 && (e.textContent || '').includes('within_capacity'));
            if (hit) { hit.click(); return true; } return false; })()""")
        assert clicked, "the WARN check is not in the capacity_weekly_summary's check list"

    shoot("warn-checks.png", "/assets/capacity_weekly_summary?view=checks",
          ["within_capacity", "capacity_respected"], arrange=select_warn_check)
    shoot("kpi-metadata.png", f"/assets/plan_report?view=partitions&partition={CREATED}",
          ["Materialized", "%"])
    shoot("backfill.png", f"/runs/b/{scenario.backfills['all']['id']}?tab=runs",
          ["Succeeded", f"partition: {APPROVED}"], height=700)
    shoot("run-steps.png", f"/runs/{created_run}", ["Success", "RUN_SUCCESS", f"partition: {CREATED}",
                                                    "planning_inputs"], arrange=show_run_steps)
    shoot("asset-checks.png", "/assets/detail_plan?view=checks",
          ["detail_conserves_aggregate", "Passed"], absent=["Failed"])

    assert sorted(shots) == sorted(SCREENSHOTS)
    for _name, path in shots.items():
        assert_real_screenshot(path)


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
