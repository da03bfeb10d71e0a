"""Validation and normalisation of planning parameters (one error message per broken rule).

This is the one home of every parameter's rule and bound; the CLI, the inbox sensor, the
legacy backfill and the run inputs all call :func:`validate_parameters`. Every number must be
a real, finite number (NaN and infinities are refused) inside the range below.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict
from datetime import date

from plan_pipeline.planning.types import (
    ANCHOR_POLICIES,
    BLEND_WEIGHT_MODES,
    CARRYOVER_MODES,
    LT_UNITS,
    MAX_PLAN_QUANTITY,
    PRESETS,
    ROUND_MODES,
    PlanningParameters,
)

#: Inclusive bounds of the integer parameters.
#: ``week_days``: days in a planning week (day lead times are ``ceil(lt / week_days)`` weeks);
#: a week has at most 7 days. ``fallback_weeks``: weeks per period without a calendar; a
#: calendar month touches at most 6 ISO weeks (and week codes sort as text only up to 9).
#: ``recon_window_days``: the reconciliation window around the cutover; 0 = no window, at most
#: one year.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "week_days": (1, 7),
    "fallback_weeks": (1, 6),
    "recon_window_days": (0, 366),
}
#: The largest ratio parameter (``max_adjust_ratio``, ``tol_rel``): a million times a row's
#: value is no limit in practice (``max_adjust_ratio`` 0 already means "unlimited"), and it keeps
#: ``value x ratio`` finite for every plan quantity up to ``MAX_PLAN_QUANTITY``.
MAX_RATIO = 1e6
#: Inclusive bounds of the float parameters (``None`` is allowed where the default is ``None``).
FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "blend_split_next": (0.0, 1.0),
    "carryover_split": (0.0, 1.0),
    "max_adjust_ratio": (0.0, MAX_RATIO),
    "tol_abs": (0.0, MAX_PLAN_QUANTITY),
    "tol_rel": (0.0, MAX_RATIO),
}
#: Numeric parameters that may be left unset (``None``).
OPTIONAL = {"recon_window_days", "blend_split_next", "carryover_split", "max_adjust_ratio"}


class ParameterError(ValueError):
    """Raised with every problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid planning parameters:\n" + "\n".join(f"  - {p}" for p in problems))


_POLICY_ALIASES = {
    "det_near": "DET_near",
    "det-near": "DET_near",
    "agg_far": "AGG_far",
    "agg-far": "AGG_far",
    "blend": "blend",
}


def normalise_anchor_policy(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value  # validate_parameters reports it
    return _POLICY_ALIASES.get(value.strip().lower(), value)


def _is_cutover(value: str) -> bool:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            date.fromisoformat(value)
            return True
        except ValueError:
            return False
    if re.fullmatch(r"\d{4}-\d{2}", value):
        return 1 <= int(value[5:]) <= 12
    return False


def validate_parameters(params: PlanningParameters) -> PlanningParameters:
    """Return normalised parameters (canonical anchor policy names) or raise ParameterError."""
    data = asdict(params)
    data["anchor_policy"] = normalise_anchor_policy(data["anchor_policy"])
    problems: list[str] = []

    def choice(name, allowed):
        if not isinstance(data[name], str) or data[name] not in allowed:
            problems.append(f"{name}: {data[name]!r} is not one of {', '.join(allowed)}")

    choice("round_mode", ROUND_MODES)
    choice("lt_unit", LT_UNITS)
    choice("blend_weight_mode", BLEND_WEIGHT_MODES)
    choice("carryover", CARRYOVER_MODES)
    if data["preset"] is not None and (not isinstance(data["preset"], str) or data["preset"] not in PRESETS):
        problems.append(f"preset: {data['preset']!r} is not one of {', '.join(PRESETS)}")
    if data["anchor_policy"] is not None and (not isinstance(data["anchor_policy"], str)
                                              or data["anchor_policy"] not in ANCHOR_POLICIES):
        problems.append(f"anchor_policy: {params.anchor_policy!r} is not one of {', '.join(ANCHOR_POLICIES)}")
    for name, (low, high) in INT_BOUNDS.items():
        value = data[name]
        if value is None and name in OPTIONAL:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
            problems.append(f"{name}: {value!r} must be a whole number from {low} to {high}")
        else:
            data[name] = int(value)
    if data["cutover_date"] is not None and not _is_cutover(str(data["cutover_date"])):
        problems.append(f"cutover_date: {data['cutover_date']!r} must be a date YYYY-MM-DD or a month YYYY-MM")
    for name, (low, high) in FLOAT_BOUNDS.items():
        value = data[name]
        if value is None and name in OPTIONAL:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            problems.append(f"{name}: {value!r} must be a number from {low:g} to {high:g}")
        elif not math.isfinite(value):
            problems.append(f"{name}: {value!r} is not a finite number (use {low:g} to {high:g})")
        elif not low <= value <= high:
            problems.append(f"{name}: {value!r} must be from {low:g} to {high:g}")
        else:
            data[name] = float(value)
    if not isinstance(data["apply_adjusted"], bool):
        problems.append(f"apply_adjusted: {data['apply_adjusted']!r} must be true or false")
    if problems:
        raise ParameterError(problems)
    return PlanningParameters(**data)
