"""``plan-pipeline report V [--out DIR]``: the written paths on stdout, the default folder, and one
``error:`` line for a version it cannot report."""
from __future__ import annotations

import pytest

from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline_tests.cli.cli_helpers import run_main, use_home_copy
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE
from plan_pipeline_tests.exports.report_helpers import assert_non_trivial_png, parse_page, plan_home

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

CHARTS = ["family_month.png", "weekly_load.png", "inventory_top_skus.png"]


@pytest.fixture(scope="module")
def planned_home(tmp_path_factory, homes):
    home = homes.new(tmp_path_factory.mktemp("cli-report") / "home")
    env = plan_home(home, {"v1": (BUNDLED_SAMPLE, "sample", PlanningParameters())})
    env.store.create_version("draft-only", "sample", PlanningParameters())
    return home


def test_report_writes_the_page_and_charts_and_prints_their_paths(planned_home, tmp_path, monkeypatch, home_copy, capsys):
    home = use_home_copy(planned_home, tmp_path, monkeypatch, home_copy)
    out = tmp_path / "my report"
    assert run_main(["--home", str(home), "report", "v1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(out / "report.html"), *(str(out / name) for name in CHARTS)]
    page = parse_page(out / "report.html")
    assert [img["data-file"] for img in page.images] == CHARTS
    for name in CHARTS:
        assert_non_trivial_png(out / name)


def test_without_out_the_report_goes_to_plan_report_version_in_the_current_folder(planned_home, tmp_path,
                                                                                   monkeypatch, home_copy, capsys):
    home = use_home_copy(planned_home, tmp_path, monkeypatch, home_copy)  # also chdir(tmp_path)
    assert run_main(["--home", str(home), "report", "v1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(tmp_path / "plan-report-v1" / "report.html")
    assert (tmp_path / "plan-report-v1" / "report.html").is_file()


@pytest.mark.parametrize(("version", "message"), [
    ("nope", "error: unknown plan version 'nope': see `plan-pipeline version list`"),
    ("draft-only", "error: plan version 'draft-only' has no published plan yet: materialize it first "
                   "(`plan-pipeline materialize draft-only`)"),
    ("..", "error: invalid version id '..'"),
])
def test_a_version_without_a_plan_is_refused_in_one_line(planned_home, tmp_path, monkeypatch, home_copy, capsys, version,
                                                         message):
    home = use_home_copy(planned_home, tmp_path, monkeypatch, home_copy)
    assert run_main(["--home", str(home), "report", version, "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and captured.err.startswith(message)
    assert not (tmp_path / "out").exists()
