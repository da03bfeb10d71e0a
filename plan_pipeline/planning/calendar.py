"""Planning calendar: validation, lookup tables and week/period helpers (spec §3).

The calendar document is the parsed ``planning_calendar.json`` (a ``dict``) or ``None``.
Without a calendar every period is split into equal-ratio fallback weeks
``"{period}-W1" … "{period}-W{k}"``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from plan_pipeline.planning.calendar_document import REFERENCE_WEIGHTS, CalendarDocument, document_problems

__all__ = [
    "FALLBACK_MODE",
    "CalendarError",
    "CalendarLookup",
    "WeekEntry",
    "build_calendar",
    "effective_fallback_weeks",
    "infer_weeks",
    "map_due_to_week",
    "order_weeks",
    "period_of_week",
    "week_distribution",
    "week_sequence_of",
]

FALLBACK_MODE = "fallback_weeks"
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_M_INDEX_RE = re.compile(r"^M(\d+)$", re.IGNORECASE)
_SEQ_WK_RE = re.compile(r"Wk(\d+)$")
_SEQ_W_RE = re.compile(r"W(\d+)$")


class CalendarError(ValueError):
    """A structurally invalid calendar document; the message names the JSON path."""


@dataclass(frozen=True)
class WeekEntry:
    week_code: str
    ratio: float
    weight: float
    sequence: int


@dataclass
class CalendarLookup:
    mode: str
    fallback_weeks: int
    periods: dict[str, list[WeekEntry]] = field(default_factory=dict)
    week_order: list[str] = field(default_factory=list)
    week_ranges: list[tuple[date, date, str]] = field(default_factory=list)
    week_to_period: dict[str, str] = field(default_factory=dict)
    period_last_week: dict[str, str] = field(default_factory=dict)
    week_sequence: dict[str, int] = field(default_factory=dict)
    has_calendar: bool = False  # True when built from a document (even one without weeks)


# --------------------------------------------------------------------------- validation


def _parse_document(document: Any) -> CalendarDocument:
    """The typed document (:mod:`~plan_pipeline.planning.calendar_document`, the one model of
    ``planning_calendar.json``); its first problem raises :class:`CalendarError` naming the JSON path."""
    try:
        return CalendarDocument.model_validate(document, context=REFERENCE_WEIGHTS)
    except ValidationError as exc:
        path, _rule, message = document_problems(exc)[0]
        raise CalendarError(f"{path}: {message}") from None


# --------------------------------------------------------------------------- lookup


def build_calendar(document: dict | None, fallback_weeks: int = 4) -> CalendarLookup:
    """Validate ``document`` and build the lookup tables (§3.2).

    ``None`` gives an empty lookup in ``fallback_weeks`` mode.
    Raises :class:`CalendarError` for a structurally invalid document.
    """
    if document is None:
        return CalendarLookup(mode=FALLBACK_MODE, fallback_weeks=fallback_weeks, has_calendar=False)
    doc = _parse_document(document)
    lookup = CalendarLookup(mode=doc.calendar_type, fallback_weeks=fallback_weeks, has_calendar=True)
    seen: set[str] = set()
    for period in doc.periods:
        name = period.period
        if not period.weeks:
            continue
        weeks = sorted(period.weeks, key=lambda w: (w.sequence, w.start_date, w.week_code))
        weights = [max(0.0, w.weight) for w in weeks]
        total = 0.0
        for x in weights:
            total += x
        n = len(weeks)
        entries = []
        for w, wt in zip(weeks, weights):
            ratio = wt / total if total > 0 else 1.0 / n
            entries.append(WeekEntry(w.week_code, ratio, wt, w.sequence))
            code = w.week_code
            if code not in seen:
                seen.add(code)
                lookup.week_order.append(code)
            lookup.week_ranges.append((w.start_date, w.end_date, code))
            lookup.week_to_period[code] = name
            lookup.week_sequence.setdefault(code, w.sequence)
        lookup.periods[name] = entries
        lookup.period_last_week[name] = weeks[-1].week_code
    return lookup


def effective_fallback_weeks(params: Any, has_calendar: bool) -> int:
    """Fallback weeks a stage sees under the reference driver (§5.1).

    The driver passes ``--weeks max(1, weeks)`` only when the input folder has no calendar;
    with a calendar every stage keeps its own default of 4.
    """
    if has_calendar:
        return 4
    return max(1, int(params.fallback_weeks))


def infer_weeks(period: str, fallback_weeks: int) -> int:
    """Number of fallback weeks of a period (§3.3)."""
    base = max(1, int(fallback_weeks or 1))
    if base != 4:
        return base
    m = _MONTH_RE.match(period or "")
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            first = date(year, month, 1)
            nxt = date(year + (month == 12), month % 12 + 1, 1)
            iso_weeks = set()
            for ordinal in range(first.toordinal(), nxt.toordinal()):
                y, w, _ = date.fromordinal(ordinal).isocalendar()
                iso_weeks.add((y, w))
            count = len(iso_weeks)
            return min(5, count) if count > 4 else 4
    m = _M_INDEX_RE.match(period or "")
    if m:
        idx = int(m.group(1))
        return 5 if idx > 0 and idx % 3 == 0 else 4
    return base


def week_distribution(lookup: CalendarLookup, period: str) -> list[WeekEntry]:
    """Week entries of a period: the calendar's, else equal-ratio fallback weeks (§3.3)."""
    entries = lookup.periods.get(period)
    if entries:
        return list(entries)
    k = infer_weeks(period, lookup.fallback_weeks)
    return [WeekEntry(f"{period}-W{i}", 1.0 / k, 0.0, i) for i in range(1, k + 1)]


def order_weeks(lookup: CalendarLookup, codes: Iterable[str]) -> list[str]:
    """Distinct codes in planning order (§3.4)."""
    uniq: list[str] = []
    seen: set[str] = set()
    for c in codes:
        if not c or c in seen:
            continue
        seen.add(c)
        uniq.append(c)
    if not lookup.has_calendar:
        return sorted(uniq)
    known = [c for c in lookup.week_order if c in seen]
    known_set = set(known)
    return known + [c for c in uniq if c not in known_set]


def _is_month_like(s: str) -> bool:
    return len(s) == 7 and s.count("-") == 1


def map_due_to_week(lookup: CalendarLookup, due: str) -> str | None:
    """Map an open-PO due (ISO date, week code or ``YYYY-MM``) to a week code (§3.5)."""
    if not due:
        return None
    due = str(due)
    if lookup.has_calendar:
        if due in lookup.week_to_period:
            return due
        try:
            d = date.fromisoformat(due)
        except ValueError:
            d = None
        if d is not None:
            for start, end, code in lookup.week_ranges:
                if start <= d <= end:
                    return code
        if _is_month_like(due) and due in lookup.period_last_week:
            return lookup.period_last_week[due]
    if _is_month_like(due):
        return f"{due}-W{max(1, int(lookup.fallback_weeks))}"
    parts = due.split("-")
    if len(parts) != 3:
        return None
    y, m, d_s = parts
    try:
        day = int(d_s)
    except ValueError:
        return None
    idx = 1 if day <= 7 else 2 if day <= 14 else 3 if day <= 21 else 4
    return f"{y}-{m}-W{idx}"


def period_of_week(lookup: CalendarLookup, code: str) -> str:
    """Period (``YYYY-MM``) of a week code (§3.6)."""
    if not code:
        return ""
    p = lookup.week_to_period.get(code)
    if p is not None:
        return p
    if len(code) >= 7 and code[4] == "-":
        if code[5] in "Ww" and len(code) >= 8:
            try:
                thursday = date.fromisocalendar(int(code[:4]), int(code[6:8]), 4)
                return f"{thursday.year:04d}-{thursday.month:02d}"
            except ValueError:
                pass
        return code[:7]
    return code


def week_sequence_of(lookup: CalendarLookup, code: str, position: int = 0) -> int:
    """Sequence number of a week (§11 step 2): calendar sequence, else trailing number, else position."""
    seq = lookup.week_sequence.get(code)
    if seq is not None:
        return seq
    m = _SEQ_WK_RE.search(code or "")
    if m:
        return int(m.group(1))
    m = _SEQ_W_RE.search(code or "")
    if m:
        return int(m.group(1))
    return position
