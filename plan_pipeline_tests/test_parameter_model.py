"""The planning parameters exist once: the CLI flags, the Dagster run config (inbox import), the
inbox's plan_parameters.json, validation and the plan store's version columns accept exactly the
fields of the parameter model, with the model's defaults (issue 10, acceptance)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re

import duckdb
import pytest

from plan_pipeline.cli.main import add_planning_parameter_flags, build_parser, parameters_from_args
from plan_pipeline.orchestration.inbox.sensor import InboxImportConfig, read_plan_parameters
from plan_pipeline.orchestration.parameter_config import PlanningParametersConfig, parameters_from_config
from plan_pipeline.planning.parameters import ParameterError, parameter_specs, validate_parameters
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store.repository import PlanStore

FIELDS = [f.name for f in dataclasses.fields(PlanningParameters)]
DEFAULTS = PlanningParameters().to_dict()


def _other_value(spec):
    """A valid value of the field that is not its default."""
    rule = spec.rule
    if rule.kind == "choice":
        return next(c for c in reversed(rule.choices) if c != spec.default)
    if rule.kind == "whole":
        return rule.high if spec.default != rule.high else rule.low
    if rule.kind == "number":
        return (rule.low + rule.high) / 4
    if rule.kind == "flag":
        return not spec.default
    return "2025-03-15"  # cutover


CHANGED = {spec.name: _other_value(spec) for spec in parameter_specs()}


def test_the_model_lists_sixteen_parameters_with_the_reference_defaults():
    assert [s.name for s in parameter_specs()] == FIELDS
    assert DEFAULTS == {
        "round_mode": "int", "lt_unit": "day", "week_days": 7, "fallback_weeks": 4, "cutover_date": None,
        "recon_window_days": None, "anchor_policy": None, "preset": None, "blend_split_next": None,
        "blend_weight_mode": "tri", "apply_adjusted": False, "max_adjust_ratio": None, "carryover": "none",
        "carryover_split": None, "tol_abs": 1e-6, "tol_rel": 1e-6,
    }
    assert all(value != DEFAULTS[name] for name, value in CHANGED.items())


def test_validation_accepts_exactly_the_model_fields():
    assert validate_parameters(PlanningParameters()).to_dict() == DEFAULTS
    assert PlanningParameters(**CHANGED).to_dict() == CHANGED
    for name, value in CHANGED.items():
        assert getattr(validate_parameters(PlanningParameters(**{name: value})), name) == value
    with pytest.raises(ParameterError) as exc:
        PlanningParameters(weeks=5)
    assert exc.value.problems == ["weeks: unknown planning parameter"]


def test_cli_flags_are_the_model_fields_with_the_model_defaults():
    parser = argparse.ArgumentParser()
    add_planning_parameter_flags(parser)
    dests = [a.dest for a in parser._actions if a.dest != "help"]
    assert dests == FIELDS
    for command in (["version", "create", "--input-set", "s"], ["plan", "-I", "in", "-o", "out"]):
        args = build_parser().parse_args(command)
        assert {name: getattr(args, name) for name in FIELDS} == DEFAULTS
        assert parameters_from_args(args) == PlanningParameters()
    argv = ["version", "create", "--input-set", "s"]
    for spec in parameter_specs():
        value = CHANGED[spec.name]
        argv += [spec.cli_flag] if spec.rule.kind == "flag" else [spec.cli_flag, str(value)]
    assert parameters_from_args(build_parser().parse_args(argv)).to_dict() == CHANGED


def test_dagster_run_config_fields_are_the_model_fields_with_the_model_defaults():
    schema = InboxImportConfig.to_config_schema().as_field().config_type.fields["parameters"].config_type.fields
    assert list(schema) == FIELDS
    assert {name: field.default_value for name, field in schema.items()} == DEFAULTS
    config = InboxImportConfig(folder="f", fingerprint="x", label="l", version_id="v")
    assert parameters_from_config(config.parameters) == PlanningParameters()
    assert parameters_from_config(PlanningParametersConfig(**CHANGED)).to_dict() == CHANGED


def test_inbox_parameters_file_accepts_exactly_the_model_fields(tmp_path):
    assert read_plan_parameters(tmp_path) == (PlanningParameters(), None, None)
    (tmp_path / "plan_parameters.json").write_text(json.dumps(CHANGED), encoding="utf-8")
    params, _, _ = read_plan_parameters(tmp_path)
    assert params.to_dict() == CHANGED
    (tmp_path / "plan_parameters.json").write_text(json.dumps({**CHANGED, "speed": 3}), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("plan_parameters.json: unknown parameter 'speed'")):
        read_plan_parameters(tmp_path)


def test_version_table_parameter_columns_are_the_model_fields(tmp_path):
    store = PlanStore(tmp_path / "store.duckdb")
    store.create_version("v1", None, PlanningParameters(**CHANGED))
    assert store.get_version("v1").params.to_dict() == CHANGED
    with duckdb.connect(str(store.path), read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'plan_versions' "
            "ORDER BY ordinal_position").fetchall()]
    other = {"version_id", "input_set", "status", "read_only", "note", "source", "created_at", "updated_at"}
    assert [c for c in columns if c not in other] == FIELDS
