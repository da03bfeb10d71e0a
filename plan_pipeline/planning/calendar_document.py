"""``planning_calendar.json``: ONE typed model (pydantic) of the document, used by both readers -
the input validation (every problem, with its rule) and the planner's calendar lookup (the first
problem raises :class:`~plan_pipeline.planning.calendar.CalendarError`).

Every field rule raises a pydantic error whose *type* is the input rule id (``calendar_schema``,
``calendar_date``, ``calendar_weight``, ``value_too_large``) and whose message is the text the input
validation prints; :func:`document_problems` turns them into ``(json path, rule, message)``.
Rules between fields and rows (date order, duplicates, planning order, gaps) are the input
validation's (``plan_pipeline.inputs.validation``); the planner follows the reference there.

One difference, on purpose: the planner (like the reference, spec §3.2) clamps a negative week
weight to 0, so it validates with ``context=REFERENCE_WEIGHTS``; the input validation refuses it.
"""
from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from plan_pipeline.planning.vocabulary import MAX_PLAN_QUANTITY

#: The largest magnitude of a calendar week ``sequence`` (any real numbering, even ``YYYYWW``,
#: fits; it keeps sequence arithmetic far inside int64).
MAX_CALENDAR_SEQUENCE = 1_000_000_000
#: Validation context of the planner: negative week weights are clamped to 0, not refused.
REFERENCE_WEIGHTS = {"negative_weights": "clamp"}
ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

# ------------------------------------------------------------------------------------ message text
_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def quote(value: Any) -> str:
    """Quote a cell / JSON value for a message (control characters escaped: one line)."""
    if isinstance(value, str):
        return "'" + value.translate(_CONTROL) + "'"
    return json.dumps(value)


def type_name(value: Any) -> str:
    """The JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def found(value: Any) -> str:
    """``found <type> <value>`` for a JSON value of the wrong type (containers: type only)."""
    name = type_name(value)
    if value is None or isinstance(value, (list, dict)):
        return f"found {name}"
    return f"found {name} {quote(value)}"


def bound_text(limit: float) -> str:
    """``1,000,000,000,000`` (exact and readable)."""
    return f"{limit:,.0f}"


# ------------------------------------------------------------------------------------ field rules
def _error(rule: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(rule, "{message}", {"message": message})


def calendar_text(value: Any) -> str:
    """A required, non-empty string (``period``, ``week_code``)."""
    if not isinstance(value, str):
        raise _error("calendar_schema", f"must be a string, {found(value)}")
    if not value.strip():
        raise _error("calendar_schema", "must not be empty")
    return value


def calendar_label(value: Any) -> str:
    """An optional string field of the document (``calendar_type``, ``week_unit``)."""
    if not isinstance(value, str):
        raise _error("calendar_schema", f"must be a string, {found(value)}")
    return value


def calendar_date(value: Any) -> date:
    """A real date ``YYYY-MM-DD``."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise _error("calendar_schema", f"must be a date string YYYY-MM-DD, {found(value)}")
    if not ISO_DATE_RE.match(value):
        raise _error("calendar_date", f"value {quote(value)} is not a date (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _error("calendar_date", f"value {quote(value)} is not a real date (expected YYYY-MM-DD)") from None


def calendar_sequence(value: Any) -> int:
    """A whole number (JSON integer) up to :data:`MAX_CALENDAR_SEQUENCE` in magnitude."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _error("calendar_schema", f"must be an integer, {found(value)}")
    if abs(value) > MAX_CALENDAR_SEQUENCE:
        raise _error("value_too_large", f"value {value} exceeds {bound_text(MAX_CALENDAR_SEQUENCE)} in magnitude "
                     f"(the largest week sequence the planner accepts)")
    return value


def calendar_weight(value: Any, info: ValidationInfo) -> float:
    """A finite, non-negative number up to :data:`MAX_PLAN_QUANTITY` (the planner clamps negatives)."""
    clamp = (info.context or {}).get("negative_weights") == "clamp"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            ok = math.isfinite(float(value)) and (value >= 0 or clamp)
        except OverflowError:
            ok = False
    if not ok:
        raise _error("calendar_weight", f"value {quote(value)} must be a non-negative number")
    if value > MAX_PLAN_QUANTITY:
        raise _error("value_too_large", f"value {quote(value)} exceeds {bound_text(MAX_PLAN_QUANTITY)} "
                     f"(the largest week weight the planner accepts)")
    return float(value)


def json_list(value: Any) -> list:
    if not isinstance(value, list):
        raise _error("calendar_schema", f"must be a list, found {type_name(value)}")
    return value


def json_object(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise _error("calendar_schema", f"must be an object, found {type_name(value)}")
    return value


_Text = Annotated[str, BeforeValidator(calendar_text)]
_Label = Annotated[str, BeforeValidator(calendar_label)]
_Date = Annotated[date, BeforeValidator(calendar_date)]
_Sequence = Annotated[int, BeforeValidator(calendar_sequence)]
_Weight = Annotated[float, BeforeValidator(calendar_weight)]
_Object = Annotated[dict | None, BeforeValidator(json_object)]
_AnyList = Annotated[list, BeforeValidator(json_list)]


class _Part(BaseModel):
    """A JSON object of the document (unknown keys are ignored, as by the reference)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise _error("calendar_schema", f"must be an object, found {type_name(value)}")
        return value


# ------------------------------------------------------------------------------------ the model
class CalendarWeek(_Part):
    """One week (or week fragment) of a period."""

    week_code: _Text
    sequence: _Sequence
    start_date: _Date
    end_date: _Date
    weight: _Weight = 1.0
    attributes: _Object = None


class CalendarPeriodHeader(_Part):
    """A period's own fields; its weeks are checked one by one (:class:`CalendarWeek`)."""

    period: _Text
    start_date: _Date
    end_date: _Date
    weeks: _AnyList = []


class CalendarPeriod(CalendarPeriodHeader):
    weeks: Annotated[list[CalendarWeek], BeforeValidator(json_list)] = []


class CalendarDocumentHeader(_Part):
    """The document's own fields; its periods are checked one by one (:class:`CalendarPeriod`)."""

    calendar_type: _Label = "custom"
    week_unit: _Label = "day"
    periods: _AnyList = []
    planning_params: _Object = None


class CalendarDocument(CalendarDocumentHeader):
    """The whole ``planning_calendar.json`` document."""

    periods: Annotated[list[CalendarPeriod], BeforeValidator(json_list)] = []


# ------------------------------------------------------------------------------------ problems
def json_path(base: str, loc: tuple) -> str:
    """``periods[1].weeks[0].sequence`` from a pydantic error location under ``base``."""
    path = base
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "$"


def document_problems(exc: ValidationError, base: str = "") -> list[tuple[str, str, str]]:
    """``(json path, rule, message)`` per error, in document order."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "missing":
            problems.append((json_path(base, loc), "calendar_schema", f"required field '{loc[-1]}' is missing"))
        elif "message" in (error.get("ctx") or {}):
            problems.append((json_path(base, loc), error["type"], error["ctx"]["message"]))
        else:  # not one of our rules (should not happen): pydantic's own words
            problems.append((json_path(base, loc), "calendar_schema", error["msg"]))
    return problems


def check_part(model: type[_Part], value: Any, base: str, context: dict | None = None):
    """Validate one part of the document: ``(model instance or None, problems, values)``.

    ``values`` holds every field that is valid on its own (parsed), also when another field of
    the part is not, so the cross-row checks can go on with what is valid.
    """
    try:
        return model.model_validate(value, context=context), [], None
    except ValidationError as exc:
        problems = document_problems(exc, base)
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    values: dict[str, Any] = {}
    if isinstance(value, dict):
        for name, info in model.model_fields.items():
            if name in bad:
                continue
            if name not in value:
                values[name] = info.default
                continue
            parse: Any = next((m.func for m in info.metadata if isinstance(m, BeforeValidator)), None)
            # a valid weight is a number already (its rule needs the validation context)
            values[name] = value[name] if parse is None or parse is calendar_weight else parse(value[name])
    return None, problems, values
