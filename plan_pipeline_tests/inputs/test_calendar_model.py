"""planning_calendar.json has one typed model: the input validation and the planner's calendar
lookup report the same field problem with the same path and text."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plan_pipeline.inputs.validation import validate_input_dir
from plan_pipeline.planning.calendar import CalendarError, build_calendar
from plan_pipeline.planning.calendar_document import CalendarDocument
from plan_pipeline_tests.inputs.helpers import copy_sample, edit_calendar

BROKEN = [
    (lambda d: d["periods"][1]["weeks"][0].update(sequence="1"),
     "periods[1].weeks[0].sequence", "calendar_schema", "must be an integer, found string '1'"),
    (lambda d: d["periods"][0]["weeks"][2].pop("end_date"),
     "periods[0].weeks[2].end_date", "calendar_schema", "required field 'end_date' is missing"),
    (lambda d: d["periods"][2].update(start_date="2025-02-30"),
     "periods[2].start_date", "calendar_date", "value '2025-02-30' is not a real date (expected YYYY-MM-DD)"),
    (lambda d: d["periods"][0]["weeks"][1].update(weight="heavy"),
     "periods[0].weeks[1].weight", "calendar_weight", "value 'heavy' must be a non-negative number"),
    (lambda d: d["periods"][0]["weeks"][0].update(weight=2e12),
     "periods[0].weeks[0].weight", "value_too_large",
     "value 2000000000000.0 exceeds 1,000,000,000,000 (the largest week weight the planner accepts)"),
    (lambda d: d["periods"][3].update(weeks={}), "periods[3].weeks", "calendar_schema", "must be a list, found object"),
    (lambda d: d.update(planning_params=[1]), "planning_params", "calendar_schema", "must be an object, found list"),
    (lambda d: d["periods"][1]["weeks"][1].update(attributes="x"),
     "periods[1].weeks[1].attributes", "calendar_schema", "must be an object, found string"),
]


@pytest.mark.parametrize("change, path, rule, message", BROKEN)
def test_both_readers_report_the_models_rule(tmp_path: Path, change, path, rule, message):
    folder = copy_sample(tmp_path / "in")
    edit_calendar(folder, change)
    issues = [i for i in validate_input_dir(folder).errors if i.file == "planning_calendar.json"]
    assert [(i.column, i.rule, i.message) for i in issues] == [(path, rule, message)]
    document = json.loads((folder / "planning_calendar.json").read_text(encoding="utf-8"))
    with pytest.raises(CalendarError) as err:
        build_calendar(document)
    assert str(err.value) == f"{path}: {message}"


def test_the_sample_calendar_is_a_valid_document(tmp_path: Path):
    folder = copy_sample(tmp_path / "in")
    document = json.loads((folder / "planning_calendar.json").read_text(encoding="utf-8"))
    model = CalendarDocument.model_validate(document)
    lookup = build_calendar(document)
    assert [p.period for p in model.periods if p.weeks] == list(lookup.periods)
    assert sum(len(p.weeks) for p in model.periods) == len(lookup.week_ranges)


def test_only_the_planner_clamps_a_negative_weight(tmp_path: Path):
    folder = copy_sample(tmp_path / "in")
    edit_calendar(folder, lambda d: d["periods"][0]["weeks"][0].update(weight=-1))
    issues = [str(i) for i in validate_input_dir(folder).errors if i.rule == "calendar_weight"]
    assert issues == ["planning_calendar.json, at periods[0].weeks[0].weight: value -1 must be a non-negative "
                      "number [calendar_weight]"]
    document = json.loads((folder / "planning_calendar.json").read_text(encoding="utf-8"))
    first = build_calendar(document).periods[document["periods"][0]["period"]][0]
    assert first.weight == 0.0 and first.ratio == 0.0
