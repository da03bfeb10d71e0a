"""The planning parameters as Dagster run config: one config field per field of the parameter
model, with its type, choices, default and description (so the launchpad shows them), derived from
:class:`~plan_pipeline.planning.parameters.PlanningParameters`. The model validates the values."""
from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field, create_model

from plan_pipeline.planning.parameters import ParameterSpec, PlanningParameters, parameter_specs


def _annotation(spec: ParameterSpec):
    rule = spec.rule
    if rule.optional:  # Dagster config has no optional Literal: the choices go into the description
        return spec.python_type | None
    return Literal[rule.choices] if rule.kind == "choice" else spec.python_type


def _description(spec: ParameterSpec, *, list_choices: bool | None = None) -> str:
    """The field's description, its bounds and (where the config type cannot carry them: optional
    fields, or ``list_choices``) its choices."""
    if list_choices is None:
        list_choices = spec.rule.optional
    choices = f" ({' | '.join(spec.rule.choices)})" if spec.rule.kind == "choice" and list_choices else ""
    return spec.description + (f", {spec.bounds_text}" if spec.bounds_text else "") + choices


PlanningParametersConfig = create_model(  # type: ignore[call-overload]  # fields built from the model
    "PlanningParametersConfig",
    __base__=dg.Config,
    __doc__="The planning parameters of a plan version (defaults are the reference driver's).",
    **{spec.name: (_annotation(spec), Field(default=spec.default, description=_description(spec)))
       for spec in parameter_specs()},
)


def parameters_from_config(config: dg.Config) -> PlanningParameters:
    """Validated parameters from a :data:`PlanningParametersConfig` (raises ParameterError)."""
    return PlanningParameters(**{spec.name: getattr(config, spec.name) for spec in parameter_specs()})


def _override_description(spec: ParameterSpec) -> str:
    return _description(spec, list_choices=True) + "; blank = keep the source version's value"


PlanningParameterOverridesConfig = create_model(  # type: ignore[call-overload]  # fields built from the model
    "PlanningParameterOverridesConfig",
    __base__=dg.Config,
    __doc__="Planning parameters to change in a copied version; a blank field keeps the source version's value.",
    **{spec.name: (spec.python_type | None, Field(default=None, description=_override_description(spec)))
       for spec in parameter_specs()},
)


def overrides_from_config(config: dg.Config) -> dict:
    """The fields of a :data:`PlanningParameterOverridesConfig` that were given (not blank)."""
    return {spec.name: getattr(config, spec.name) for spec in parameter_specs()
            if getattr(config, spec.name) is not None}
