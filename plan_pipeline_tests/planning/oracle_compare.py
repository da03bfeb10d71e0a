"""Helpers for comparing stage outputs with the reference oracle (README comparison rules).

* JSON: same keys in the same order, same list lengths/order, numbers equal within 1e-9
  (``12`` and ``12.0`` compare equal), bools compared as bools, ``note`` texts optional.
* CSV: same header and rows; numeric cells within 1e-9, other cells exactly.
* Frames: oracle JSON rows read into DataFrames with float64 quantities (stage inputs).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

TOL = 1e-9

DETAIL_COLUMNS = ["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"]
AGG_COLUMNS = ["family", "period", "demand", "supply", "backlog", "capacity_total"]
MRP_COLUMNS = [
    "item", "sku", "week", "gross_req", "scheduled_receipts", "on_hand_start", "net_req",
    "planned_order_receipt", "planned_order_release", "lt_weeks", "lot", "moq", "on_hand_end",
]
TEXT_COLUMNS = {"family", "period", "sku", "week", "item"}


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def rows_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    data = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        if c in TEXT_COLUMNS:
            data[c] = pd.Series(values, dtype=object)
        elif c == "lt_weeks":
            data[c] = pd.Series(values, dtype="int64")
        else:
            data[c] = pd.Series(values, dtype="float64")
    return pd.DataFrame(data)


def detail_frame(path: Path) -> pd.DataFrame:
    return rows_frame(load_json(path)["rows"], DETAIL_COLUMNS)


def aggregate_frame(path: Path) -> pd.DataFrame:
    return rows_frame(load_json(path)["rows"], AGG_COLUMNS)


def mrp_frame(path: Path) -> pd.DataFrame:
    return rows_frame(load_json(path)["rows"], MRP_COLUMNS)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def json_diffs(actual: Any, expected: Any, path: str = "$", ignore: tuple[str, ...] = ("note",), limit: int = 20) -> list[str]:
    """Differences between two JSON values under the oracle comparison rules."""
    out: list[str] = []

    def walk(a: Any, e: Any, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(e, dict):
            if not isinstance(a, dict):
                out.append(f"{p}: expected object, got {type(a).__name__}")
                return
            if list(a.keys()) != list(e.keys()):
                out.append(f"{p}: keys {list(a.keys())} != {list(e.keys())}")
                return
            for k in e:
                if k in ignore:
                    continue
                walk(a[k], e[k], f"{p}.{k}")
        elif isinstance(e, list):
            if not isinstance(a, list) or len(a) != len(e):
                out.append(f"{p}: list length {len(a) if isinstance(a, list) else type(a).__name__} != {len(e)}")
                return
            for i, (x, y) in enumerate(zip(a, e)):
                walk(x, y, f"{p}[{i}]")
        elif isinstance(e, bool) or isinstance(a, bool):
            if a is not e:
                out.append(f"{p}: {a!r} != {e!r}")
        elif _is_num(e):
            if not _is_num(a) or not (abs(float(a) - float(e)) <= TOL or (math.isnan(a) and math.isnan(e))):
                out.append(f"{p}: {a!r} != {e!r}")
        else:
            if a != e:
                out.append(f"{p}: {a!r} != {e!r}")

    walk(actual, expected, path)
    return out


def assert_json_close(actual: Any, expected: Any, what: str = "", ignore: tuple[str, ...] = ("note",)) -> None:
    diffs = json_diffs(actual, expected, ignore=ignore)
    assert not diffs, f"{what}: {len(diffs)}+ differences:\n" + "\n".join(diffs)


def _num(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def csv_diffs(actual_text: str, expected_text: str, limit: int = 20) -> list[str]:
    out = []
    if ("\r\n" in expected_text) != ("\r\n" in actual_text):
        out.append("line endings differ")
    a_rows = list(csv.reader(io.StringIO(actual_text, newline="")))
    e_rows = list(csv.reader(io.StringIO(expected_text, newline="")))
    if len(a_rows) != len(e_rows):
        out.append(f"row count {len(a_rows)} != {len(e_rows)}")
        return out
    for i, (ar, er) in enumerate(zip(a_rows, e_rows)):
        if len(ar) != len(er):
            out.append(f"row {i}: {ar} != {er}")
            continue
        for j, (a, e) in enumerate(zip(ar, er)):
            if a == e:
                continue
            fa, fe = _num(a), _num(e)
            if fa is not None and fe is not None and abs(fa - fe) <= TOL and ("." in a) == ("." in e):
                continue
            out.append(f"row {i} col {j}: {a!r} != {e!r}")
            if len(out) >= limit:
                return out
    return out


def assert_csv_close(actual_text: str, expected_path: Path) -> None:
    expected = Path(expected_path).read_bytes().decode("utf-8")
    diffs = csv_diffs(actual_text, expected)
    assert not diffs, f"{expected_path}: differences:\n" + "\n".join(diffs)


# --------------------------------------------------------------------------- anchor_stage cases

ANCHOR_STAGE_CASES = ("agg_far_w7", "blend_w14", "det_near_ratio_next", "det_near_w7")
_ANCHOR_OPTIONS = {
    "--cutover-date": ("cutover_date", str),
    "--anchor-policy": ("anchor_policy", str),
    "--recon-window-days": ("recon_window_days", int),
    "--max-adjust-ratio": ("max_adjust_ratio", float),
    "--carryover": ("carryover", str),
    "--carryover-split": ("carryover_split", float),
    "--tol-abs": ("tol_abs", float),
    "--tol-rel": ("tol_rel", float),
}


def _stage_options(cmd_text: str, script: str) -> dict:
    import shlex

    line = next(text for text in cmd_text.splitlines() if script in text)
    tokens = shlex.split(line.split(")", 1)[1])
    values = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _ANCHOR_OPTIONS:
            name, conv = _ANCHOR_OPTIONS[tok]
            values[name] = conv(tokens[i + 1])
            i += 2
        elif tok.startswith("-") and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            i += 2
        else:
            i += 1
    return values


def anchor_stage_case(reference_dir: Path, name: str):
    """(folder, anchor parameters, reconcile_levels parameters, inputs with the tight calendar)."""
    from plan_pipeline.planning.types import PlanningParameters
    from plan_pipeline_tests.planning.synthetic import make_inputs

    folder = Path(reference_dir) / "anchor_stage" / name
    cmd = (folder / "CMD.txt").read_text(encoding="utf-8")
    anchor_params = PlanningParameters(**_stage_options(cmd, "anchor_adjust.py"))
    recon = _stage_options(cmd, "reconcile_levels.py")
    recon_params = PlanningParameters(**recon)
    calendar = load_json(Path(reference_dir) / "inputs" / "sample_tight" / "planning_calendar.json")
    return folder, anchor_params, recon_params, make_inputs(calendar=calendar)
