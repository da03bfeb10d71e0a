"""What a user does in the Dagster UI, as the GraphQL calls the UI itself makes.

Each function is one UI action (launch a job from its launchpad, backfill a partition range from
the asset page, re-execute a run, add a partition by hand) or one thing the UI shows (runs list,
a run's event log, an asset's partition health). Nothing here is a test; the end-to-end modules
use it. Every call goes through :meth:`DagsterDevServer.graphql`.
"""
from __future__ import annotations

from typing import Any

from plan_pipeline_tests.e2e.harness import DagsterDevServer, HarnessError

RUN_FIELDS = "runId jobName status parentRunId tags { key value }"
EVENT_FIELDS = """
    __typename
    ... on MessageEvent { message level eventType stepKey }
    ... on AssetCheckEvaluationEvent { evaluation { checkName assetKey { path } partition success severity } }
    ... on MaterializationEvent { assetKey { path } partition }
    ... on ExecutionStepFailureEvent { error { message } failureMetadata { label description } }
    ... on RunFailureEvent { error { message } }
    ... on EngineEvent { error { message } }
"""
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
_LAUNCH_RESULT = """__typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message } ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey } ... on InvalidOutputError { invalidOutputName }"""


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def launch_job(server: DagsterDevServer, job: str, run_config: dict | None = None,
               tags: dict[str, str] | None = None) -> str:
    """The launchpad's "Launch run" button: ``job`` with ``run_config`` (``{}`` = the launchpad's defaults)."""
    data = server.graphql(
        f"""mutation Launch($params: ExecutionParams!) {{ launchRun(executionParams: $params) {{ {_LAUNCH_RESULT} }} }}""",
        {"params": {
            "selector": {**server.repository_selector(), "jobName": job},
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }},
    )["launchRun"]
    if data["__typename"] != "LaunchRunSuccess":
        raise HarnessError(f"launchRun({job}) failed: {data}" + server.diagnostics())
    return data["run"]["runId"]


def reexecute(server: DagsterDevServer, parent_run_id: str) -> str:
    """A run page's "Re-execute all" button."""
    data = server.graphql(
        f"""mutation Re($params: ReexecutionParams!) {{ launchRunReexecution(reexecutionParams: $params) {{
            {_LAUNCH_RESULT} }} }}""",
        {"params": {"parentRunId": parent_run_id, "strategy": "ALL_STEPS"}},
    )["launchRunReexecution"]
    if data["__typename"] != "LaunchRunSuccess":
        raise HarnessError(f"re-execution of run {parent_run_id} failed: {data}" + server.diagnostics())
    return data["run"]["runId"]


def add_partition(server: DagsterDevServer, partitions_def: str, key: str) -> None:
    """The partition selector's "Add new partition" dialog."""
    data = server.graphql(
        """mutation Add($repo: RepositorySelector!, $name: String!, $key: String!) {
            addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
            __typename ... on AddDynamicPartitionSuccess { partitionKey } ... on PythonError { message }
            ... on UnauthorizedError { message } ... on DuplicateDynamicPartitionError { partitionName } } }""",
        {"repo": server.repository_selector(), "name": partitions_def, "key": key},
    )["addDynamicPartition"]
    if data["__typename"] != "AddDynamicPartitionSuccess":
        raise HarnessError(f"addDynamicPartition({key}) failed: {data}")


def delete_partition(server: DagsterDevServer, partitions_def: str, key: str) -> None:
    """The partition's "Delete partition" action (after a refused run of a partition added by mistake)."""
    data = server.graphql(
        """mutation Delete($repo: RepositorySelector!, $name: String!, $keys: [String!]!) {
            deleteDynamicPartitions(repositorySelector: $repo, partitionsDefName: $name, partitionKeys: $keys) {
            __typename ... on DeleteDynamicPartitionsSuccess { partitionsDefName } ... on PythonError { message }
            ... on UnauthorizedError { message } } }""",
        {"repo": server.repository_selector(), "name": partitions_def, "keys": [key]},
    )["deleteDynamicPartitions"]
    if data["__typename"] != "DeleteDynamicPartitionsSuccess":
        raise HarnessError(f"deleteDynamicPartitions({key}) failed: {data}")


def plan_asset_keys(server: DagsterDevServer) -> list[list[str]]:
    """Every plan asset (all plan groups): what "Materialize all..." on the global lineage selects."""
    return [n["assetKey"]["path"] for n in server.group_asset_nodes("assetKey { path }")]


def partition_health(server: DagsterDevServer) -> dict[str, dict[str, set[str]]]:
    """Per plan asset: its materialized, failed, missing and in-progress partitions (the asset page's bar)."""
    nodes = server.group_asset_nodes("""assetKey { path } assetPartitionStatuses { __typename
        ... on DefaultPartitionStatuses {
            materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions } }""")
    health = {}
    for node in nodes:
        statuses = node["assetPartitionStatuses"]
        health["/".join(node["assetKey"]["path"])] = {
            "materialized": set(statuses.get("materializedPartitions") or []),
            "failed": set(statuses.get("failedPartitions") or []),
            "missing": set(statuses.get("unmaterializedPartitions") or []),
            "materializing": set(statuses.get("materializingPartitions") or []),
        }
    return health


def missing_partitions(server: DagsterDevServer) -> list[str]:
    """What the "Materialize all" dialog selects under "Missing": partitions any plan asset lacks."""
    health = partition_health(server)
    return sorted(set().union(*(h["missing"] | h["failed"] for h in health.values())))


def launch_asset_backfill(server: DagsterDevServer, partitions: list[str] | None, tags: dict[str, str] | None = None
                          ) -> str:
    """The plan group's "Materialize all..." dialog: an asset backfill of ``partitions`` (None = "All")."""
    assets = [{"path": path} for path in plan_asset_keys(server)]
    params: dict[str, Any] = {"assetSelection": assets,
                              "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    if partitions is None:
        params["allPartitions"] = True
    else:
        params["partitionNames"] = partitions
    data = server.graphql(
        """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
            ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }""",
        {"params": params},
    )["launchPartitionBackfill"]
    if data["__typename"] != "LaunchBackfillSuccess":
        raise HarnessError(f"asset backfill failed to launch: {data}" + server.diagnostics())
    return data["backfillId"]


def backfill_state(server: DagsterDevServer, backfill_id: str) -> dict:
    data = server.graphql(
        f"""query Backfill($id: String!) {{ partitionBackfillOrError(backfillId: $id) {{
            __typename ... on PartitionBackfill {{ id status numPartitions partitionNames runs {{ {RUN_FIELDS} }} }}
            ... on PythonError {{ message }} ... on BackfillNotFoundError {{ message }} }} }}""",
        {"id": backfill_id},
    )["partitionBackfillOrError"]
    if data["__typename"] != "PartitionBackfill":
        raise HarnessError(f"backfill {backfill_id}: {data}")
    return data


def run_state(server: DagsterDevServer, run_id: str) -> dict:
    data = server.graphql(
        f"""query Run($id: ID!) {{ runOrError(runId: $id) {{ __typename ... on Run {{ {RUN_FIELDS} }}
            ... on RunNotFoundError {{ message }} ... on PythonError {{ message }} }} }}""",
        {"id": run_id},
    )["runOrError"]
    if data["__typename"] != "Run":
        raise HarnessError(f"run {run_id}: {data}")
    return data


def all_runs(server: DagsterDevServer, job: str | None = None, limit: int = 500) -> list[dict]:
    """The Runs list (optionally one job's Runs tab), newest first."""
    filter_ = f'filter: {{pipelineName: "{job}"}}, ' if job else ""
    data = server.graphql(f"""{{ runsOrError({filter_}limit: {limit}) {{ __typename
        ... on Runs {{ results {{ {RUN_FIELDS} }} }} ... on PythonError {{ message }} }} }}""")["runsOrError"]
    if data["__typename"] != "Runs":
        raise HarnessError(f"runsOrError: {data}")
    return data["results"]


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


def asset_metadata(server: DagsterDevServer, asset: str, partition: str) -> dict[str, Any]:
    """The asset page's latest materialization of ``partition``: its metadata entries by label."""
    data = server.graphql(
        """query M($key: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $key) { __typename ... on Asset {
            assetMaterializations(partitions: $p, limit: 1) { partition metadataEntries { __typename label
              ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatValue }
              ... on IntMetadataEntry { intValue } ... on BoolMetadataEntry { boolValue }
              ... on MarkdownMetadataEntry { mdStr } ... on JsonMetadataEntry { jsonString }
              ... on TableMetadataEntry { table { records schema { columns { name type description } } } }
              ... on TableSchemaMetadataEntry { schema { columns { name type } } } } } } } }""",
        {"key": {"path": [asset]}, "p": [partition]},
    )["assetOrError"]
    if data["__typename"] != "Asset" or not data["assetMaterializations"]:
        raise HarnessError(f"no materialization of {asset} partition {partition}: {data}")
    entries = data["assetMaterializations"][0]["metadataEntries"]
    return {e["label"]: e for e in entries}


def wait_for_runs(server: DagsterDevServer, predicate, timeout: float, what: str):
    """Wait until ``predicate(runs)`` (the Runs list) is truthy and every listed run has ended."""
    from plan_pipeline_tests.e2e.harness import wait_until

    seen: list[dict] = []

    def done():
        server.process.track()
        runs = all_runs(server)
        seen[:] = runs
        ok = predicate(runs)
        return (ok, runs) if ok and all(r["status"] in TERMINAL_RUN for r in runs) else None

    return wait_until(done, timeout, interval=2, what=what, on_timeout=lambda: "\n".join(
        f"  {r['runId']} {r['jobName']} {r['status']} {tags_of(r)}" for r in seen) + server.diagnostics())[1]


def tutorial_launchpad(job: str) -> dict:
    """The launchpad config ``docs/tutorial.md`` tells the reader to paste for ``job`` (the YAML
    block right after ``<!-- launchpad: JOB -->``), so the tutorial's configs are the tested ones."""
    import re

    import yaml

    from plan_pipeline_tests.e2e.harness import REPO_ROOT

    text = (REPO_ROOT / "docs" / "tutorial.md").read_text()
    match = re.search(rf"<!-- launchpad: {re.escape(job)} -->\s*```yaml\n(.*?)\n```", text, re.S)
    if match is None:
        raise HarnessError(f"docs/tutorial.md has no launchpad config for {job}")
    return yaml.safe_load(match.group(1))
