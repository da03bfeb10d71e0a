"""The planning parameters: ONE typed model (a frozen pydantic dataclass) that is the definition of
every parameter - name, type, default, bound, choices, description - and of its validation.

Everything else derives from it: the CLI flags (:func:`parameter_specs`), the Dagster run config
of the inbox import, the inbox's ``plan_parameters.json``, the plan store's version columns and
the legacy mapping. Constructing :class:`PlanningParameters` validates; a broken value raises
:class:`ParameterError` with one line per broken field naming the field, the value and the rule.
Every number must be a real, finite number (NaN and infinities are refused) inside its range.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from plan_pipeline.planning.vocabulary import (
    ANCHOR_POLICIES,
    BLEND_WEIGHT_MODES,
    CARRYOVER_MODES,
    LT_UNITS,
    MAX_PLAN_QUANTITY,
    MAX_RATIO,
    PRESETS,
    ROUND_MODES,
    normalise_anchor_policy,
    parse_cutover,
)


class ParameterError(ValueError):
    """Raised with every problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid planning parameters:\n" + "\n".join(f"  - {p}" for p in problems))


# ------------------------------------------------------------------------------------ rules
@dataclasses.dataclass(frozen=True)
class Rule:
    """The rule of one parameter: its kind, bounds or choices. It is the field's validator (a
    pydantic before-validator) and what the CLI and the Dagster config read to build their fields."""

    kind: str  # "whole" | "number" | "choice" | "flag" | "cutover"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None allowed
    normalise: Any = None  # applied before the choice check (anchor policy aliases)

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a whole or number rule."""
        if self.low is None or self.high is None:
            raise AssertionError(f"a {self.kind} rule has no bounds")
        return self.low, self.high

    def __call__(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if self.kind == "choice":
            value = self.normalise(value) if self.normalise else value
            if value is None and self.optional:
                return None
            if isinstance(value, str) and value in self.choices:
                return value
            raise _problem(f"{value!r} is not one of {', '.join(self.choices)}")
        if self.kind == "whole":
            low, high = self.bounds
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
                raise _problem(f"{value!r} must be a whole number from {low:g} to {high:g}")
            return int(value)
        if self.kind == "number":
            low, high = self.bounds
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise _problem(f"{value!r} must be a number from {low:g} to {high:g}")
            if not math.isfinite(value):
                raise _problem(f"{value!r} is not a finite number (use {low:g} to {high:g})")
            if not low <= float(value) <= high:
                raise _problem(f"{value!r} must be from {low:g} to {high:g}")
            return float(value)
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise _problem(f"{value!r} must be true or false")
            return value
        if self.kind == "cutover":
            text = str(value)
            if text != text.strip() or parse_cutover(text) is None:
                raise _problem(f"{value!r} must be a date YYYY-MM-DD or a month YYYY-MM")
            return text
        raise AssertionError(self.kind)


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("planning_parameter", "{problem}", {"problem": text})


# A field is ``Annotated[<type>, <its rule as a before-validator>]``: the rule validates (and
# normalises) the value, and the CLI and the Dagster config read their fields from it.
def _whole(low: int, high: int, optional: bool = False) -> BeforeValidator:
    return BeforeValidator(Rule("whole", low, high, optional=optional))


def _number(low: float, high: float, optional: bool = False) -> BeforeValidator:
    return BeforeValidator(Rule("number", low, high, optional=optional))


def _choice(choices, optional: bool = False, normalise=None) -> BeforeValidator:
    return BeforeValidator(Rule("choice", choices=tuple(choices), optional=optional, normalise=normalise))


_FLAG = BeforeValidator(Rule("flag"))
_CUTOVER = BeforeValidator(Rule("cutover", optional=True))


# ------------------------------------------------------------------------------------ the model
@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class _ParameterFields:
    """The fields. Defaults are the reference driver's; ``cli`` names a flag that differs from the
    field name (the reference driver's spelling)."""

    round_mode: Annotated[str, _choice(ROUND_MODES)] = Field("int", description="round mode", json_schema_extra={"cli": "--round"})
    lt_unit: Annotated[str, _choice(LT_UNITS)] = Field("day", description="lead-time unit")
    week_days: Annotated[int, _whole(1, 7)] = Field(7, description="days per week for day lead times (a week has at most 7 days)")
    fallback_weeks: Annotated[int, _whole(1, 6)] = Field(
        4, description="fallback weeks per period without a calendar (a month touches at most 6 ISO weeks)",
        json_schema_extra={"cli": "--weeks"})
    cutover_date: Annotated[str | None, _CUTOVER] = Field(None, description="cutover date YYYY-MM-DD (or month YYYY-MM)")
    recon_window_days: Annotated[int | None, _whole(0, 366, optional=True)] = Field(
        None, description="reconciliation window in days around the cutover (0 = no window)")
    anchor_policy: Annotated[str | None, _choice(ANCHOR_POLICIES, optional=True, normalise=normalise_anchor_policy)] = Field(
        None, description="anchor policy, any case, - or _", json_schema_extra={"cli_choices": False})
    preset: Annotated[str | None, _choice(tuple(PRESETS), optional=True)] = Field(None, description="fills policy/window when not given")
    blend_split_next: Annotated[float | None, _number(0.0, 1.0, optional=True)] = Field(
        None, description="blend: share of spill sent to the next month")
    blend_weight_mode: Annotated[str, _choice(BLEND_WEIGHT_MODES)] = Field("tri", description="blend weights")
    apply_adjusted: Annotated[bool, _FLAG] = Field(False, description="re-plan MRP/capacity/report on the anchored detail")
    max_adjust_ratio: Annotated[float | None, _number(0.0, MAX_RATIO, optional=True)] = Field(
        None, description="anchor: max change per row as a ratio (0 = unlimited)")
    carryover: Annotated[str, _choice(CARRYOVER_MODES)] = Field("none", description="anchor residual carryover")
    carryover_split: Annotated[float | None, _number(0.0, 1.0, optional=True)] = Field(
        None, description="carryover 'both': share sent to the next month")
    tol_abs: Annotated[float, _number(0.0, MAX_PLAN_QUANTITY)] = Field(1e-6, description="reconciliation absolute tolerance")
    tol_rel: Annotated[float, _number(0.0, MAX_RATIO)] = Field(1e-6, description="reconciliation relative tolerance")


class PlanningParameters(_ParameterFields):
    """Every planning parameter of the reference driver, as a version parameter (validated on
    construction; ``dataclasses.replace`` validates too).

    ``preset`` is resolved by :meth:`resolved`: it fills only the fields left at ``None``.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        try:
            super().__init__(*args, **kwargs)
        except ValidationError as exc:
            raise ParameterError(_problems(exc)) from None

    @classmethod
    def unchecked(cls, **values: Any) -> PlanningParameters:
        """Parameters as stored, not validated (a stored row may predate a rule or be edited behind
        the store's back): :func:`validate_parameters` reports what is wrong when they are used."""
        obj = object.__new__(cls)
        for spec in parameter_specs():
            object.__setattr__(obj, spec.name, values.get(spec.name, spec.default))
        return obj

    def resolved(self) -> PlanningParameters:
        if not self.preset:
            return self
        fill = PRESETS[self.preset]
        missing: dict[str, Any] = {k: v for k, v in fill.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **missing)

    @property
    def has_anchor_branch(self) -> bool:
        """The anchor branch runs only with both an anchor policy and a cutover date."""
        p = self.resolved()
        return bool(p.anchor_policy) and bool(p.cutover_date)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "parameters"
        if error["type"] == "planning_parameter":
            problems.append(f"{name}: {error['ctx']['problem']}")
        elif error["type"] == "unexpected_keyword_argument":
            problems.append(f"{name}: unknown planning parameter")
        else:
            problems.append(f"{name}: {error['msg']}")
    return problems


def validate_parameters(params: PlanningParameters) -> PlanningParameters:
    """Return validated, normalised parameters (canonical anchor policy names) or raise ParameterError."""
    return PlanningParameters(**{spec.name: getattr(params, spec.name) for spec in parameter_specs()})


# ------------------------------------------------------------------------------------ introspection
@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One field of the model, as the CLI, the Dagster config and the store see it."""

    name: str
    rule: Rule
    default: Any
    description: str
    cli_flag: str
    cli_choices: bool

    @property
    def python_type(self) -> type:
        return {"whole": int, "number": float, "flag": bool}.get(self.rule.kind, str)

    @property
    def bounds_text(self) -> str:
        if self.rule.kind == "whole":
            return f"{self.rule.low}-{self.rule.high}"
        if self.rule.kind == "number":
            return f"{self.rule.low:g} to {self.rule.high:g}"
        return ""


def parameter_specs() -> list[ParameterSpec]:
    """The model's fields in declaration order."""
    return _SPECS


def _spec(name: str, info) -> ParameterSpec:
    rule = next(m.func for m in info.metadata if isinstance(m, BeforeValidator) and isinstance(m.func, Rule))
    assert isinstance(rule, Rule)
    extra = info.json_schema_extra or {}
    return ParameterSpec(
        name=name,
        rule=rule,
        default=info.default,
        description=info.description or "",
        cli_flag=extra.get("cli", "--" + name.replace("_", "-")),
        cli_choices=extra.get("cli_choices", True),
    )


_FIELDS = _ParameterFields.__pydantic_fields__  # type: ignore[attr-defined]  # set by pydantic's decorator
_SPECS = [_spec(name, info) for name, info in _FIELDS.items()]
#: The parameter names, in order (the plan store's version columns).
PARAMETER_NAMES = tuple(spec.name for spec in _SPECS)
#: Bounds of the integer and float parameters (derived from the model).
INT_BOUNDS: dict[str, tuple[int, int]] = {
    s.name: (int(s.rule.bounds[0]), int(s.rule.bounds[1])) for s in _SPECS if s.rule.kind == "whole"}
FLOAT_BOUNDS: dict[str, tuple[float, float]] = {s.name: s.rule.bounds for s in _SPECS if s.rule.kind == "number"}
