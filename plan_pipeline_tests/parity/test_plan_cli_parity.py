"""`plan-pipeline plan` reproduces every file of every visible oracle case (read back from the plan store)."""
from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline_tests.planning.oracle_cases import case_names, load_case
from plan_pipeline_tests.planning.oracle_compare import assert_csv_close, assert_json_close, json_diffs

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

NOT_PIPELINE_FILES = {"CMD.txt", "stdout.log", "stderr.log"}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def assert_document(actual: Any, expected: Any, what: str, on_postgres: bool) -> None:
    """The oracle comparison (keys in the same order). On PostgreSQL a level's attributes
    (``attrs_json``, JSONB) come back with their keys in JSONB's order (an accepted difference,
    docs/operations.md): there every difference must be the order of the same keys, and the
    documents with their keys sorted must compare equal under the same rules."""
    if on_postgres:
        for diff in json_diffs(actual, expected, limit=10**6):
            _, _, keys = diff.partition(": keys ")
            got, _, want = keys.partition(" != ")
            assert keys and sorted(ast.literal_eval(got)) == sorted(ast.literal_eval(want)), f"{what}: {diff}"
        actual, expected = _sorted_keys(actual), _sorted_keys(expected)
    assert_json_close(actual, expected, what)


def driver_argv(case, out_dir) -> list[str]:
    argv, skip = [], False
    tokens = list(case.argv)
    for _i, tok in enumerate(tokens):
        if skip:
            skip = False
            continue
        if tok in ("-I", "--input-dir"):
            argv += ["--input-dir", str(case.input_dir)]
            skip = True
        elif tok in ("-o", "--output-dir"):
            argv += ["--output-dir", str(out_dir)]
            skip = True
        else:
            argv.append(tok)
    return argv


@pytest.mark.parametrize("name", case_names())
def test_plan_command_reproduces_oracle_case(name, plan_env, tmp_path, capsys):
    case = load_case(name)
    out_dir = tmp_path / "out"
    assert main(["plan", *driver_argv(case, out_dir)]) == 0, capsys.readouterr().err
    expected = sorted(p.name for p in case.oracle_dir.iterdir()
                      if p.name not in NOT_PIPELINE_FILES and not p.name.startswith("db_"))
    produced = sorted(p.name for p in out_dir.iterdir())
    assert produced == expected
    store = plan_env.store
    for file_name in expected:
        actual = out_dir / file_name
        if file_name.endswith(".json"):
            assert_document(json.loads(actual.read_text(encoding="utf-8")),
                            json.loads(case.oracle_file(file_name).read_text(encoding="utf-8")),
                            f"{name}/{file_name}", store.is_postgres)
        else:
            assert_csv_close(actual.read_bytes().decode("utf-8"), case.oracle_file(file_name))
    # the files are an export of what the store holds: the version and its run are recorded
    (version,) = store.list_versions()
    jobs = store.list_jobs(version.version_id)
    assert jobs["status"].tolist() == ["success"]
    assert set(store.read_series_rows(version.version_id, "aggregate")["source_run_id"]) == {jobs["job_id"].iat[0]}
