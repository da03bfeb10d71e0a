"""Input validation: one case per rule with the exact message text, reference folders, API."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from plan_pipeline.inputs.sample import BUNDLED_SAMPLE_DIR, generate_sample_inputs
from plan_pipeline.inputs.validation import (
    ERROR,
    MAX_LEAD_TIME,
    MAX_PER_RULE,
    RULES,
    WARNING,
    InputIssue,
    InputValidationError,
    load_validated_input_dir,
    validate_input_dir,
)
from plan_pipeline.planning.types import INPUT_COLUMNS, MAX_PLAN_QUANTITY
from plan_pipeline_tests.inputs.helpers import (
    append_lines,
    copy_sample,
    delete_lines,
    edit_calendar,
    replace_line,
    set_cell,
    write_lines,
)

HORIZON = "outside the planning horizon (demand periods 2025-01..2025-12): the open PO is ignored"
NEVER_PLANNED = "is never planned (no demand and not a component of a planned item)"
LARGEST = "(the largest quantity the planner accepts)"
NOT_WHOLE = ("is not a whole number: lot sizes must be whole units (capacity leveling rounds finished-good "
             "releases to whole units, which breaks a fractional lot multiple)")
ONE_FAMILY = ("a SKU belongs to one family (the detail plan holds one row per week, period and SKU); "
              "list it under one family only")
BEFORE_END = ("before the calendar's last week ends (2025-12-31): its fallback weeks would be planned after every "
              "calendar week, out of time order; give it weeks in the calendar")


def _del(key):
    def change(obj):
        del obj[key]
    return change


# Each case: (rule, case id, mutation of a copy of the bundled sample, exact issue texts of that rule)
CASES: list[tuple[str, str, object, list[str]]] = [
    # ----------------------------------------------------------------- errors: files / tables
    ("missing_file", "capacity", lambda f: (f / "capacity.csv").unlink(),
     ["capacity.csv: required file is missing [missing_file]"]),
    ("missing_file", "mix_share", lambda f: (f / "mix_share.csv").unlink(),
     ["mix_share.csv: required file is missing [missing_file]"]),
    ("file_format", "empty", lambda f: (f / "capacity.csv").write_text(""),
     ["capacity.csv: file is empty: a header row with the columns workcenter, period, capacity is required [file_format]"]),
    ("file_format", "not_utf8", lambda f: (f / "demand_family.csv").write_bytes(b"family,period,demand\nBIKES,2025-01,\xff\n"),
     ["demand_family.csv: file is not valid UTF-8 (byte 35: invalid start byte) [file_format]"]),
    ("file_format", "unterminated_quote", lambda f: replace_line(f, "mix_share.csv", 3, 'BIKES,"BK-200,0.24'),
     ["mix_share.csv line 13: CSV syntax error: unexpected end of data [file_format]"]),
    ("missing_column", "demand", lambda f: replace_line(f, "demand_family.csv", 1, "family,period,qty"),
     ["demand_family.csv line 1, column 'demand': required column 'demand' is missing (header: 'family', 'period', 'qty') [missing_column]"]),
    ("duplicate_column", "capacity",
     lambda f: write_lines(f, "capacity.csv", ["workcenter,period,capacity,period", "LINE-A,2025-01,900,2025-01"]),
     ["capacity.csv line 1, column 'period': column 'period' appears more than once in the header [duplicate_column]"]),
    ("row_width", "long_and_short",
     lambda f: (replace_line(f, "demand_family.csv", 5, "BIKES,2025-04,571,x"),
                replace_line(f, "demand_family.csv", 6, "BIKES,2025-05")),
     ["demand_family.csv line 5: row has 4 field(s) but the header has 3 [row_width]",
      "demand_family.csv line 6: row has 2 field(s) but the header has 3 [row_width]"]),
    # ----------------------------------------------------------------- errors: cells
    ("empty_key", "sku", lambda f: set_cell(f, "mix_share.csv", 3, "sku", ""),
     ["mix_share.csv line 3, column 'sku': empty cell: 'sku' is a key and must not be empty [empty_key]"]),
    ("empty_key", "workcenter_blank", lambda f: set_cell(f, "capacity.csv", 4, "workcenter", "  "),
     ["capacity.csv line 4, column 'workcenter': empty cell: 'workcenter' is a key and must not be empty [empty_key]"]),
    ("missing_number", "demand", lambda f: set_cell(f, "demand_family.csv", 4, "demand", ""),
     ["demand_family.csv line 4, column 'demand': empty cell: 'demand' requires a number [missing_number]"]),
    ("missing_number", "share", lambda f: set_cell(f, "mix_share.csv", 2, "share", ""),
     ["mix_share.csv line 2, column 'share': empty cell: 'share' requires a number [missing_number]"]),
    ("not_a_number", "capacity", lambda f: (set_cell(f, "capacity.csv", 3, "capacity", "abc"),
                                             set_cell(f, "capacity.csv", 5, "capacity", "inf")),
     ["capacity.csv line 3, column 'capacity': value 'abc' is not a finite number [not_a_number]",
      "capacity.csv line 5, column 'capacity': value 'inf' is not a finite number [not_a_number]"]),
    ("not_a_number", "item_lt", lambda f: set_cell(f, "item.csv", 2, "lt", "7d"),
     ["item.csv line 2, column 'lt': value '7d' is not a finite number [not_a_number]"]),
    ("negative_number", "several", lambda f: (set_cell(f, "demand_family.csv", 7, "demand", "-5"),
                                               set_cell(f, "item.csv", 3, "moq", "-1"),
                                               set_cell(f, "open_po.csv", 2, "qty", "-3")),
     ["demand_family.csv line 7, column 'demand': value '-5' must be a non-negative number [negative_number]",
      "item.csv line 3, column 'moq': value '-1' must be a non-negative number [negative_number]",
      "open_po.csv line 2, column 'qty': value '-3' must be a non-negative number [negative_number]"]),
    ("non_positive_number", "bom_qty", lambda f: set_cell(f, "bom.csv", 2, "qty", "0"),
     ["bom.csv line 2, column 'qty': value '0' must be a positive number (> 0) [non_positive_number]"]),
    ("value_too_large", "cells", lambda f: (set_cell(f, "demand_family.csv", 2, "demand", "1e308"),
                                            set_cell(f, "capacity.csv", 3, "capacity", "1000000000001"),
                                            set_cell(f, "item.csv", 2, "lt", "3651"),
                                            set_cell(f, "inventory.csv", 2, "qty", "-2e12"),
                                            set_cell(f, "period_score.csv", 2, "score", "1e20")),
     [f"demand_family.csv line 2, column 'demand': value '1e308' exceeds 1,000,000,000,000 {LARGEST} [value_too_large]",
      f"capacity.csv line 3, column 'capacity': value '1000000000001' exceeds 1,000,000,000,000 {LARGEST} [value_too_large]",
      "item.csv line 2, column 'lt': value '3651' exceeds 3,650 (the largest lead time the planner accepts) [value_too_large]",
      f"inventory.csv line 2, column 'qty': value '-2e12' exceeds 1,000,000,000,000 in magnitude {LARGEST} [value_too_large]",
      f"period_score.csv line 2, column 'score': value '1e20' exceeds 1,000,000,000,000 {LARGEST} [value_too_large]"]),
    ("value_too_large", "sums", lambda f: (set_cell(f, "capacity.csv", 2, "capacity", "6e11"),
                                           set_cell(f, "capacity.csv", 3, "capacity", "6e11"),
                                           append_lines(f, "demand_family.csv", "BIKES,2025-01,1e12"),
                                           append_lines(f, "inventory.csv", "BK-100,DC-SOUTH,1e12"),
                                           append_lines(f, "open_po.csv", "BK-100,2025-01-20,999999999999")),
     [f"demand_family.csv line 2, column 'demand': the demand of family 'BIKES' in period '2025-01' sums to 1e+12 "
      f"over 2 rows (lines 2, 38), which exceeds 1,000,000,000,000 {LARGEST} [value_too_large]",
      f"capacity.csv line 2, column 'capacity': the capacity of period '2025-01' (its workcenters pooled) sums to "
      f"1.2e+12 over 2 rows (lines 2, 3), which exceeds 1,000,000,000,000 {LARGEST} [value_too_large]",
      f"inventory.csv line 2, column 'qty': the stock of item 'BK-100' (its locations summed) sums to 1e+12 over "
      f"2 rows (lines 2, 28), which exceeds 1,000,000,000,000 {LARGEST} [value_too_large]",
      f"open_po.csv line 5, column 'qty': the open PO quantity of item 'BK-100' sums to 1e+12 over 2 rows "
      f"(lines 5, 6), which exceeds 1,000,000,000,000 {LARGEST} [value_too_large]"]),
    ("value_too_large", "bom_chain", lambda f: (append_lines(f, "bom.csv", "BK-100-FRAME,TUBE,100", "TUBE,RAW,100",
                                                             "RAW,ORE,100"),
                                                set_cell(f, "bom.csv", 2, "qty", "100"),
                                                set_cell(f, "demand_family.csv", 2, "demand", "1e6")),
     [f"bom.csv line 16, column 'qty': component 'ORE' can need 2.5e+13 units in one period (its parents' demand "
      f"times the BOM quantities), which exceeds 1,000,000,000,000 {LARGEST} [value_too_large]"]),
    ("value_too_large", "calendar", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][0].update(weight=1e13), d["periods"][0]["weeks"][1].update(sequence=-10**10))),
     ["planning_calendar.json, at periods[0].weeks[0].weight: value 10000000000000.0 exceeds 1,000,000,000,000 "
      "(the largest week weight the planner accepts) [value_too_large]",
      "planning_calendar.json, at periods[0].weeks[1].sequence: value -10000000000 exceeds 1,000,000,000 in "
      "magnitude (the largest week sequence the planner accepts) [value_too_large]"]),
    ("fractional_lot", "sku_and_component", lambda f: (set_cell(f, "item.csv", 2, "lot", "2.5"),
                                                       set_cell(f, "item.csv", 14, "lot", "10.01")),
     [f"item.csv line 2, column 'lot': value '2.5' {NOT_WHOLE} [fractional_lot]",
      f"item.csv line 14, column 'lot': value '10.01' {NOT_WHOLE} [fractional_lot]"]),
    ("bad_period", "month_13", lambda f: (set_cell(f, "demand_family.csv", 3, "period", "2025-13"),
                                          set_cell(f, "period_cost.csv", 2, "period", "Jan-25")),
     ["demand_family.csv line 3, column 'period': value '2025-13' is not a period: expected YYYY-MM with month 01-12 [bad_period]",
      "period_cost.csv line 2, column 'period': value 'Jan-25' is not a period: expected YYYY-MM with month 01-12 [bad_period]"]),
    ("bad_due", "with_calendar", lambda f: (set_cell(f, "open_po.csv", 2, "due", "2025-02-30"),
                                            set_cell(f, "open_po.csv", 3, "due", "next week"),
                                            set_cell(f, "open_po.csv", 4, "due", "2025-W60")),
     ["open_po.csv line 2, column 'due': value '2025-02-30' is not a real date (expected YYYY-MM-DD) [bad_due]",
      "open_po.csv line 3, column 'due': value 'next week' is not a valid due: expected an ISO date YYYY-MM-DD, "
      "a month YYYY-MM or a week code of planning_calendar.json [bad_due]",
      "open_po.csv line 4, column 'due': value '2025-W60' is not a valid due: expected an ISO date YYYY-MM-DD, "
      "a month YYYY-MM or a week code of planning_calendar.json [bad_due]"]),
    ("bad_due", "without_calendar", lambda f: ((f / "planning_calendar.json").unlink(),
                                               set_cell(f, "open_po.csv", 2, "due", "2025-W02"),
                                               set_cell(f, "open_po.csv", 3, "due", "")),
     ["open_po.csv line 2, column 'due': value '2025-W02' is not a valid due: expected an ISO date YYYY-MM-DD "
      "or a month YYYY-MM (week codes need a planning_calendar.json) [bad_due]",
      "open_po.csv line 3, column 'due': value '' is not a valid due: expected an ISO date YYYY-MM-DD "
      "or a month YYYY-MM (week codes need a planning_calendar.json) [bad_due]"]),
    ("duplicate_key", "item_mix_bom_period", lambda f: (append_lines(f, "item.csv", "BK-100,7,10,0"),
                                                        append_lines(f, "mix_share.csv", "BIKES,BK-100,0.1"),
                                                        append_lines(f, "bom.csv", "BK-100,BK-100-FRAME,2"),
                                                        append_lines(f, "period_cost.csv", "2025-01,99"),
                                                        append_lines(f, "period_score.csv", "2025-12,0.5")),
     ["mix_share.csv line 14, column 'sku': duplicate (family, sku) ('BIKES', 'BK-100') (first at line 2): rows must be unique [duplicate_key]",
      "item.csv line 26, column 'item': duplicate item 'BK-100' (first at line 2): rows must be unique [duplicate_key]",
      "bom.csv line 14, column 'child': duplicate (parent, child) ('BK-100', 'BK-100-FRAME') (first at line 2): rows must be unique [duplicate_key]",
      "period_cost.csv line 14, column 'period': duplicate period '2025-01' (first at line 2): rows must be unique [duplicate_key]",
      "period_score.csv line 14, column 'period': duplicate period '2025-12' (first at line 13): rows must be unique [duplicate_key]"]),
    # ----------------------------------------------------------------- errors: cross-row / cross-file
    ("bom_self_loop", "component", lambda f: append_lines(f, "bom.csv", "BK-100-FRAME,BK-100-FRAME,1"),
     ["bom.csv line 14, column 'child': item 'BK-100-FRAME' is its own component: a BOM row must link two different items [bom_self_loop]"]),
    ("bom_cycle", "two_cycles", lambda f: append_lines(f, "bom.csv", "BK-100-FRAME,BK-100,1",
                                                       "HM-100-SHELL,RAW-X,2", "RAW-X,HM-100,1"),
     ["bom.csv line 2: BOM cycle BK-100 -> BK-100-FRAME -> BK-100 (lines 2, 14): a BOM must be acyclic [bom_cycle]",
      "bom.csv line 6: BOM cycle HM-100 -> HM-100-SHELL -> RAW-X -> HM-100 (lines 6, 15, 16): a BOM must be acyclic [bom_cycle]"]),
    ("zero_shares", "bikes", lambda f: [set_cell(f, "mix_share.csv", n, "share", "0") for n in (2, 3, 4, 5)],
     ["mix_share.csv line 2, column 'share': all shares of family 'BIKES' are 0 but it has demand: the split "
      "between its SKUs is undefined (the reference splits equally with int rounding and drops the demand in the "
      "other round modes); give at least one SKU a positive share [zero_shares]"]),
    ("sku_in_several_families", "bk100", lambda f: append_lines(f, "mix_share.csv", "HELMETS,BK-100,0.1"),
     [f"mix_share.csv line 14, column 'sku': sku 'BK-100' is also listed under family 'BIKES' (line 2): "
      f"{ONE_FAMILY} [sku_in_several_families]"]),
    ("sku_in_several_families", "pseudo_sku", lambda f: (delete_lines(f, "mix_share.csv", 10, 11, 12, 13),
                                                         append_lines(f, "mix_share.csv", "HELMETS,LIGHTS,0.1")),
     [f"mix_share.csv line 10, column 'sku': sku 'LIGHTS' is also the pseudo-SKU of family 'LIGHTS', which has "
      f"demand but no mix rows: {ONE_FAMILY} [sku_in_several_families]"]),
    ("unknown_family", "pumps", lambda f: append_lines(f, "mix_share.csv", "PUMPS,PU-100,1"),
     ["mix_share.csv line 14, column 'family': mix shares for unknown family 'PUMPS': it has no rows in demand_family.csv [unknown_family]"]),
    # ----------------------------------------------------------------- errors: calendar
    ("calendar_json", "syntax", lambda f: (f / "planning_calendar.json").write_text('{\n  "periods": [\n    {"period": "2025-01",}\n  ]\n}\n'),
     ["planning_calendar.json line 3: invalid JSON: Expecting property name enclosed in double quotes (column 26) [calendar_json]"]),
    ("calendar_json", "nested_too_deeply", lambda f: (f / "planning_calendar.json").write_text("[" * 100000 + "]" * 100000),
     ["planning_calendar.json: cannot be read as JSON: nested too deeply [calendar_json]"]),
    ("calendar_json", "huge_integer", lambda f: (f / "planning_calendar.json").write_text(
        '{"periods": [], "x": 1' + "0" * 5000 + "}"),
     ["planning_calendar.json: cannot be read as JSON: Exceeds the limit (4300 digits) for integer string "
      "conversion [calendar_json]"]),
    ("calendar_json", "not_an_object", lambda f: (f / "planning_calendar.json").write_text("[]"),
     ["planning_calendar.json: the document must be a JSON object, found list [calendar_json]"]),
    ("calendar_schema", "fields", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][1].pop("sequence"),
        d["periods"][1].update(period=5),
        d["periods"][2].pop("end_date"),
        d["periods"][3]["weeks"][0].update(sequence="1"),
        d["periods"][4].update(weeks={}))),
     ["planning_calendar.json, at periods[0].weeks[1].sequence: required field 'sequence' is missing [calendar_schema]",
      "planning_calendar.json, at periods[1].period: must be a string, found number 5 [calendar_schema]",
      "planning_calendar.json, at periods[2].end_date: required field 'end_date' is missing [calendar_schema]",
      "planning_calendar.json, at periods[3].weeks[0].sequence: must be an integer, found string '1' [calendar_schema]",
      "planning_calendar.json, at periods[4].weeks: must be a list, found object [calendar_schema]"]),
    ("calendar_schema", "periods_not_list", lambda f: edit_calendar(f, lambda d: d.update(periods="2025")),
     ["planning_calendar.json, at periods: must be a list, found string [calendar_schema]"]),
    ("calendar_date", "bad_dates", lambda f: edit_calendar(f, lambda d: (
        d["periods"][1]["weeks"][0].update(start_date="2025-02-30"),
        d["periods"][2].update(start_date="01/03/2025"))),
     ["planning_calendar.json, at periods[1].weeks[0].start_date: value '2025-02-30' is not a real date (expected YYYY-MM-DD) [calendar_date]",
      "planning_calendar.json, at periods[2].start_date: value '01/03/2025' is not a date (expected YYYY-MM-DD) [calendar_date]"]),
    ("calendar_date_order", "period_and_week", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0].update(start_date="2025-01-31", end_date="2025-01-01"),
        d["periods"][1]["weeks"][1].update(start_date="2025-02-09", end_date="2025-02-03"))),
     ["planning_calendar.json, at periods[0]: start_date 2025-01-31 is after end_date 2025-01-01 [calendar_date_order]",
      "planning_calendar.json, at periods[1].weeks[1]: start_date 2025-02-09 is after end_date 2025-02-03 [calendar_date_order]"]),
    ("calendar_weight", "negative_and_text", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][0].update(weight=-1),
        d["periods"][0]["weeks"][1].update(weight="heavy"))),
     ["planning_calendar.json, at periods[0].weeks[0].weight: value -1 must be a non-negative number [calendar_weight]",
      "planning_calendar.json, at periods[0].weeks[1].weight: value 'heavy' must be a non-negative number [calendar_weight]"]),
    ("calendar_duplicate", "period_and_week", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][1].update(week_code="2025-W01"),
        d["periods"][1].update(period="2025-01"))),
     ["planning_calendar.json, at periods[0].weeks[1].week_code: duplicate week_code '2025-W01' in period '2025-01' (first at periods[0].weeks[0]) [calendar_duplicate]",
      "planning_calendar.json, at periods[1].period: duplicate period '2025-01' (first at periods[0]) [calendar_duplicate]"]),
    ("calendar_sequence", "periods_swapped", lambda f: edit_calendar(f, lambda d: d["periods"].insert(0, d["periods"].pop(1))),
     ["planning_calendar.json, at periods[1]: period '2025-01' (2025-01-01..2025-01-31) is listed after period "
      "'2025-02' (2025-02-01..2025-02-28) but starts before it: periods are planned in list order, so they must "
      "be listed in date order [calendar_sequence]"]),
    ("calendar_sequence", "weeks_swapped", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][1].update(sequence=3), d["periods"][0]["weeks"][2].update(sequence=2))),
     ["planning_calendar.json, at periods[0].weeks[1]: week '2025-W02' (sequence 3, 2025-01-06..2025-01-12) is "
      "planned after week '2025-W03' (sequence 2, 2025-01-13..2025-01-19) of period '2025-01' but starts before "
      "it: weeks are planned in period list order, then by sequence, so both must follow the dates [calendar_sequence]"]),
    ("calendar_sequence", "shared_week", lambda f: edit_calendar(f, lambda d: (
        d["periods"][1]["weeks"][0].update(sequence=6), d["periods"][3]["weeks"][1].update(week_code="2025-W05"))),
     ["planning_calendar.json, at periods[1].weeks[0].sequence: shared week '2025-W05' has sequence 6 here but 5 "
      "in period '2025-01': a week shared by two periods keeps one sequence [calendar_sequence]",
      "planning_calendar.json, at periods[3].weeks[1]: week '2025-W05' appears again in period '2025-04' (first at "
      "periods[0].weeks[4] of period '2025-01'): a week may be shared only by consecutive periods, as the last "
      "week of one and the first week of the next [calendar_sequence]"]),
    ("calendar_gap", "weeks", lambda f: edit_calendar(f, lambda d: (
        d["periods"][0]["weeks"][2].update(start_date="2025-01-14"),
        d["periods"][1]["weeks"][0].update(start_date="2025-02-02"))),
     ["planning_calendar.json, at periods[0].weeks[2]: no week covers the day 2025-01-13, between week '2025-W02' "
      "(sequence 2, 2025-01-06..2025-01-12) of period '2025-01' and week '2025-W03' (sequence 3, "
      "2025-01-14..2025-01-19) [calendar_gap]",
      "planning_calendar.json, at periods[1].weeks[0]: no week covers the day 2025-02-01, between the fragments "
      "of week '2025-W05' in periods '2025-01' and '2025-02' [calendar_gap]"]),
    ("calendar_gap", "period", lambda f: edit_calendar(f, lambda d: (
        d["periods"][1].update(start_date="2025-02-02"), d["periods"][1]["weeks"][0].update(start_date="2025-02-02"))),
     ["planning_calendar.json, at periods[1]: no period covers the day 2025-02-01, between period '2025-01' "
      "(ends 2025-01-31) and period '2025-02' (starts 2025-02-02) [calendar_gap]"]),
    ("calendar_overlap", "week", lambda f: edit_calendar(
        f, lambda d: d["periods"][0]["weeks"][2].update(start_date="2025-01-12")),
     ["planning_calendar.json, at periods[0].weeks[2]: week '2025-W03' (sequence 3, 2025-01-12..2025-01-19) "
      "overlaps week '2025-W02' (sequence 2, 2025-01-06..2025-01-12) of period '2025-01', the week planned "
      "before it [calendar_overlap]"]),
    ("calendar_overlap", "period", lambda f: edit_calendar(f, lambda d: d["periods"][0].update(end_date="2025-02-01")),
     ["planning_calendar.json, at periods[1]: period '2025-02' (2025-02-01..2025-02-28) overlaps period '2025-01' "
      "(2025-01-01..2025-02-01) listed before it [calendar_overlap]"]),
    ("calendar_missing_period", "before_the_calendar", lambda f: append_lines(f, "demand_family.csv", "BIKES,2024-12,5"),
     [f"demand_family.csv line 38, column 'period': period '2024-12' has no weeks in planning_calendar.json but "
      f"starts (2024-12-01) {BEFORE_END} [calendar_missing_period]"]),
    ("calendar_missing_period", "month_without_weeks", lambda f: edit_calendar(f, lambda d: d["periods"][1].update(weeks=[])),
     [f"demand_family.csv line 3, column 'period': period '2025-02' has no weeks in planning_calendar.json but "
      f"starts (2025-02-01) {BEFORE_END} [calendar_missing_period]"]),
    # ----------------------------------------------------------------- warnings
    ("unknown_column", "comment", lambda f: write_lines(
        f, "period_score.csv", ["period,score,comment", "2025-01,0.9,ok"]),
     ["period_score.csv line 1, column 'comment': unknown column 'comment' is ignored (expected columns: period, score) [unknown_column]"]),
    ("key_whitespace", "item", lambda f: set_cell(f, "item.csv", 2, "item", "BK-100 "),
     ["item.csv line 2, column 'item': value 'BK-100 ' has leading or trailing spaces: keys are compared exactly [key_whitespace]"]),
    ("no_rows", "demand_header_only", lambda f: write_lines(f, "demand_family.csv", ["family,period,demand"]),
     ["demand_family.csv: no data rows: nothing will be planned [no_rows]"]),
    ("duplicate_summed", "demand_and_capacity", lambda f: (append_lines(f, "demand_family.csv", "BIKES,2025-03,10"),
                                                           append_lines(f, "capacity.csv", "LINE-A,2025-01,10")),
     ["demand_family.csv line 38, column 'period': duplicate (family, period) ('BIKES', '2025-03') (first at line 4): the quantities are summed [duplicate_summed]",
      "capacity.csv line 26, column 'period': duplicate (workcenter, period) ('LINE-A', '2025-01') (first at line 2): the quantities are summed [duplicate_summed]"]),
    ("due_outside_horizon", "with_calendar", lambda f: (set_cell(f, "open_po.csv", 2, "due", "2026-03-01"),
                                                        set_cell(f, "open_po.csv", 3, "due", "2024-12")),
     [f"open_po.csv line 2, column 'due': due '2026-03-01' falls in month '2026-03', {HORIZON} [due_outside_horizon]",
      f"open_po.csv line 3, column 'due': due '2024-12' falls in month '2024-12', {HORIZON} [due_outside_horizon]"]),
    ("due_outside_horizon", "calendar_week", lambda f: (delete_lines(f, "demand_family.csv", 13, 25, 37),
                                                        set_cell(f, "open_po.csv", 2, "due", "2025-12-15"),
                                                        set_cell(f, "open_po.csv", 3, "due", "2026-W01")),
     ["open_po.csv line 2, column 'due': due '2025-12-15' falls in week '2025-W51' of period '2025-12', outside the "
      "planning horizon (demand periods 2025-01..2025-11): the open PO is ignored [due_outside_horizon]",
      "open_po.csv line 3, column 'due': due '2026-W01' falls in week '2026-W01' of period '2025-12', outside the "
      "planning horizon (demand periods 2025-01..2025-11): the open PO is ignored [due_outside_horizon]"]),
    ("due_outside_horizon", "shared_week", lambda f: (delete_lines(f, "demand_family.csv", 2, 3, 14, 15, 26, 27),
                                                      set_cell(f, "open_po.csv", 2, "due", "2025-W05")),
     ["open_po.csv line 2, column 'due': due '2025-W05' falls in week '2025-W05' of periods '2025-01', '2025-02', "
      "outside the planning horizon (demand periods 2025-03..2025-12): the open PO is ignored [due_outside_horizon]",
      "open_po.csv line 3, column 'due': due '2025-01-26' falls in week '2025-W04' of period '2025-01', "
      "outside the planning horizon (demand periods 2025-03..2025-12): the open PO is ignored [due_outside_horizon]",
      "open_po.csv line 4, column 'due': due '2025-01-30' falls in week '2025-W05' of period '2025-01', "
      "outside the planning horizon (demand periods 2025-03..2025-12): the open PO is ignored [due_outside_horizon]"]),
    ("due_outside_horizon", "without_calendar", lambda f: ((f / "planning_calendar.json").unlink(),
                                                           set_cell(f, "open_po.csv", 5, "due", "2026-01")),
     [f"open_po.csv line 5, column 'due': due '2026-01' falls in month '2026-01', {HORIZON} [due_outside_horizon]"]),
    ("unknown_item", "po_inventory_bom", lambda f: (append_lines(f, "open_po.csv", "GHOST,2025-01-10,77"),
                                                    append_lines(f, "inventory.csv", "GHOST,DC-EAST,5"),
                                                    append_lines(f, "bom.csv", "GHOST,BK-100-FRAME,1")),
     [f"bom.csv line 14, column 'parent': parent 'GHOST' {NEVER_PLANNED}: the BOM row has no effect [unknown_item]",
      f"inventory.csv line 28, column 'item': item 'GHOST' {NEVER_PLANNED}: its stock is not used [unknown_item]",
      f"open_po.csv line 6, column 'item': item 'GHOST' {NEVER_PLANNED}: the open PO is ignored [unknown_item]"]),
    ("lot_below_one", "zero_and_half", lambda f: (set_cell(f, "item.csv", 2, "lot", "0"),
                                                  set_cell(f, "item.csv", 14, "lot", "0.5")),
     ["item.csv line 2, column 'lot': value '0' is below 1: the lot size is treated as 1 [lot_below_one]",
      "item.csv line 14, column 'lot': value '0.5' is below 1: the lot size is treated as 1 [lot_below_one]"]),
    ("item_defaults", "sku_and_component", lambda f: delete_lines(f, "item.csv", 3, 14),
     ["mix_share.csv line 3, column 'sku': sku 'BK-200' is not in item.csv: it is planned with lt 0, lot 1, moq 0 [item_defaults]",
      "bom.csv line 2, column 'child': component 'BK-100-FRAME' is not in item.csv: it is planned with lt 0, lot 1, moq 0 [item_defaults]"]),
    ("item_defaults", "no_item_file", lambda f: (f / "item.csv").unlink(),
     ["item.csv: file is missing: all 24 planned items use lt 0, lot 1, moq 0 [item_defaults]"]),
    ("family_without_mix", "lights", lambda f: delete_lines(f, "mix_share.csv", 10, 11, 12, 13),
     ["demand_family.csv line 26, column 'family': family 'LIGHTS' has demand but no rows in mix_share.csv: "
      "it is planned as a single pseudo-SKU 'LIGHTS' without capacity load [family_without_mix]"]),
    ("capacity_without_demand", "2026", lambda f: append_lines(f, "capacity.csv", "LINE-A,2026-01,900"),
     ["capacity.csv line 26, column 'period': period '2026-01' has capacity but no demand in demand_family.csv: "
      "it is not planned [capacity_without_demand]"]),
    ("demand_without_capacity", "december", lambda f: delete_lines(f, "capacity.csv", 24, 25),
     ["demand_family.csv line 13, column 'period': period '2025-12' has demand but no rows in capacity.csv: "
      "its capacity is 0 [demand_without_capacity]"]),
    ("negative_inventory", "bk100", lambda f: set_cell(f, "inventory.csv", 2, "qty", "-5"),
     ["inventory.csv line 2, column 'qty': value '-5' is negative: it is used as is (the first net requirement "
      "covers it) [negative_inventory]"]),
    ("period_not_in_calendar", "2026", lambda f: (append_lines(f, "demand_family.csv", "BIKES,2026-01,400"),
                                                  append_lines(f, "capacity.csv", "LINE-A,2026-01,900")),
     ["demand_family.csv line 38, column 'period': period '2026-01' has no weeks in planning_calendar.json: "
      "it is split into equal fallback weeks (2026-01-W1 ...) [period_not_in_calendar]"]),
    ("calendar_empty", "no_periods", lambda f: edit_calendar(f, lambda d: d.update(periods=[])),
     ["planning_calendar.json, at periods: the calendar defines no periods: every period uses fallback weeks [calendar_empty]"]),
    ("calendar_empty", "no_weeks", lambda f: edit_calendar(f, lambda d: d["periods"][0].update(weeks=[])),
     ["planning_calendar.json, at periods[0]: period '2025-01' has no weeks: it uses fallback weeks [calendar_empty]"]),
    ("calendar_week_outside_period", "w05", lambda f: edit_calendar(
        f, lambda d: d["periods"][0]["weeks"][4].update(end_date="2025-02-02")),
     ["planning_calendar.json, at periods[0].weeks[4]: week '2025-W05' (2025-01-27..2025-02-02) is not inside "
      "period '2025-01' (2025-01-01..2025-01-31) [calendar_week_outside_period]"]),
    ("calendar_zero_weights", "january", lambda f: edit_calendar(
        f, lambda d: [w.update(weight=0) for w in d["periods"][0]["weeks"]]),
     ["planning_calendar.json, at periods[0]: all week weights of period '2025-01' are 0: its weeks get equal shares [calendar_zero_weights]"]),
]


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "in")


def test_bundled_sample_is_clean():
    report = validate_input_dir(BUNDLED_SAMPLE_DIR)
    assert report.issues == []
    assert report.ok


@pytest.mark.parametrize("rule,case,mutate,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_rule_message(sample_copy, rule, case, mutate, expected):
    mutate(sample_copy)
    report = validate_input_dir(sample_copy)
    got = [str(i) for i in report.issues if i.rule == rule]
    assert got == expected
    severity = RULES[rule][0]
    assert all(i.severity == severity for i in report.issues if i.rule == rule)
    if severity == ERROR:
        assert not report.ok
    else:
        assert rule in report.rules(WARNING)


def test_every_rule_has_a_case():
    assert {c[0] for c in CASES} == set(RULES)


@pytest.mark.parametrize("name", list(INPUT_COLUMNS))
def test_any_column_or_file_missing_is_reported_never_raised(sample_copy, name):
    """Dropping any column, emptying or removing any file: issues, never an exception."""
    path = sample_copy / f"{name}.csv"
    original = path.read_text(encoding="utf-8").splitlines()
    header = original[0].split(",")
    for k, column in enumerate(header):
        write_lines(sample_copy, path.name, [",".join(c for j, c in enumerate(line.split(",")) if j != k)
                                             for line in original])
        report = validate_input_dir(sample_copy)
        assert f"{path.name} line 1, column '{column}': required column '{column}' is missing" in str(report)
    write_lines(sample_copy, path.name, original[:1])
    validate_input_dir(sample_copy)
    path.write_text("")
    assert "file_format" in validate_input_dir(sample_copy).rules(ERROR)
    path.unlink()
    validate_input_dir(sample_copy)


def test_every_rule_is_documented():
    """docs/inputs.md lists every rule of RULES with its severity (and no other)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "inputs.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\w+)` \| (error|warning) \|", doc, flags=re.M))
    assert table == {rule: severity for rule, (severity, _) in RULES.items()}


def test_warnings_do_not_block_loading(sample_copy):
    """A set with harmless oddities (warnings only) still loads."""
    append_lines(sample_copy, "open_po.csv", "GHOST,2025-01-10,77")
    append_lines(sample_copy, "demand_family.csv", "BIKES,2025-03,10")
    set_cell(sample_copy, "item.csv", 2, "lot", "0.5")
    inputs, report = load_validated_input_dir(sample_copy)
    assert report.ok
    assert report.rules(WARNING) == {"unknown_item", "duplicate_summed", "lot_below_one"}
    assert len(inputs.demand_family) == 37


def test_empty_item_cells_take_defaults_silently(sample_copy):
    set_cell(sample_copy, "item.csv", 2, "lt", "")
    set_cell(sample_copy, "item.csv", 2, "lot", "")
    set_cell(sample_copy, "item.csv", 2, "moq", "")
    report = validate_input_dir(sample_copy)
    assert report.issues == []
    inputs, _ = load_validated_input_dir(sample_copy)
    row = inputs.item.iloc[0]
    assert (row["item"], row["lt"], row["lot"], row["moq"]) == ("BK-100", 0.0, 1.0, 0.0)


def test_missing_column_names_the_header_and_warns_unknown(sample_copy):
    replace_line(sample_copy, "demand_family.csv", 1, "family,period,Demand")
    report = validate_input_dir(sample_copy)
    assert [str(i) for i in report.errors] == [
        "demand_family.csv line 1, column 'demand': required column 'demand' is missing (header: 'family', 'period', 'Demand') [missing_column]"
    ]
    assert "unknown_column" in report.rules(WARNING)


def test_structural_error_does_not_cascade(sample_copy):
    """Without its key column a table is left out of the cross-file checks (no warning flood)."""
    write_lines(sample_copy, "demand_family.csv", ["period,demand", "2025-01,5"])
    report = validate_input_dir(sample_copy)
    assert [str(i) for i in report.issues] == [
        "demand_family.csv line 1, column 'family': required column 'family' is missing (header: 'period', 'demand') [missing_column]"
    ]


def test_period_may_be_a_calendar_key(sample_copy):
    """Periods must be YYYY-MM unless the calendar defines other keys (e.g. M1)."""
    edit_calendar(sample_copy, lambda d: d["periods"][0].update(period="M1"))
    set_cell(sample_copy, "demand_family.csv", 2, "period", "M1")
    set_cell(sample_copy, "demand_family.csv", 3, "period", "M13")
    report = validate_input_dir(sample_copy)
    assert [str(i) for i in report.issues if i.rule == "bad_period"] == [
        "demand_family.csv line 3, column 'period': value 'M13' is not a period: expected YYYY-MM with month 01-12 "
        "or a period of planning_calendar.json [bad_period]"
    ]


def test_due_forms_accepted(sample_copy):
    """ISO dates, months and calendar week codes are all valid dues inside the horizon."""
    set_cell(sample_copy, "open_po.csv", 2, "due", "2025-W02")
    set_cell(sample_copy, "open_po.csv", 3, "due", "2025-03")
    set_cell(sample_copy, "open_po.csv", 4, "due", "2025-12-31")
    assert validate_input_dir(sample_copy).issues == []


def test_byte_order_marks_and_line_ends_are_accepted_and_read_alike(sample_copy, tmp_path):
    """A UTF-8 BOM (any file, CSV or JSON) and CRLF / CR line ends: validation and loading agree."""
    plain, _ = load_validated_input_dir(BUNDLED_SAMPLE_DIR)
    for k, path in enumerate(sorted(sample_copy.iterdir())):
        data = path.read_bytes()
        if k % 2 == 0:
            data = data.replace(b"\n", b"\r\n")
        elif path.suffix == ".csv":
            data = data.replace(b"\n", b"\r")
        path.write_bytes(b"\xef\xbb\xbf" + data)
    assert validate_input_dir(sample_copy).issues == []
    inputs, report = load_validated_input_dir(sample_copy)
    assert report.issues == []
    for name in INPUT_COLUMNS:
        pd.testing.assert_frame_equal(inputs.table(name), plain.table(name))
    assert inputs.calendar == plain.calendar


def test_a_week_shared_by_two_months_is_not_a_gap_or_overlap(sample_copy):
    """Both fragments of 2025-W05 carrying the whole week (not clipped at the month end) overlap in
    dates, but they are one week: only the 'outside its period' warnings remain."""
    edit_calendar(sample_copy, lambda d: (d["periods"][0]["weeks"][4].update(end_date="2025-02-02"),
                                          d["periods"][1]["weeks"][0].update(start_date="2025-01-27")))
    report = validate_input_dir(sample_copy)
    assert report.errors == []
    assert report.rules() == {"calendar_week_outside_period"}


def test_zero_shares_of_a_family_without_demand_are_harmless(sample_copy):
    for n in (2, 3, 4, 5):
        set_cell(sample_copy, "mix_share.csv", n, "share", "0")
    for n in range(2, 14):
        set_cell(sample_copy, "demand_family.csv", n, "demand", "0")
    assert validate_input_dir(sample_copy).issues == []


def test_values_at_the_bounds_are_accepted(sample_copy):
    """MAX_PLAN_QUANTITY itself, a whole lot, a fractional MOQ and the longest lead time pass."""
    set_cell(sample_copy, "demand_family.csv", 2, "demand", "1e12")
    set_cell(sample_copy, "capacity.csv", 2, "capacity", "999999999999")
    set_cell(sample_copy, "capacity.csv", 3, "capacity", "1")
    set_cell(sample_copy, "item.csv", 2, "lot", "1e12")
    set_cell(sample_copy, "item.csv", 3, "moq", "2.5")
    set_cell(sample_copy, "item.csv", 4, "lt", "3650")
    set_cell(sample_copy, "inventory.csv", 2, "qty", "-1e12")
    edit_calendar(sample_copy, lambda d: (d["periods"][0]["weeks"][0].update(weight=1e12),
                                          d["periods"][0]["weeks"][1].update(sequence=2)))
    report = validate_input_dir(sample_copy)
    assert report.errors == []
    assert report.rules() == {"negative_inventory"}
    assert MAX_PLAN_QUANTITY == 1e12 and MAX_LEAD_TIME == 3650


def test_calendar_order_is_not_checked_on_a_broken_calendar(sample_copy):
    """A schema error in the calendar does not cascade into ordering errors."""
    edit_calendar(sample_copy, lambda d: (d["periods"][0]["weeks"][1].pop("start_date"),
                                          d["periods"].insert(0, d["periods"].pop(2))))
    report = validate_input_dir(sample_copy)
    assert report.rules(ERROR) == {"calendar_schema"}


def test_blank_lines_and_quoted_multiline_keep_line_numbers(sample_copy):
    write_lines(sample_copy, "period_score.csv", [
        "period,score", "", "2025-01,0.9", '"2025-02",0.8', "", '"2025-03","0.7', 'x"', "2025-04,-1",
    ])
    report = validate_input_dir(sample_copy)
    assert [str(i) for i in report.errors] == [
        "period_score.csv line 6, column 'score': value '0.7\\nx' is not a finite number [not_a_number]",
        "period_score.csv line 8, column 'score': value '-1' must be a non-negative number [negative_number]",
    ]


def test_listing_is_capped_per_rule(sample_copy):
    for line in range(2, 27):  # 25 rows
        set_cell(sample_copy, "demand_family.csv", line, "demand", "-1")
    report = validate_input_dir(sample_copy)
    neg = [i for i in report.errors if i.rule == "negative_number"]
    assert len(neg) == MAX_PER_RULE + 1
    assert [i.row for i in neg[:MAX_PER_RULE]] == list(range(2, 22))
    assert str(neg[-1]) == "demand_family.csv: ... and 5 more issues of this rule [negative_number]"
    assert report.totals[(ERROR, "demand_family.csv", "negative_number")] == 25
    assert report.error_count == 25


def test_issue_str_forms():
    assert str(InputIssue("capacity.csv", None, None, "missing_file", "required file is missing")) == (
        "capacity.csv: required file is missing [missing_file]"
    )
    assert str(InputIssue("bom.csv", 4, None, "row_width", "x", ERROR)) == "bom.csv line 4: x [row_width]"
    assert str(InputIssue("item.csv", None, "lt", "r", "m", WARNING)) == "item.csv, column 'lt': m [r]"
    assert str(InputIssue("planning_calendar.json", None, "periods[0]", "r", "m")) == (
        "planning_calendar.json, at periods[0]: m [r]"
    )
    assert InputIssue("a.csv", 2, "c", "r", "m", WARNING).to_dict() == {
        "file": "a.csv", "row": 2, "column": "c", "rule": "r", "message": "m", "severity": "warning",
    }


def test_load_validated_raises_with_all_errors_then_warnings(sample_copy):
    set_cell(sample_copy, "demand_family.csv", 7, "demand", "-5")
    set_cell(sample_copy, "period_cost.csv", 3, "cost", "-1")
    append_lines(sample_copy, "open_po.csv", "GHOST,2025-01-10,77")
    with pytest.raises(InputValidationError) as info:
        load_validated_input_dir(sample_copy)
    assert str(info.value) == "\n".join([
        f"input folder {sample_copy}: 2 error(s), 1 warning(s)",
        "errors:",
        "  demand_family.csv line 7, column 'demand': value '-5' must be a non-negative number [negative_number]",
        "  period_cost.csv line 3, column 'cost': value '-1' must be a non-negative number [negative_number]",
        "warnings:",
        f"  open_po.csv line 6, column 'item': item 'GHOST' {NEVER_PLANNED}: the open PO is ignored [unknown_item]",
    ])
    assert info.value.report.error_count == 2


def test_missing_folder(tmp_path):
    report = validate_input_dir(tmp_path / "nope")
    assert [str(i) for i in report.errors] == [f"{tmp_path / 'nope'}: input folder does not exist [missing_file]"]


# ------------------------------------------------------------------------------- reference folders


@pytest.mark.parametrize("name", ["samples_planning", "weekly_set1", "sample_tight"])
def test_reference_inputs_have_no_errors(reference_dir, name):
    report = validate_input_dir(reference_dir / "inputs" / name)
    assert report.errors == []
    if name != "sample_tight":
        assert report.warnings == []


def test_sample_tight_warnings(reference_dir):
    report = validate_input_dir(reference_dir / "inputs" / "sample_tight")
    assert sorted(str(w) for w in report.warnings) == sorted([
        "demand_family.csv line 29, column 'period': duplicate (family, period) ('F3', '2025-03') "
        "(first at line 28): the quantities are summed [duplicate_summed]",
        "demand_family.csv line 26, column 'family': family 'F3' has demand but no rows in mix_share.csv: "
        "it is planned as a single pseudo-SKU 'F3' without capacity load [family_without_mix]",
        f"open_po.csv line 6, column 'item': item 'GHOST' {NEVER_PLANNED}: the open PO is ignored [unknown_item]",
        f"open_po.csv line 5, column 'due': due '2026-03-01' falls in month '2026-03', {HORIZON} [due_outside_horizon]",
        "mix_share.csv line 5, column 'sku': sku 'SKU4' is not in item.csv: it is planned with lt 0, lot 1, moq 0 [item_defaults]",
    ])


def test_reference_inputs_load(reference_dir):
    inputs, report = load_validated_input_dir(reference_dir / "inputs" / "sample_tight")
    assert len(inputs.open_po) == 5 and len(report.warnings) == 5


# ------------------------------------------------------------------------------- scale


def test_validation_of_20000_skus_finds_no_issue(tmp_path):
    folder = tmp_path / "big"
    generate_sample_inputs(folder, families=20, skus_per_family=1000, months=12)
    assert validate_input_dir(folder).issues == []


def test_many_errors_in_a_large_set_stay_capped(tmp_path):
    folder = tmp_path / "big"
    generate_sample_inputs(folder, families=10, skus_per_family=500, months=12)
    text = (folder / "mix_share.csv").read_text().replace(",0.", ",-0.")
    (folder / "mix_share.csv").write_text(text)
    report = validate_input_dir(folder)
    neg = [i for i in report.errors if i.rule == "negative_number"]
    assert len(neg) == MAX_PER_RULE + 1
    assert report.totals[(ERROR, "mix_share.csv", "negative_number")] == 5000
