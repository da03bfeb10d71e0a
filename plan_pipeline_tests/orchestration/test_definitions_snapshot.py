"""Snapshot of what the code location shows in the Dagster UI: assets (keys, upstreams, group,
partitions, level metadata, pool, owners, tags, whether a code version is set), asset checks (blocking or not), jobs, schedules and sensors.

A change to the asset graph, a renamed check or a moved schedule shows up here as a diff to
review, not as a surprise in the UI. After an intended change, rewrite the snapshot with

    PLAN_PIPELINE_UPDATE_SNAPSHOTS=1 python -m pytest plan_pipeline_tests/orchestration/test_definitions_snapshot.py

and commit the new JSON with the change that caused it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _partitions(definition) -> str | None:
    if definition is None:
        return None
    if isinstance(definition, dg.DynamicPartitionsDefinition):
        return f"dynamic:{definition.name}"
    return type(definition).__name__


def describe_definitions(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        metadata = {name: str(value) for name, value in sorted(node.metadata.items())
                    if name.startswith("plan_")}
        assets[key.to_user_string()] = {
            "upstream": sorted(parent.to_user_string() for parent in node.parent_keys),
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "pools": sorted(node.pools or []),
            "metadata": metadata,
            "has_description": bool(node.description),
            "owners": sorted(node.owners),
            "tags": {name: value for name, value in sorted(node.tags.items()) if not name.startswith("dagster/")},
            "has_code_version": bool(node.code_version),  # the hash itself changes with every code change
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": spec.blocking}
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "partitions": _partitions(job.partitions_def),
            "nodes": sorted(node.name for node in job.graph.node_dict.values()),
            "has_description": bool(job.description),
        }
    schedules = {
        schedule.name: {"cron": schedule.cron_schedule, "job": schedule.job_name,
                        "default_status": schedule.default_status.value}
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {"interval_seconds": sensor.minimum_interval_seconds,
                      "default_status": sensor.default_status.value}
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_code_location_matches_its_snapshot():
    from plan_pipeline.definitions import defs

    current = describe_definitions(defs)
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("PLAN_PIPELINE_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}: run with PLAN_PIPELINE_UPDATE_SNAPSHOTS=1 once"
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    for section in expected:
        assert current[section] == expected[section], (
            f"the code location's {section} changed; review the difference and, if intended, "
            "rewrite the snapshot (see this module's docstring)")


def test_snapshot_describes_the_plan_chain():
    """The snapshot itself says what the UI shows: the published plan depends on every stage."""
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assets = expected["assets"]
    stages = [name for name, asset in assets.items() if asset["metadata"].get("plan_level")]
    assert len(stages) >= 12
    assert set(stages) <= set(assets["published_plan"]["upstream"])
    assert all(asset["partitions"] == "dynamic:plan_version" for asset in assets.values())
    assert all(asset["pools"] == ["duckdb"] for asset in assets.values())
    assert expected["jobs"]["plan_job"]["partitions"] == "dynamic:plan_version"
