"""Validation of a planning input folder (reference format) with precise, line-level messages.

The reference pipeline has no schema validation: it silently turns bad cells into defaults,
drops rows and ignores unknown items. This module checks a folder *before* it is imported and
reports every problem at once (it never stops at the first one).

Issue format
------------
Every :class:`InputIssue` renders on one line::

    <file>[ line <row>][, column '<column>']: <message> [<rule>]

* ``file`` is the file name inside the input folder (``demand_family.csv``).
* ``row`` is the 1-based physical line number in the file: the header is line 1 and the first
  data row line 2 (blank lines and multi-line quoted cells are counted as they appear in the
  file). Issues about a whole column (missing / unknown column) carry the header's line.
  File-level issues have no row.
* ``column`` is the CSV column. For ``planning_calendar.json`` it is a JSON path such as
  ``periods[2].weeks[0].start_date`` and is rendered ``, at <path>`` instead of
  ``, column '<column>'``; a JSON syntax error carries the JSON line number as ``row``.
* ``rule`` is the identifier of the rule (see :data:`RULES`), so messages can be grepped.
* Cell values are quoted (``'-5'``) with control characters escaped (``'0.7\\n'``), so an
  issue is always one line. Rows with the wrong number of fields are reported once
  (``row_width``) and left out of the cell checks.

Examples::

    demand_family.csv line 7, column 'demand': value '-5' must be a non-negative number [negative_number]
    capacity.csv: required file is missing [missing_file]
    planning_calendar.json, at periods[1].weeks[0].start_date: value '2025-02-30' is not a real date (expected YYYY-MM-DD) [calendar_date]

Each (file, rule, severity) group lists at most :data:`MAX_PER_RULE` issues; when there are more,
one closing issue without row/column says ``... and N more issues of this rule``. Totals per
group (listed or not) are in :attr:`ValidationReport.totals`.

Severity
--------
*Errors* make an input set unusable (:func:`load_validated_input_dir` raises
:class:`InputValidationError`). *Warnings* describe what the reference tolerates silently
(defaults, summed duplicates, ignored rows) and do not block an import. :data:`RULES` is the
catalogue of rule identifiers with their severity and meaning.

Cross-file checks (planned items, horizon, capacity vs demand, …) leave out a table whose key
columns are missing, so one structural error does not cascade into a flood of warnings.
"Planned items" are the SKUs of ``mix_share.csv`` for families with demand, the pseudo-SKUs of
families without mix rows, and everything reachable from them through ``bom.csv``. The planning
horizon is the set of demand periods: with a calendar their weeks (an open PO due is mapped to a
week like the reference does, pipeline spec §3.5), without one their months.

Decisions on empty numeric cells: an empty ``demand``, ``capacity``, ``share``, ``qty``
(inventory, open_po, bom), ``cost`` or ``score`` is an error; an empty ``lt``/``lot``/``moq`` in
``item.csv`` takes the reference default (0, 1, 0) silently. Numbers are parsed like the loader
(``pandas.to_numeric``); ``nan``/``inf`` are rejected.

Every file is read through :func:`plan_pipeline.inputs.loader.read_input_text` (UTF-8, a leading
byte order mark dropped), like the loader, so validation and planning see the same text.

What the planner cannot plan correctly is refused here, so an input set that validates plans
(``plan_pipeline_tests/reliability/test_bad_inputs.py``): magnitudes are bounded
(:data:`~plan_pipeline.planning.vocabulary.MAX_PLAN_QUANTITY` for every quantity and for the sums the
planner forms, :data:`MAX_LEAD_TIME`, :data:`MAX_CALENDAR_SEQUENCE`), lot sizes are whole, a SKU
has one family, and the calendar's planning order follows its dates without gaps or overlaps.
``docs/inputs.md`` explains every rule and bound.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic_core import PydanticCustomError

from plan_pipeline.inputs.loader import CALENDAR_FILE, REQUIRED_FILES, load_input_dir, read_input_text
from plan_pipeline.planning.calendar_document import (
    ISO_DATE_RE as _ISO_DATE_RE,
)
from plan_pipeline.planning.calendar_document import (
    MAX_CALENDAR_SEQUENCE,
    CalendarDocumentHeader,
    CalendarPeriodHeader,
    CalendarWeek,
    calendar_date,
    check_part,
)
from plan_pipeline.planning.calendar_document import (
    bound_text as _bound_text,
)
from plan_pipeline.planning.calendar_document import (
    quote as _q,
)
from plan_pipeline.planning.calendar_document import (
    type_name as _type_name,
)
from plan_pipeline.planning.types import INPUT_COLUMNS, PlanningInputs
from plan_pipeline.planning.vocabulary import MAX_PLAN_QUANTITY

__all__ = [
    "ERROR",
    "MAX_CALENDAR_SEQUENCE",
    "MAX_LEAD_TIME",
    "MAX_PER_RULE",
    "RULES",
    "WARNING",
    "InputIssue",
    "InputValidationError",
    "ValidationReport",
    "load_validated_input_dir",
    "validate_input_dir",
]

ERROR = "error"
WARNING = "warning"
MAX_PER_RULE = 20

#: The largest lead time (``item.csv`` column ``lt``, in days or weeks per ``--lt-unit``): ten
#: years of days. Every quantity column (demand, capacity, share, qty, lot, moq, cost, score) and
#: every calendar weight is bounded by :data:`~plan_pipeline.planning.vocabulary.MAX_PLAN_QUANTITY`.
MAX_LEAD_TIME = 3650

#: rule id -> (severity, meaning). Every issue's ``rule`` is one of these keys.
RULES: dict[str, tuple[str, str]] = {
    # --- errors: file and table structure
    "missing_file": (ERROR, "a required file (demand_family.csv, capacity.csv, mix_share.csv) is missing"),
    "file_format": (ERROR, "a file cannot be read as UTF-8 CSV, or has no header row"),
    "missing_column": (ERROR, "a column of INPUT_COLUMNS is missing from a present file"),
    "duplicate_column": (ERROR, "a column name appears twice in the header"),
    "row_width": (ERROR, "a row has more or fewer fields than the header"),
    # --- errors: cells
    "empty_key": (ERROR, "empty key cell (family, period, sku, item, parent, child, workcenter)"),
    "missing_number": (ERROR, "empty cell where a number is required"),
    "not_a_number": (ERROR, "a quantity that is not a finite number"),
    "negative_number": (ERROR, "a negative quantity where it must be non-negative"),
    "non_positive_number": (ERROR, "a BOM quantity that is not > 0"),
    "value_too_large": (ERROR, "a quantity above MAX_PLAN_QUANTITY (1e12), alone or as the sum the planner forms "
                               "(demand per family and period, capacity per period, stock and open POs per item, "
                               "a component's requirement through the BOM); a lead time above MAX_LEAD_TIME; "
                               "a calendar weight or sequence beyond its bound"),
    "fractional_lot": (ERROR, "a lot size of 1 or more that is not a whole number"),
    "bad_period": (ERROR, "a period that is neither YYYY-MM (month 01-12) nor a calendar period"),
    "bad_due": (ERROR, "an open PO due that is not a real ISO date, a month YYYY-MM or a calendar week code"),
    "duplicate_key": (ERROR, "duplicate item / (family, sku) / (parent, child) / period rows"),
    # --- errors: cross-row / cross-file
    "bom_self_loop": (ERROR, "a BOM row whose parent is its own child"),
    "bom_cycle": (ERROR, "a cycle in the BOM graph (path reported)"),
    "unknown_family": (ERROR, "mix shares for a family that has no demand rows"),
    "zero_shares": (ERROR, "all mix shares of a family with demand are 0 (its split is undefined)"),
    "sku_in_several_families": (ERROR, "a SKU listed under several families, or named like the pseudo-SKU of a "
                                       "family without mix rows"),
    # --- errors: calendar
    "calendar_json": (ERROR, "planning_calendar.json is not valid JSON (or nested too deeply, or a number too long) "
                             "or not a JSON object"),
    "calendar_schema": (ERROR, "a required calendar field is missing or has the wrong type"),
    "calendar_date": (ERROR, "a calendar date is not a real YYYY-MM-DD date"),
    "calendar_date_order": (ERROR, "a calendar start_date after its end_date"),
    "calendar_weight": (ERROR, "a calendar week weight that is not a non-negative number"),
    "calendar_duplicate": (ERROR, "a period listed twice, or a week_code listed twice in one period"),
    "calendar_sequence": (ERROR, "periods or weeks whose planning order (period list order, then week sequence) "
                                 "runs against their dates, or a week shared inconsistently by two periods"),
    "calendar_gap": (ERROR, "days between two consecutive periods, or two consecutive weeks, that no period/week covers"),
    "calendar_overlap": (ERROR, "two consecutive periods, or two consecutive different weeks, whose dates overlap"),
    "calendar_missing_period": (ERROR, "a demand period without calendar weeks that starts before the calendar's "
                                       "last week ends (its fallback weeks would be planned after every calendar week)"),
    # --- warnings
    "unknown_column": (WARNING, "a column the pipeline does not read (ignored)"),
    "key_whitespace": (WARNING, "a key with leading/trailing spaces (keys are compared exactly)"),
    "no_rows": (WARNING, "demand_family.csv has a header but no data rows"),
    "duplicate_summed": (WARNING, "duplicate demand (family, period) or capacity (workcenter, period) rows, summed"),
    "due_outside_horizon": (WARNING, "an open PO whose due maps outside the planning horizon (ignored)"),
    "unknown_item": (WARNING, "open PO / inventory / BOM parent for an item that is never planned"),
    "lot_below_one": (WARNING, "a lot size below 1 (treated as 1)"),
    "item_defaults": (WARNING, "a planned SKU or component missing from item.csv (lt 0, lot 1, moq 0)"),
    "family_without_mix": (WARNING, "a family with demand but no mix rows (planned as a pseudo-SKU)"),
    "capacity_without_demand": (WARNING, "a capacity period without demand (not planned)"),
    "demand_without_capacity": (WARNING, "a demand period without capacity (capacity 0)"),
    "negative_inventory": (WARNING, "a negative inventory quantity (used as is)"),
    "period_not_in_calendar": (WARNING, "a demand period the calendar gives no weeks, after the calendar's last week "
                                        "(planned after it, with fallback weeks)"),
    "calendar_empty": (WARNING, "a calendar without periods, or a period without weeks (fallback weeks)"),
    "calendar_week_outside_period": (WARNING, "a week fragment whose dates are not inside its period"),
    "calendar_zero_weights": (WARNING, "all week weights of a period are 0 (equal shares)"),
}

#: why a SKU may have one family only
ONE_FAMILY = ("a SKU belongs to one family (the detail plan holds one row per week, period and SKU); "
              "list it under one family only")

_MONTH_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])\Z")  # use with .match (anchored at start)

#: key columns per table (empty cells are errors)
_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "demand_family": ("family", "period"),
    "capacity": ("workcenter", "period"),
    "mix_share": ("family", "sku"),
    "item": ("item",),
    "inventory": ("item",),
    "open_po": ("item",),
    "bom": ("parent", "child"),
    "period_cost": ("period",),
    "period_score": ("period",),
}


@dataclass(frozen=True)
class _NumberRule:
    required: bool  # empty cell -> missing_number error (else default, no issue)
    positive: bool = False  # > 0 (bom qty) instead of >= 0
    negative_warning: bool = False  # negative -> negative_inventory warning instead of an error
    limit: float = MAX_PLAN_QUANTITY  # |value| above it -> value_too_large
    what: str = "quantity"  # how the bound is named in the message


_NUMBER_COLUMNS: dict[str, dict[str, _NumberRule]] = {
    "demand_family": {"demand": _NumberRule(True)},
    "capacity": {"capacity": _NumberRule(True)},
    "mix_share": {"share": _NumberRule(True)},
    "item": {
        "lt": _NumberRule(False, limit=MAX_LEAD_TIME, what="lead time"),
        "lot": _NumberRule(False),
        "moq": _NumberRule(False),
    },
    "inventory": {"qty": _NumberRule(True, negative_warning=True)},
    "open_po": {"qty": _NumberRule(True)},
    "bom": {"qty": _NumberRule(True, positive=True)},
    "period_cost": {"cost": _NumberRule(True)},
    "period_score": {"score": _NumberRule(True)},
}

_PERIOD_TABLES = ("demand_family", "capacity", "period_cost", "period_score")
_DUPLICATE_ERRORS: dict[str, tuple[str, ...]] = {
    "item": ("item",),
    "mix_share": ("family", "sku"),
    "bom": ("parent", "child"),
    "period_cost": ("period",),
    "period_score": ("period",),
}
_DUPLICATE_SUMMED: dict[str, tuple[str, ...]] = {
    "demand_family": ("family", "period"),
    "capacity": ("workcenter", "period"),
}


# ---------------------------------------------------------------------------------------------
# public types


@dataclass(frozen=True)
class InputIssue:
    """One finding. ``row`` is the 1-based line in the file (header = 1) or ``None``."""

    file: str
    row: int | None
    column: str | None
    rule: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" line {self.row}"
        if self.column is not None:
            if self.file.endswith(".json"):
                where += f", at {self.column}"
            else:
                where += f", column '{self.column}'"
        return f"{where}: {self.message} [{self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass
class ValidationReport:
    """Result of :func:`validate_input_dir`: errors and warnings in detection order.

    ``totals`` maps ``(severity, file, rule)`` to the number of issues found, including the
    ones not listed because of the per-rule cap.
    """

    path: str
    errors: list[InputIssue] = field(default_factory=list)
    warnings: list[InputIssue] = field(default_factory=list)
    totals: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def issues(self) -> list[InputIssue]:
        return [*self.errors, *self.warnings]

    @property
    def error_count(self) -> int:
        return sum(n for (sev, _, _), n in self.totals.items() if sev == ERROR)

    @property
    def warning_count(self) -> int:
        return sum(n for (sev, _, _), n in self.totals.items() if sev == WARNING)

    def rules(self, severity: str | None = None) -> set[str]:
        """Rule ids present (optionally of one severity)."""
        return {i.rule for i in self.issues if severity is None or i.severity == severity}

    def to_records(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.issues]

    def format(self) -> str:
        """Multi-line text: a summary line, then all errors, then all warnings."""
        lines = [
            f"input folder {self.path}: {self.error_count} error(s), {self.warning_count} warning(s)"
        ]
        if self.errors:
            lines.append("errors:")
            lines.extend(f"  {i}" for i in self.errors)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  {i}" for i in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class InputValidationError(Exception):
    """Raised by :func:`load_validated_input_dir` when the folder has errors."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.format())


# ---------------------------------------------------------------------------------------------
# collection with a per-rule cap


class _Collector:
    def __init__(self, cap: int = MAX_PER_RULE):
        self.cap = cap
        self.groups: dict[tuple[str, str, str], list[InputIssue]] = {}
        self.totals: dict[tuple[str, str, str], int] = {}

    def add(self, file: str, row: int | None, column: str | None, rule: str, message: str) -> None:
        severity = RULES[rule][0]
        key = (severity, file, rule)
        listed = self.groups.setdefault(key, [])
        self.totals[key] = self.totals.get(key, 0) + 1
        if len(listed) < self.cap:
            listed.append(InputIssue(file, row, column, rule, message, severity))

    def add_rows(
        self,
        file: str,
        rule: str,
        column: str | None,
        lines: Iterable[int],
        messages: Iterable[str],
        count: int,
    ) -> None:
        """Add ``count`` row issues; only the first ones (up to the cap) are materialised."""
        if count <= 0:
            return
        severity = RULES[rule][0]
        key = (severity, file, rule)
        listed = self.groups.setdefault(key, [])
        self.totals[key] = self.totals.get(key, 0) + count
        room = self.cap - len(listed)
        for k, (line, msg) in enumerate(zip(lines, messages)):
            if k >= room:
                break
            listed.append(InputIssue(file, int(line), column, rule, msg, severity))

    def report(self, path: str) -> ValidationReport:
        rep = ValidationReport(path=path, totals=dict(self.totals))
        for key, listed in self.groups.items():
            severity, file, rule = key
            target = rep.errors if severity == ERROR else rep.warnings
            target.extend(listed)
            more = self.totals[key] - len(listed)
            if more > 0:
                target.append(
                    InputIssue(file, None, None, rule, f"... and {more} more issues of this rule", severity)
                )
        return rep


# ---------------------------------------------------------------------------------------------
# CSV reading


@dataclass
class _Table:
    name: str
    file: str
    header_line: int
    present: set[str]
    df: pd.DataFrame  # known columns that are present (str cells) + "line"; well-formed rows only


def _read_table(folder: Path, name: str, out: _Collector) -> _Table | None:
    file = f"{name}.csv"
    path = folder / file
    if not path.is_file():
        if name in REQUIRED_FILES:
            out.add(file, None, None, "missing_file", "required file is missing")
        return None
    try:
        text = read_input_text(path)
    except UnicodeDecodeError as exc:
        out.add(file, None, None, "file_format", f"file is not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return None
    expected = INPUT_COLUMNS[name]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        if '"' not in text:
            # no quoting => one record per physical line (blank lines yield []), line = index + 1
            rows = list(reader)
            nonblank = [i for i, r in enumerate(rows) if r]
            if nonblank:
                header, header_line = rows[nonblank[0]], nonblank[0] + 1
                if len(nonblank) == len(rows):
                    records = rows[1:]
                    lines = list(range(2, len(rows) + 1))
                else:
                    records = [rows[i] for i in nonblank[1:]]
                    lines = [i + 1 for i in nonblank[1:]]
        else:
            prev = 0
            for rec in reader:
                start = prev + 1
                prev = reader.line_num
                if not rec:
                    continue
                if header is None:
                    header, header_line = rec, start
                    continue
                records.append(rec)
                lines.append(start)
    except csv.Error as exc:
        out.add(file, reader.line_num, None, "file_format", f"CSV syntax error: {exc}")
        return None
    if header is None:
        out.add(
            file, None, None, "file_format",
            f"file is empty: a header row with the columns {', '.join(expected)} is required",
        )
        return None

    header_text = ", ".join(_q(c) for c in header)
    first_index: dict[str, int] = {}
    for idx, col in enumerate(header):
        if col in first_index:
            out.add(file, header_line, col, "duplicate_column", f"column '{col}' appears more than once in the header")
        else:
            first_index[col] = idx
    for col in expected:
        if col not in first_index:
            out.add(file, header_line, col, "missing_column", f"required column '{col}' is missing (header: {header_text})")
    for col in first_index:
        if col not in expected:
            out.add(
                file, header_line, col, "unknown_column",
                f"unknown column '{col}' is ignored (expected columns: {', '.join(expected)})",
            )

    width = len(header)
    line_arr = np.asarray(lines, dtype=np.int64)
    lens = np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records))
    bad = np.flatnonzero(lens != width)
    if len(bad):
        out.add_rows(
            file, "row_width", None, line_arr[bad],
            (f"row has {lens[i]} field(s) but the header has {width}" for i in bad), len(bad),
        )
        good = lens == width
        records = [r for r, g in zip(records, good) if g]
        line_arr = line_arr[good]

    present = {c for c in expected if c in first_index}
    data: dict[str, Any] = {}
    if records:
        columns = list(zip(*records))
        for col in expected:
            if col in present:
                data[col] = np.asarray(columns[first_index[col]], dtype=object)
    else:
        for col in expected:
            if col in present:
                data[col] = np.asarray([], dtype=object)
    data["line"] = line_arr
    return _Table(name, file, header_line, present, pd.DataFrame(data))


# ---------------------------------------------------------------------------------------------
# cell checks

_SPACE_RE = re.compile(r"\s")


def _strip(s: pd.Series) -> pd.Series:
    """``s.str.strip()``, skipped when no cell contains whitespace (the common, large case)."""
    if _SPACE_RE.search("".join(s.tolist())) is None:
        return s
    return s.str.strip()


def _isin(s: pd.Series, values: set[str]) -> np.ndarray:
    """Membership of each cell in a Python set (faster than ``Series.isin`` for sets)."""
    return np.fromiter((x in values for x in s.tolist()), dtype=bool, count=len(s))


def _check_keys(t: _Table, out: _Collector) -> pd.Series:
    """Empty-key errors and whitespace warnings; returns a mask of rows whose keys are all set."""
    ok = pd.Series(True, index=t.df.index)
    for col in _KEY_COLUMNS[t.name]:
        if col not in t.present:
            ok[:] = False
            continue
        s = t.df[col]
        stripped = _strip(s)
        empty = stripped == ""
        if empty.any():
            sub = t.df.loc[empty]
            out.add_rows(
                t.file, "empty_key", col, sub["line"],
                (f"empty cell: '{col}' is a key and must not be empty" for _ in range(len(sub))), len(sub),
            )
        spaced = ~empty & (stripped != s)
        if spaced.any():
            sub = t.df.loc[spaced]
            out.add_rows(
                t.file, "key_whitespace", col, sub["line"],
                (f"value {_q(v)} has leading or trailing spaces: keys are compared exactly" for v in sub[col]),
                len(sub),
            )
        ok &= ~empty
    return ok


def _too_large_message(value: str, number: float, limit: float, what: str) -> str:
    size = "in magnitude " if number < 0 else ""
    return f"value {_q(value)} exceeds {_bound_text(limit)} {size}(the largest {what} the planner accepts)"


def _check_numbers(t: _Table, out: _Collector) -> dict[str, pd.Series]:
    """Numeric-cell checks; returns parsed float columns (NaN where empty, invalid or beyond
    the column's bound, so the cross-file checks only see usable numbers)."""
    values: dict[str, pd.Series] = {}
    for col, rule in _NUMBER_COLUMNS[t.name].items():
        if col not in t.present:
            continue
        s = t.df[col]
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        empty = _strip(s) == ""
        finite = np.isfinite(v.to_numpy())
        invalid = ~empty & ~finite
        if rule.required and empty.any():
            sub = t.df.loc[empty]
            out.add_rows(
                t.file, "missing_number", col, sub["line"],
                (f"empty cell: '{col}' requires a number" for _ in range(len(sub))), len(sub),
            )
        if invalid.any():
            sub = t.df.loc[invalid]
            out.add_rows(
                t.file, "not_a_number", col, sub["line"],
                (f"value {_q(x)} is not a finite number" for x in sub[col]), len(sub),
            )
        v = v.where(finite)
        too_large = (v.abs() > rule.limit).to_numpy()
        if too_large.any():
            sub = t.df.loc[too_large]
            out.add_rows(
                t.file, "value_too_large", col, sub["line"],
                (_too_large_message(x, n, rule.limit, rule.what) for x, n in zip(sub[col], v[too_large])),
                len(sub),
            )
            v = v.where(~too_large)
        if rule.positive:
            bad = v <= 0
            if bad.any():
                sub = t.df.loc[bad]
                out.add_rows(
                    t.file, "non_positive_number", col, sub["line"],
                    (f"value {_q(x)} must be a positive number (> 0)" for x in sub[col]), len(sub),
                )
        else:
            neg = v < 0
            if neg.any():
                sub = t.df.loc[neg]
                if rule.negative_warning:
                    out.add_rows(
                        t.file, "negative_inventory", col, sub["line"],
                        (f"value {_q(x)} is negative: it is used as is (the first net requirement covers it)"
                         for x in sub[col]),
                        len(sub),
                    )
                else:
                    out.add_rows(
                        t.file, "negative_number", col, sub["line"],
                        (f"value {_q(x)} must be a non-negative number" for x in sub[col]), len(sub),
                    )
        values[col] = v
    if t.name == "item" and "lot" in values:
        v = values["lot"]
        low = (v >= 0) & (v < 1)
        if low.any():
            sub = t.df.loc[low]
            out.add_rows(
                t.file, "lot_below_one", "lot", sub["line"],
                (f"value {_q(x)} is below 1: the lot size is treated as 1" for x in sub["lot"]), len(sub),
            )
        frac = (v >= 1) & (v != np.floor(v))
        if frac.any():
            sub = t.df.loc[frac]
            out.add_rows(
                t.file, "fractional_lot", "lot", sub["line"],
                (f"value {_q(x)} is not a whole number: lot sizes must be whole units (capacity leveling "
                 f"rounds finished-good releases to whole units, which breaks a fractional lot multiple)"
                 for x in sub["lot"]),
                len(sub),
            )
    return values


def _check_periods(t: _Table, key_ok: pd.Series, calendar_periods: set[str], out: _Collector) -> pd.Series:
    """bad_period errors; returns the mask of rows with a valid period."""
    if "period" not in t.present:
        return pd.Series(False, index=t.df.index)
    s = t.df["period"]
    valid = s.str.match(_MONTH_RE)
    if calendar_periods:
        valid |= _isin(s, calendar_periods)
    bad = key_ok & ~valid
    if bad.any():
        extra = [p for p in calendar_periods if not _MONTH_RE.match(p)]
        expect = "expected YYYY-MM with month 01-12"
        if extra:
            expect += " or a period of planning_calendar.json"
        sub = t.df.loc[bad]
        out.add_rows(
            t.file, "bad_period", "period", sub["line"],
            (f"value {_q(v)} is not a period: {expect}" for v in sub["period"]), len(sub),
        )
    return valid & key_ok


def _check_duplicates(t: _Table, ok: pd.Series, out: _Collector) -> None:
    if t.name in _DUPLICATE_ERRORS:
        cols, rule = _DUPLICATE_ERRORS[t.name], "duplicate_key"
    elif t.name in _DUPLICATE_SUMMED:
        cols, rule = _DUPLICATE_SUMMED[t.name], "duplicate_summed"
    else:
        return
    if not all(c in t.present for c in cols):
        return
    sub = t.df.loc[ok, [*cols, "line"]]
    dup = sub.duplicated(list(cols), keep=False)
    if not dup.any():
        return
    d = sub.loc[dup].copy()
    d["first"] = d.groupby(list(cols), sort=False)["line"].transform("min")
    d = d.loc[d["line"] != d["first"]]
    names = ", ".join(cols)

    def key_text(r: tuple) -> str:
        vals = r[: len(cols)]
        if len(cols) == 1:
            return _q(vals[0])
        return "(" + ", ".join(_q(v) for v in vals) + ")"

    rows = list(d.head(out.cap).itertuples(index=False, name=None))
    if rule == "duplicate_key":
        label = cols[0] if len(cols) == 1 else f"({names})"
        msgs = (f"duplicate {label} {key_text(r)} (first at line {r[-1]}): rows must be unique" for r in rows)
    else:
        msgs = (
            f"duplicate ({names}) {key_text(r)} (first at line {r[-1]}): the quantities are summed"
            for r in rows
        )
    out.add_rows(t.file, rule, cols[-1], d["line"], msgs, len(d))


# ---------------------------------------------------------------------------------------------
# calendar


@dataclass
class _Calendar:
    """What the cross-file checks need from a (possibly partly invalid) calendar."""

    period_keys: set[str] = field(default_factory=set)  # every string 'period' value
    period_weeks: dict[str, list[str]] = field(default_factory=dict)  # valid periods with weeks
    week_codes: set[str] = field(default_factory=set)
    week_ranges: list[tuple[date, date, str, str]] = field(default_factory=list)  # + period
    period_last_week: dict[str, str] = field(default_factory=dict)
    week_periods: dict[str, list[str]] = field(default_factory=dict)  # a shared week: 2 periods
    period_dates: dict[str, tuple[date, date]] = field(default_factory=dict)  # valid period ranges
    last_week_end: date | None = None  # the latest end_date of any valid week


def _parse_iso_date(value: Any) -> tuple[date | None, str | None]:
    """(date, None) or (None, the calendar model's message for a bad date)."""
    try:
        return calendar_date(value), None
    except PydanticCustomError as exc:
        return None, str((exc.context or {}).get("message", exc.message()))


def _check_calendar(folder: Path, out: _Collector) -> _Calendar | None:
    path = folder / CALENDAR_FILE
    if not path.is_file():
        return None
    file = CALENDAR_FILE
    try:
        doc = json.loads(read_input_text(path))
    except UnicodeDecodeError as exc:
        out.add(file, None, None, "calendar_json", f"file is not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return _Calendar()
    except json.JSONDecodeError as exc:
        out.add(file, exc.lineno, None, "calendar_json", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return _Calendar()
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit integer, nesting too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(":")[0]
        out.add(file, None, None, "calendar_json", f"cannot be read as JSON: {reason}")
        return _Calendar()
    if not isinstance(doc, dict):
        out.add(file, None, None, "calendar_json", f"the document must be a JSON object, found {_type_name(doc)}")
        return _Calendar()

    cal = _Calendar()
    # Field rules: the one model of the document (plan_pipeline.planning.calendar_document), part by
    # part so that what is valid still feeds the cross-row checks below.
    def problems(found_problems) -> None:
        for path, rule, message in found_problems:
            out.add(file, None, path, rule, message)

    header, found_problems, values = check_part(CalendarDocumentHeader, doc, "")
    problems(found_problems)
    periods = header.periods if header is not None else values.get("periods")
    if periods is None:
        return cal
    if not periods:
        out.add(file, None, "periods", "calendar_empty", "the calendar defines no periods: every period uses fallback weeks")

    seen_period: dict[str, int] = {}
    # what the ordering checks need: (index, key, start, end) per period with valid dates, and
    # the valid weeks of each valid period in the planner's order
    dated_periods: list[tuple[int, str, date, date]] = []
    planned_weeks: list[tuple[int, str, list[tuple[int, date, str, date, int]]]] = []
    for i, p in enumerate(periods):
        ppath = f"periods[{i}]"
        period, found_problems, values = check_part(CalendarPeriodHeader, p, ppath)
        if period is not None:
            values = period.model_dump()
        pkey = values.get("period")
        pstart, pend = values.get("start_date"), values.get("end_date")
        weeks = values.get("weeks")
        p_ok = pkey is not None
        problems(found_problems)
        if not isinstance(p, dict):
            continue
        if pkey is not None:
            cal.period_keys.add(pkey)
            if pkey in seen_period:
                out.add(
                    file, None, f"{ppath}.period", "calendar_duplicate",
                    f"duplicate period '{pkey}' (first at periods[{seen_period[pkey]}])",
                )
                p_ok = False
            else:
                seen_period[pkey] = i
        if pstart and pend and pstart > pend:
            out.add(file, None, ppath, "calendar_date_order", f"start_date {pstart} is after end_date {pend}")
        elif pstart and pend and p_ok:
            dated_periods.append((i, pkey, pstart, pend))
            cal.period_dates[pkey] = (pstart, pend)
        if weeks is None:
            continue
        if not weeks:
            if pkey is not None:
                out.add(file, None, ppath, "calendar_empty", f"period '{pkey}' has no weeks: it uses fallback weeks")
            continue
        valid_weeks: list[tuple[int, date, str, date, int]] = []
        seen_code: dict[str, int] = {}
        weights: list[float] = []
        for j, w in enumerate(weeks):
            wpath = f"{ppath}.weeks[{j}]"
            week, found_problems, values = check_part(CalendarWeek, w, wpath)
            if not isinstance(w, dict):
                problems(found_problems)
                continue
            if week is not None:
                values = week.model_dump()
            problems(found_problems)
            bad = {path[len(wpath) + 1:] for path, _, _ in found_problems}
            code = values.get("week_code")
            w_ok = not bad - {"attributes"}
            if code is not None:
                if code in seen_code:
                    where = f"{ppath}.weeks[{seen_code[code]}]"
                    label = f" in period '{pkey}'" if pkey is not None else ""
                    out.add(
                        file, None, f"{wpath}.week_code", "calendar_duplicate",
                        f"duplicate week_code '{code}'{label} (first at {where})",
                    )
                    w_ok = False
                else:
                    seen_code[code] = j
            seq = values.get("sequence")
            wstart, wend = values.get("start_date"), values.get("end_date")
            if seq is None or wstart is None or wend is None:
                w_ok = False
            elif wstart > wend:
                out.add(file, None, wpath, "calendar_date_order", f"start_date {wstart} is after end_date {wend}")
                w_ok = False
            if "weight" in bad:
                w_ok = False
            else:
                weights.append(float(values["weight"]))
            if w_ok and wstart and wend and pstart and pend and not (pstart <= wstart and wend <= pend):
                out.add(
                    file, None, wpath, "calendar_week_outside_period",
                    f"week '{code}' ({wstart}..{wend}) is not inside period '{pkey}' ({pstart}..{pend})",
                )
            if w_ok:
                valid_weeks.append((seq, wstart, code, wend, j))
        if weights and len(weights) == len(weeks) and sum(weights) == 0 and pkey is not None:
            out.add(file, None, ppath, "calendar_zero_weights", f"all week weights of period '{pkey}' are 0: its weeks get equal shares")
        if p_ok and valid_weeks:
            valid_weeks.sort(key=lambda x: (x[0], x[1], x[2]))  # the planner's order (spec §3.2)
            planned_weeks.append((i, pkey, valid_weeks))
            cal.period_weeks[pkey] = [x[2] for x in valid_weeks]
            cal.period_last_week[pkey] = valid_weeks[-1][2]
            for _, ws, code, we, _ in valid_weeks:
                cal.week_codes.add(code)
                cal.week_ranges.append((ws, we, code, pkey))
                cal.week_periods.setdefault(code, []).append(pkey)
                if cal.last_week_end is None or we > cal.last_week_end:
                    cal.last_week_end = we
    # Planning order must follow the dates. Checked only on an otherwise valid calendar, so a
    # broken field does not cascade into ordering errors.
    if not any(sev == ERROR and f == file for (sev, f, _) in out.totals):
        _check_calendar_order(dated_periods, planned_weeks, out)
    return cal


def _days(first: date, last: date) -> str:
    return f"the day {first}" if first == last else f"the days {first}..{last}"


def _check_calendar_order(
    periods: list[tuple[int, str, date, date]],
    planned_weeks: list[tuple[int, str, list[tuple[int, date, str, date, int]]]],
    out: _Collector,
) -> None:
    """calendar_sequence / calendar_gap / calendar_overlap.

    The planner orders weeks by period list order, then by (sequence, start_date, week_code)
    inside a period (pipeline spec §3.2/§3.4), and MRP offsets lead times along that order. So
    consecutive periods, and consecutive week fragments in that order, must follow each other
    in time without gaps or overlaps. A week shared by two months (one week_code, a fragment at
    the end of one period and at the start of the next) is one week: its fragments may touch or
    repeat the same dates, but it keeps one sequence and may not reappear later.

    Only the first level that is wrong is reported, and order before gaps: a period listed out
    of order also puts its weeks out of order and leaves gaps, which would only repeat it.
    """
    file = CALENDAR_FILE
    one = timedelta(days=1)
    order: list[tuple[str, str, str]] = []  # (path, rule, message); calendar_sequence issues
    holes: list[tuple[str, str, str]] = []  # calendar_gap / calendar_overlap issues
    for (_, ka, sa, ea), (ib, kb, sb, eb) in itertools.pairwise(periods):
        where = f"periods[{ib}]"
        if sb < sa:
            order.append((where, "calendar_sequence",
                          f"period '{kb}' ({sb}..{eb}) is listed after period '{ka}' ({sa}..{ea}) but starts "
                          f"before it: periods are planned in list order, so they must be listed in date order"))
        elif sb <= ea:
            holes.append((where, "calendar_overlap",
                          f"period '{kb}' ({sb}..{eb}) overlaps period '{ka}' ({sa}..{ea}) listed before it"))
        elif sb > ea + one:
            holes.append((where, "calendar_gap",
                          f"no period covers {_days(ea + one, sb - one)}, between period '{ka}' (ends {ea}) "
                          f"and period '{kb}' (starts {sb})"))

    if not order and not holes:
        fragments = [
            (pi, pkey, seq, ws, code, we, j)
            for pi, pkey, weeks in planned_weeks
            for seq, ws, code, we, j in weeks
        ]
        first_at: dict[str, tuple[int, int, str]] = {}  # code -> (period index, week index, period)
        for prev, frag in itertools.pairwise(fragments):
            ppi, ppkey, pseq, pws, pcode, pwe, pj = prev
            pi, pkey, seq, ws, code, we, j = frag
            first_at.setdefault(pcode, (ppi, pj, ppkey))
            where = f"periods[{pi}].weeks[{j}]"
            label = f"week '{code}' (sequence {seq}, {ws}..{we})"
            plabel = f"week '{pcode}' (sequence {pseq}, {pws}..{pwe}) of period '{ppkey}'"
            if code in first_at and pcode != code:
                fpi, fj, fkey = first_at[code]
                order.append((where, "calendar_sequence",
                              f"week '{code}' appears again in period '{pkey}' (first at periods[{fpi}].weeks[{fj}] "
                              f"of period '{fkey}'): a week may be shared only by consecutive periods, as the "
                              f"last week of one and the first week of the next"))
            elif ws < pws:
                order.append((where, "calendar_sequence",
                              f"{label} is planned after {plabel} but starts before it: weeks are planned in "
                              f"period list order, then by sequence, so both must follow the dates"))
            elif code == pcode:
                if seq != pseq:
                    order.append((f"{where}.sequence", "calendar_sequence",
                                  f"shared week '{code}' has sequence {seq} here but {pseq} in period '{ppkey}': "
                                  f"a week shared by two periods keeps one sequence"))
                if ws > pwe + one:
                    holes.append((where, "calendar_gap",
                                  f"no week covers {_days(pwe + one, ws - one)}, between the fragments of week "
                                  f"'{code}' in periods '{ppkey}' and '{pkey}'"))
            elif ws <= pwe:
                holes.append((where, "calendar_overlap", f"{label} overlaps {plabel}, the week planned before it"))
            elif ws > pwe + one:
                holes.append((where, "calendar_gap",
                              f"no week covers {_days(pwe + one, ws - one)}, between {plabel} and {label}"))
    for where, rule, message in order or holes:
        out.add(file, None, where, rule, message)


# ---------------------------------------------------------------------------------------------
# open PO dues


def _map_due(due: str, cal: _Calendar | None) -> tuple[str, str, str | None] | str:
    """Classify a due like the reference maps it (pipeline spec §3.5): ``("week", code, period)``
    (period = the calendar period the due points into, None for a bare week code),
    ``("month", YYYY-MM, None)`` or an error message (str)."""
    if cal is not None and due in cal.week_codes:
        return ("week", due, None)
    if _ISO_DATE_RE.match(due):
        d, err = _parse_iso_date(due)
        if err or d is None:
            return err or f"due {due!r} is not a date"
        if cal is not None:
            for start, end, code, period in cal.week_ranges:
                if start <= d <= end:
                    return ("week", code, period)
        return ("month", due[:7], None)
    if _MONTH_RE.match(due):
        if cal is not None and due in cal.period_last_week:
            return ("week", cal.period_last_week[due], due)
        return ("month", due, None)
    if cal is not None:
        return f"value {_q(due)} is not a valid due: expected an ISO date YYYY-MM-DD, a month YYYY-MM or a week code of planning_calendar.json"
    return f"value {_q(due)} is not a valid due: expected an ISO date YYYY-MM-DD or a month YYYY-MM (week codes need a planning_calendar.json)"


# ---------------------------------------------------------------------------------------------
# BOM graph


def _bom_cycles(edges: pd.DataFrame) -> list[tuple[list[str], list[int]]]:
    """Cycles of the BOM graph (one per strongly connected component), as node paths
    ``[a, b, …, a]`` with the file lines of the edges used. ``edges``: parent, child, line."""
    if edges.empty:
        return []
    e = edges.groupby(["parent", "child"], sort=False)["line"].min().reset_index()
    # Vectorised pruning: an edge can only be on a cycle if its parent has an in-edge and its
    # child an out-edge. A few rounds empty a shallow acyclic BOM; the rest is done below.
    for _ in range(32):
        has_in = _isin(e["parent"], set(e["child"].tolist()))
        has_out = _isin(e["child"], set(e["parent"].tolist()))
        keep = has_in & has_out
        if keep.all():
            break
        e = e.loc[keep]
        if e.empty:
            return []
    first_line = e.set_index(["parent", "child"])["line"]
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    for p, c in first_line.index:
        succ[p].append(c)
        pred[c].append(p)
    nodes = set(succ) | set(pred)
    # Prune nodes that cannot be on a cycle (no in-edges / no out-edges), repeatedly.
    indeg = {n: len(pred[n]) for n in nodes}
    outdeg = {n: len(succ[n]) for n in nodes}
    alive = set(nodes)
    queue = deque(n for n in nodes if indeg[n] == 0 or outdeg[n] == 0)
    while queue:
        n = queue.popleft()
        if n not in alive:
            continue
        alive.discard(n)
        for c in succ[n]:
            if c in alive:
                indeg[c] -= 1
                if indeg[c] == 0:
                    queue.append(c)
        for p in pred[n]:
            if p in alive:
                outdeg[p] -= 1
                if outdeg[p] == 0:
                    queue.append(p)
    if not alive:
        return []
    # Tarjan's SCC (iterative) on what is left.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0
    for root in sorted(alive):
        if root in index:
            continue
        work = [(root, iter(sorted(c for c in succ[root] if c in alive)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for c in it:
                if c not in index:
                    index[c] = low[c] = counter
                    counter += 1
                    stack.append(c)
                    on_stack.add(c)
                    work.append((c, iter(sorted(x for x in succ[c] if x in alive))))
                    advanced = True
                    break
                if c in on_stack:
                    low[node] = min(low[node], index[c])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == node:
                        break
                if len(comp) > 1:
                    sccs.append(comp)
    cycles = []
    for comp in sccs:
        members = set(comp)
        start = min(comp)
        # shortest path start -> ... -> start inside the component (BFS)
        prev: dict[str, str] = {}
        q = deque([start])
        found = None
        while q and found is None:
            n = q.popleft()
            for c in sorted(succ[n]):
                if c not in members:
                    continue
                if c == start:
                    found = n
                    break
                if c not in prev:
                    prev[c] = n
                    q.append(c)
        assert found is not None, "a node of a cycle reaches its start again"
        path = [start]
        n = found
        back = []
        while n != start:
            back.append(n)
            n = prev[n]
        path.extend(reversed(back))
        path.append(start)
        lines = [int(first_line[(a, b)]) for a, b in itertools.pairwise(path)]
        cycles.append((path, lines))
    cycles.sort(key=lambda x: min(x[1]))
    return cycles


# ---------------------------------------------------------------------------------------------
# main entry


def validate_input_dir(path: str | Path) -> ValidationReport:
    """Validate every file of an input folder; never raises for bad content."""
    folder = Path(path)
    out = _Collector()
    if not folder.is_dir():
        out.add(str(folder), None, None, "missing_file", "input folder does not exist")
        return out.report(str(folder))

    cal = _check_calendar(folder, out)
    calendar_periods = cal.period_keys if cal is not None else set()

    tables: dict[str, _Table] = {}
    key_ok: dict[str, pd.Series] = {}
    numbers: dict[str, dict[str, pd.Series]] = {}
    period_ok: dict[str, pd.Series] = {}
    missing = {name for name in INPUT_COLUMNS if not (folder / f"{name}.csv").is_file()}
    for name in INPUT_COLUMNS:
        t = _read_table(folder, name, out)
        if t is None:
            continue
        tables[name] = t
        key_ok[name] = _check_keys(t, out)
        numbers[name] = _check_numbers(t, out)
        ok = key_ok[name]
        if name in _PERIOD_TABLES:
            period_ok[name] = _check_periods(t, ok, calendar_periods, out)
            ok = period_ok[name]
        _check_duplicates(t, ok, out)
        if name == "demand_family" and t.df.empty:
            out.add(t.file, None, None, "no_rows", "no data rows: nothing will be planned")

    _cross_checks(tables, missing, key_ok, numbers, period_ok, cal, out)
    return out.report(str(folder))


def _cross_checks(
    tables: dict[str, _Table],
    missing: set[str],
    key_ok: dict[str, pd.Series],
    numbers: dict[str, dict[str, pd.Series]],
    period_ok: dict[str, pd.Series],
    cal: _Calendar | None,
    out: _Collector,
) -> None:
    """Checks across rows and files. A table whose key columns are missing (already an error)
    is left out, so a structural error does not cascade into a flood of warnings."""
    usable = {n: t for n, t in tables.items() if all(c in t.present for c in _KEY_COLUMNS[n])}
    demand = usable.get("demand_family")
    mix = usable.get("mix_share")
    capacity = usable.get("capacity")
    item = usable.get("item")
    bom = usable.get("bom")
    inv = usable.get("inventory")
    po = usable.get("open_po")

    # Rows of a file with well-formed keys (or dates); empty where the file is not usable (the
    # checks below that read them run only when it is).
    demand_keyed = demand.df.loc[key_ok["demand_family"]] if demand is not None else pd.DataFrame()
    demand_dated = demand.df.loc[period_ok["demand_family"]] if demand is not None else pd.DataFrame()
    mix_ok = mix.df.loc[key_ok["mix_share"]] if mix is not None else pd.DataFrame()
    demand_families = set(demand_keyed["family"]) if demand is not None else set()

    # --- mix vs demand: unknown families, families without mix rows (pseudo-SKU)
    pseudo: set[str] = set()
    if demand is not None and mix is not None:
        firsts = mix_ok.drop_duplicates("family")
        unknown = firsts.loc[~_isin(firsts["family"], demand_families)]
        out.add_rows(
            mix.file, "unknown_family", "family", unknown["line"],
            (f"mix shares for unknown family {_q(f)}: it has no rows in demand_family.csv" for f in unknown["family"]),
            len(unknown),
        )
        d = demand_keyed.drop_duplicates("family")
        no_mix = d.loc[~_isin(d["family"], set(mix_ok["family"]))]
        pseudo = set(no_mix["family"])
        out.add_rows(
            demand.file, "family_without_mix", "family", no_mix["line"],
            (f"family {_q(f)} has demand but no rows in mix_share.csv: it is planned as a single "
             f"pseudo-SKU {_q(f)} without capacity load" for f in no_mix["family"]),
            len(no_mix),
        )

    # --- mix alone: all-zero shares, SKUs under several families
    if mix is not None:
        if "share" in numbers.get("mix_share", {}):
            share = numbers["mix_share"]["share"].loc[mix_ok.index]
            g = pd.DataFrame({"family": mix_ok["family"], "share": share.fillna(0.0), "bad": share.isna()})
            agg = g.groupby("family", sort=False).agg(total=("share", "sum"), bad=("bad", "any"))
            zero = agg.loc[~agg["bad"] & (agg["total"] == 0)]
            if demand is not None and "demand" in numbers.get("demand_family", {}):
                # a family whose demand is all 0 plans nothing, whatever its shares
                dem = numbers["demand_family"]["demand"].loc[demand_keyed.index]
                positive = set(demand_keyed.loc[(dem > 0).to_numpy(), "family"])
                zero = zero.loc[_isin(pd.Series(zero.index), positive)]
            first_line = mix_ok.drop_duplicates("family").set_index("family")["line"]
            out.add_rows(
                mix.file, "zero_shares", "share", first_line.loc[zero.index],
                (f"all shares of family {_q(f)} are 0 but it has demand: the split between its SKUs is "
                 f"undefined (the reference splits equally with int rounding and drops the demand in the "
                 f"other round modes); give at least one SKU a positive share"
                 for f in zero.index),
                len(zero),
            )
        pairs = mix_ok.drop_duplicates(["family", "sku"])
        multi = pairs.duplicated("sku", keep="first")
        if multi.any():
            first = pairs.drop_duplicates("sku").set_index("sku")
            sub = pairs.loc[multi]
            out.add_rows(
                mix.file, "sku_in_several_families", "sku", sub["line"],
                (f"sku {_q(x)} is also listed under family {_q(first.at[x, 'family'])} "
                 f"(line {first.at[x, 'line']}): {ONE_FAMILY}"
                 for x in sub["sku"]),
                len(sub),
            )
        if pseudo:
            clash = pairs.loc[_isin(pairs["sku"], pseudo) & (pairs["sku"] != pairs["family"]).to_numpy()]
            out.add_rows(
                mix.file, "sku_in_several_families", "sku", clash["line"],
                (f"sku {_q(x)} is also the pseudo-SKU of family {_q(x)}, which has demand but no mix rows: "
                 f"{ONE_FAMILY}" for x in clash["sku"]),
                len(clash),
            )

    # --- BOM graph: self-loops and cycles
    bom_edges = pd.DataFrame({"parent": [], "child": [], "line": []})
    bom_acyclic = True
    if bom is not None:
        b = bom.df.loc[key_ok["bom"]]
        self_loop = b["parent"] == b["child"]
        sl = b.loc[self_loop]
        out.add_rows(
            bom.file, "bom_self_loop", "child", sl["line"],
            (f"item {_q(x)} is its own component: a BOM row must link two different items" for x in sl["parent"]),
            len(sl),
        )
        b = b.loc[~self_loop]
        if "qty" in numbers.get("bom", {}):
            b = b.loc[numbers["bom"]["qty"].loc[b.index] > 0]
        bom_edges = b[["parent", "child", "line"]]
        cycles = _bom_cycles(bom_edges)
        for path, lines in cycles:
            out.add(
                bom.file, min(lines), None, "bom_cycle",
                f"BOM cycle {' -> '.join(path)} (lines {', '.join(map(str, lines))}): a BOM must be acyclic",
            )
        bom_acyclic = not cycles

    # --- sums the planner forms before planning stay within MAX_PLAN_QUANTITY
    _check_sums(usable, {**key_ok, **period_ok}, numbers, out)

    # --- planned items (DET SKUs, pseudo-SKUs, BOM descendants) need demand and mix
    if demand is not None and mix is not None:
        det_skus = set(mix_ok.loc[_isin(mix_ok["family"], demand_families), "sku"])
        planned = det_skus | pseudo
        children_of: dict[str, list[str]] = defaultdict(list)
        for p, c in zip(bom_edges["parent"].tolist(), bom_edges["child"].tolist()):
            children_of[p].append(c)
        todo = list(planned)
        while todo:
            for c in children_of.get(todo.pop(), ()):
                if c not in planned:
                    planned.add(c)
                    todo.append(c)

        never = "is never planned (no demand and not a component of a planned item)"
        if bom is not None:
            b = bom.df.loc[key_ok["bom"]]
            b = b.loc[(b["parent"] != b["child"]) & ~_isin(b["parent"], planned)]
            out.add_rows(
                bom.file, "unknown_item", "parent", b["line"],
                (f"parent {_q(x)} {never}: the BOM row has no effect" for x in b["parent"]), len(b),
            )
        if inv is not None:
            x = inv.df.loc[key_ok["inventory"]]
            x = x.loc[~_isin(x["item"], planned)]
            out.add_rows(
                inv.file, "unknown_item", "item", x["line"],
                (f"item {_q(i)} {never}: its stock is not used" for i in x["item"]), len(x),
            )
        if po is not None:
            x = po.df.loc[key_ok["open_po"]]
            x = x.loc[~_isin(x["item"], planned)]
            out.add_rows(
                po.file, "unknown_item", "item", x["line"],
                (f"item {_q(i)} {never}: the open PO is ignored" for i in x["item"]), len(x),
            )

        defaults = "it is planned with lt 0, lot 1, moq 0"
        if item is not None:
            known = set(item.df.loc[key_ok["item"], "item"])
            m = mix_ok.loc[_isin(mix_ok["family"], demand_families) & ~_isin(mix_ok["sku"], known)]
            m = m.drop_duplicates("sku")
            out.add_rows(
                mix.file, "item_defaults", "sku", m["line"],
                (f"sku {_q(x)} is not in item.csv: {defaults}" for x in m["sku"]), len(m),
            )
            if not bom_edges.empty and bom is not None:
                c = bom_edges.loc[_isin(bom_edges["parent"], planned) & ~_isin(bom_edges["child"], known)]
                c = c.loc[~_isin(c["child"], det_skus)].drop_duplicates("child")
                out.add_rows(
                    bom.file, "item_defaults", "child", c["line"],
                    (f"component {_q(x)} is not in item.csv: {defaults}" for x in c["child"]), len(c),
                )
        elif "item" in missing and (planned - pseudo):
            out.add(
                "item.csv", None, None, "item_defaults",
                f"file is missing: all {len(planned - pseudo)} planned items use lt 0, lot 1, moq 0",
            )

    # --- a component's requirement per period through the BOM stays within MAX_PLAN_QUANTITY
    if demand is not None and mix is not None and bom_acyclic and "demand" in numbers.get("demand_family", {}) \
            and "share" in numbers.get("mix_share", {}):
        bom_qty = numbers.get("bom", {}).get("qty")
        edges = bom_edges.assign(qty=bom_qty.loc[bom_edges.index]) if len(bom_edges) and bom_qty is not None else None
        _check_requirements(
            demand_dated.assign(demand=numbers["demand_family"]["demand"].loc[demand_dated.index]),
            mix_ok.assign(share=numbers["mix_share"]["share"].loc[mix_ok.index]),
            pseudo, edges, bom.file if bom is not None else "bom.csv", out,
        )

    # --- open PO dues: format and horizon
    if po is not None and "due" in po.present:
        periods = sorted(set(demand_dated["period"])) if demand is not None else None
        _check_dues(po, periods, cal, out)

    # --- capacity vs demand periods
    if demand is not None and capacity is not None:
        dp = demand_dated.drop_duplicates("period")
        cp = capacity.df.loc[period_ok["capacity"]].drop_duplicates("period")
        no_cap = dp.loc[~_isin(dp["period"], set(cp["period"]))]
        out.add_rows(
            demand.file, "demand_without_capacity", "period", no_cap["line"],
            (f"period {_q(p)} has demand but no rows in capacity.csv: its capacity is 0" for p in no_cap["period"]),
            len(no_cap),
        )
        no_dem = cp.loc[~_isin(cp["period"], set(dp["period"]))]
        out.add_rows(
            capacity.file, "capacity_without_demand", "period", no_dem["line"],
            (f"period {_q(p)} has capacity but no demand in demand_family.csv: it is not planned" for p in no_dem["period"]),
            len(no_dem),
        )

    # --- demand periods the calendar does not define: fine after its last week (planned after
    # it, in period order), out of time order before it
    if demand is not None and cal is not None and cal.period_weeks:
        dp = demand_dated.drop_duplicates("period")
        gaps = dp.loc[~_isin(dp["period"], set(cal.period_weeks))]
        starts = [_period_start(p, cal) for p in gaps["period"]]
        inside = np.fromiter(
            (s is not None and cal.last_week_end is not None and s <= cal.last_week_end for s in starts),
            dtype=bool, count=len(starts),
        )
        after = gaps.loc[~inside]
        out.add_rows(
            demand.file, "period_not_in_calendar", "period", after["line"],
            (f"period {_q(p)} has no weeks in planning_calendar.json: it is split into equal fallback "
             f"weeks ({p}-W1 ...)" for p in after["period"]),
            len(after),
        )
        before = gaps.loc[inside]
        out.add_rows(
            demand.file, "calendar_missing_period", "period", before["line"],
            (f"period {_q(p)} has no weeks in planning_calendar.json but starts ({s}) before the calendar's "
             f"last week ends ({cal.last_week_end}): its fallback weeks would be planned after every "
             f"calendar week, out of time order; give it weeks in the calendar"
             for p, s in zip(before["period"], (s for s, i in zip(starts, inside) if i))),
            len(before),
        )


#: quantities the planner adds up before it plans: table -> (column, group keys, label format)
_SUMMED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "demand_family": ("demand", ("family", "period"), "the demand of family {} in period {}"),
    "capacity": ("capacity", ("period",), "the capacity of period {} (its workcenters pooled)"),
    "inventory": ("qty", ("item",), "the stock of item {} (its locations summed)"),
    "open_po": ("qty", ("item",), "the open PO quantity of item {}"),
}


def _lines_text(lines: list[int], limit: int = 5) -> str:
    shown = ", ".join(map(str, lines[:limit]))
    return shown + (", ..." if len(lines) > limit else "")


def _check_sums(
    tables: dict[str, _Table], ok: dict[str, pd.Series], numbers: dict[str, dict[str, pd.Series]], out: _Collector
) -> None:
    """value_too_large for groups of rows the planner sums (every cell within the bound, the
    sum not). Groups with a cell already refused are left out."""
    bound = _bound_text(MAX_PLAN_QUANTITY)
    for name, (col, keys, label) in _SUMMED.items():
        t = tables.get(name)
        if t is None or col not in numbers.get(name, {}):
            continue
        rows = t.df.loc[ok[name], [*keys, "line"]]
        if len(rows) < 2:
            continue
        v = numbers[name][col].loc[rows.index]
        g = rows.assign(v=v.fillna(0.0), bad=v.isna())
        agg = g.groupby(list(keys), sort=False).agg(
            total=("v", "sum"), n=("v", "size"), bad=("bad", "any"), first=("line", "min")
        )
        hit = agg.loc[(agg["n"] > 1) & ~agg["bad"] & (agg["total"].abs() > MAX_PLAN_QUANTITY)]
        if hit.empty:
            continue
        hit = hit.sort_values("first")
        lines_of = g.groupby(list(keys), sort=False)["line"].agg(list)
        msgs = []
        for key, row in hit.head(out.cap).iterrows():
            lines = _lines_text(lines_of.loc[key])
            what = label.format(*(_q(k) for k in (key if isinstance(key, tuple) else (key,))))
            msgs.append(
                f"{what} sums to {row['total']:.6g} over {row['n']} rows (lines {lines}), "
                f"which exceeds {bound} (the largest quantity the planner accepts)"
            )
        out.add_rows(t.file, "value_too_large", col, hit["first"], msgs, len(hit))


def _check_requirements(
    demand: pd.DataFrame,
    mix: pd.DataFrame,
    pseudo: set[str],
    edges: pd.DataFrame | None,
    bom_file: str,
    out: _Collector,
) -> None:
    """value_too_large for a component whose requirement in one period can exceed MAX_PLAN_QUANTITY.

    An upper bound, period by period: a SKU gets its normalised share of its family's largest
    period demand, a pseudo-SKU that whole demand; a BOM child gets every parent's bound times
    the row's qty, through the whole (acyclic) BOM. Only the components where the bound is first
    crossed are reported (their descendants follow from them); a SKU without BOM parents cannot
    cross it unless its family's demand does (reported by the sum check; a SKU under several
    families is refused by sku_in_several_families).
    """
    demand = demand.loc[demand["demand"].notna()]
    per_fp = demand.groupby(["family", "period"], sort=False)["demand"].sum()
    fam_max = per_fp.groupby(level=0, sort=False).max().clip(lower=0.0)
    m = mix.loc[mix["family"].isin(fam_max.index)]
    share = m["share"].fillna(0.0).clip(lower=0.0)
    total = share.groupby(m["family"], sort=False).transform("sum")
    count = share.groupby(m["family"], sort=False).transform("size")
    norm = np.where(total > 0, share / total.where(total > 0, 1.0), 1.0 / count)
    req_sku = pd.Series(norm * fam_max.reindex(m["family"]).to_numpy(), index=m["sku"].to_numpy())
    req0 = req_sku.groupby(level=0, sort=False).sum()
    pseudo_req = fam_max.loc[fam_max.index.isin(pseudo)]
    req0 = req0.add(pseudo_req, fill_value=0.0)

    if edges is None:
        edges = pd.DataFrame({"parent": [], "child": [], "qty": [], "line": []})
    have_edges = len(edges) > 0
    names = [req0.index.to_numpy(dtype=object)]
    if have_edges:
        names += [edges["parent"].to_numpy(dtype=object), edges["child"].to_numpy(dtype=object)]
    nodes = pd.Index(pd.unique(np.concatenate(names)), dtype=object)
    req = np.zeros(len(nodes))
    req[nodes.get_indexer(req0.index)] = req0.to_numpy()
    if have_edges:
        par = nodes.get_indexer(edges["parent"])
        chi = nodes.get_indexer(edges["child"])
        qty = edges["qty"].to_numpy(dtype=np.float64)
        # Kahn's algorithm level by level: a node's bound is final once all its parents are.
        order = np.argsort(par, kind="stable")
        par_s, chi_s, qty_s = par[order], chi[order], qty[order]
        starts = np.searchsorted(par_s, np.arange(len(nodes) + 1))
        indeg = np.bincount(chi, minlength=len(nodes))
        frontier = np.flatnonzero(indeg == 0)
        with np.errstate(over="ignore", invalid="ignore"):
            while len(frontier):
                lo, hi = starts[frontier], starts[frontier + 1]
                sizes = hi - lo
                if not sizes.sum():
                    break
                idx = np.repeat(lo - np.cumsum(np.r_[0, sizes[:-1]]), sizes) + np.arange(sizes.sum())
                np.add.at(req, chi_s[idx], req[par_s[idx]] * qty_s[idx])
                np.subtract.at(indeg, chi_s[idx], 1)
                touched = np.unique(chi_s[idx])
                frontier = touched[indeg[touched] == 0]
    over = ~(req <= MAX_PLAN_QUANTITY)  # NaN / inf count as over
    if not over.any():
        return
    parent_over = np.zeros(len(nodes), dtype=bool)
    has_parent = np.zeros(len(nodes), dtype=bool)
    if have_edges:
        np.logical_or.at(parent_over, chi, over[par])
        has_parent[chi] = True
    bound = _bound_text(MAX_PLAN_QUANTITY)
    first = over & ~parent_over
    comp = np.flatnonzero(first & has_parent)
    if len(comp):
        first_line = edges.groupby("child", sort=False)["line"].min()
        items = nodes[comp]
        lines = first_line.loc[items].to_numpy()
        order = np.argsort(lines, kind="stable")
        out.add_rows(
            bom_file, "value_too_large", "qty", lines[order],
            (f"component {_q(x)} can need {r:.6g} units in one period (its parents' demand times the BOM "
             f"quantities), which exceeds {bound} (the largest quantity the planner accepts)"
             for x, r in zip(items[order], req[comp][order])),
            len(comp),
        )


def _period_start(period: str, cal: _Calendar) -> date | None:
    """First day of a demand period: the calendar's start_date, else the month of a YYYY-MM key."""
    if period in cal.period_dates:
        return cal.period_dates[period][0]
    if _MONTH_RE.match(period):
        return date(int(period[:4]), int(period[5:7]), 1)
    return None


def _check_dues(po: _Table, demand_periods: list[str] | None, cal: _Calendar | None, out: _Collector) -> None:
    s = po.df["due"]
    uniq = pd.unique(s)
    mapped = {u: _map_due(u, cal) for u in uniq}
    errs = s.map(lambda u: isinstance(mapped[u], str))
    if errs.any():
        sub = po.df.loc[errs]
        out.add_rows(po.file, "bad_due", "due", sub["line"], (str(mapped[u]) for u in sub["due"]), len(sub))
    if demand_periods is None:
        return
    horizon_weeks: set[str] = set()
    horizon_months: set[str] = set()
    for p in demand_periods:
        if cal is not None and p in cal.period_weeks:
            horizon_weeks.update(cal.period_weeks[p])
        else:
            horizon_months.add(p)

    def outside(u: str) -> bool:
        m = mapped[u]
        if isinstance(m, str):
            return False
        kind, key, _ = m
        return key not in (horizon_weeks if kind == "week" else horizon_months)

    flags = {u: outside(u) for u in uniq}
    bad = s.map(flags).astype(bool)
    if not bad.any():
        return
    if demand_periods:
        span = f"{demand_periods[0]}..{demand_periods[-1]}" if len(demand_periods) > 1 else demand_periods[0]
        horizon = f"the planning horizon (demand periods {span})"
    else:
        horizon = "the planning horizon (there are no demand periods)"

    def msg(u: str) -> str:
        m = mapped[u]
        assert not isinstance(m, str), "rows with a bad due date were reported above"
        kind, key, period = m
        if kind == "week":
            periods = [period] if period is not None else (cal.week_periods.get(key, []) if cal else [])
            where = f"week '{key}'"
            if len(periods) == 1:
                where += f" of period '{periods[0]}'"
            elif periods:
                where += " of periods " + ", ".join(f"'{p}'" for p in periods)
        else:
            where = f"month '{key}'"
        return f"due {_q(u)} falls in {where}, outside {horizon}: the open PO is ignored"

    sub = po.df.loc[bad]
    out.add_rows(po.file, "due_outside_horizon", "due", sub["line"], (msg(u) for u in sub["due"]), len(sub))


def load_validated_input_dir(path: str | Path) -> tuple[PlanningInputs, ValidationReport]:
    """Validate ``path``; raise :class:`InputValidationError` on errors, else parse it with
    :func:`plan_pipeline.inputs.loader.load_input_dir` and return (inputs, report)."""
    report = validate_input_dir(path)
    if not report.ok:
        raise InputValidationError(report)
    return load_input_dir(path), report
