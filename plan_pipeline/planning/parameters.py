"""Validation and normalisation of planning parameters (one error message per broken rule)."""
from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date

from plan_pipeline.planning.types import (
    ANCHOR_POLICIES,
    BLEND_WEIGHT_MODES,
    CARRYOVER_MODES,
    LT_UNITS,
    PRESETS,
    ROUND_MODES,
    PlanningParameters,
)


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
        if data[name] not in allowed:
            problems.append(f"{name}: {data[name]!r} is not one of {', '.join(allowed)}")

    choice("round_mode", ROUND_MODES)
    choice("lt_unit", LT_UNITS)
    choice("blend_weight_mode", BLEND_WEIGHT_MODES)
    choice("carryover", CARRYOVER_MODES)
    if data["preset"] is not None and data["preset"] not in PRESETS:
        problems.append(f"preset: {data['preset']!r} is not one of {', '.join(PRESETS)}")
    if data["anchor_policy"] is not None and data["anchor_policy"] not in ANCHOR_POLICIES:
        problems.append(f"anchor_policy: {params.anchor_policy!r} is not one of {', '.join(ANCHOR_POLICIES)}")
    for name in ("week_days", "fallback_weeks"):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{name}: {value!r} must be an integer >= 1")
    window = data["recon_window_days"]
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
        problems.append(f"recon_window_days: {window!r} must be an integer >= 0")
    if data["cutover_date"] is not None and not _is_cutover(str(data["cutover_date"])):
        problems.append(f"cutover_date: {data['cutover_date']!r} must be a date YYYY-MM-DD or a month YYYY-MM")
    for name in ("blend_split_next", "carryover_split"):
        value = data[name]
        if value is not None and not (0.0 <= float(value) <= 1.0):
            problems.append(f"{name}: {value!r} must be between 0 and 1")
    for name in ("max_adjust_ratio", "tol_abs", "tol_rel"):
        value = data[name]
        if value is not None and float(value) < 0:
            problems.append(f"{name}: {value!r} must be >= 0")
    if not isinstance(data["apply_adjusted"], bool):
        problems.append(f"apply_adjusted: {data['apply_adjusted']!r} must be true or false")
    if problems:
        raise ParameterError(problems)
    return PlanningParameters(**data)
