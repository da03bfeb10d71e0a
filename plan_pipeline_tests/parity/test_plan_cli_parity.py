"""`plan-pipeline plan` reproduces every file of every visible oracle case (read back from the plan store)."""
from __future__ import annotations

import json

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline_tests.planning.oracle_cases import case_names, load_case
from plan_pipeline_tests.planning.oracle_compare import assert_csv_close, assert_json_close

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

NOT_PIPELINE_FILES = {"CMD.txt", "stdout.log", "stderr.log"}


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
            # keys in the oracle's order on both backends (PostgreSQL keeps a level's attributes
            # as JSON, not JSONB, since its migration 2: docs/operations.md)
            assert_json_close(json.loads(actual.read_text(encoding="utf-8")),
                              json.loads(case.oracle_file(file_name).read_text(encoding="utf-8")),
                              f"{name}/{file_name}")
        else:
            assert_csv_close(actual.read_bytes().decode("utf-8"), case.oracle_file(file_name))
    # the files are an export of what the store holds: the version and its run are recorded
    (version,) = store.list_versions()
    jobs = store.list_jobs(version.version_id)
    assert jobs["status"].tolist() == ["success"]
    assert set(store.read_series_rows(version.version_id, "aggregate")["source_run_id"]) == {jobs["job_id"].iat[0]}
